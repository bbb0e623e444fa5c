package hooks

import (
	"errors"

	"github.com/livedict/livedict/pkg/seal"
	"github.com/livedict/livedict/pkg/store"
)

// Tx wraps a store transaction so that every change made through it
// records the events enabled hooks ask for, in the same transaction: Put
// records set, Delete and DropBucket record delete (with the value that
// went), Reap records expire. Reads record nothing; a command that reads a
// value on the user's behalf records get itself with RecordGet.
//
// Tx also notes the earliest deadline written, which a daemon wants to hear
// about.
type Tx struct {
	store.Tx
	rec *Recorder
	// TTLOnly says the command changes only deadlines (expire, persist,
	// getex), so its Puts are not set events.
	TTLOnly bool

	// Events holds the outbox sequence numbers recorded so far.
	Events []uint64
	// MinDeadline is the earliest non-zero deadline Put wrote; 0 if none.
	MinDeadline int64
	// Wrote reports whether any user entry was changed.
	Wrote bool

	// watchMax is non-zero while a watcher runs: then every event of the
	// change is also kept, in memory only, in Watched, its value cut at
	// watchMax bytes.
	watchMax int
	// Watched holds the event lines for watchers, in the order of the
	// changes.
	Watched [][]byte

	// seq numbers the events this transaction records.
	seq eventSeq
}

// Wrap returns tx recording events for rec's hooks. rec may be nil.
func Wrap(tx store.Tx, rec *Recorder) *Tx {
	return &Tx{Tx: tx, rec: rec}
}

// wants reports whether ev on bucket/key is recorded: a hook wants it, or
// a watcher runs.
func (t *Tx) wants(ev Event, bucket, key string) bool {
	return t.watchMax > 0 && !store.IsInternal(bucket) || t.rec.Wants(ev, bucket, key)
}

func (t *Tx) record(ev Event, e store.Entry) error {
	plain := e
	if c, ok := t.Tx.(ciphertexter); ok && e.Value != nil {
		// An encrypted bucket's value: watchers and hooks get it sealed,
		// only hooks added with --decrypt the plaintext.
		v, err := c.Ciphertext(e)
		if err != nil {
			return err
		}
		e.Value = v
	}
	if t.watchMax > 0 && !store.IsInternal(e.Bucket) {
		t.Watched = append(t.Watched, watchEvent(ev, e, t.Tx.Now(), t.watchMax))
	}
	seqs, err := t.rec.record(t.Tx, ev, e, plain, &t.seq)
	t.Events = append(t.Events, seqs...)
	return err
}

// ciphertexter is a transaction that encrypts some buckets at rest
// (seal.Tx): Ciphertext returns a value as such a bucket stores it.
type ciphertexter interface {
	Ciphertext(store.Entry) ([]byte, error)
}

// Stat reads an entry without its value (see store.Stat).
func (t *Tx) Stat(bucket, key string) (store.Entry, bool, error) {
	return store.Stat(t.Tx, bucket, key)
}

// Retime changes a live entry's deadline only (see store.Retime). A
// changed deadline is not a set event (expire and persist record none).
func (t *Tx) Retime(e store.Entry, expiresAt int64) error {
	if err := store.Retime(t.Tx, e, expiresAt); err != nil || store.IsInternal(e.Bucket) {
		return err
	}
	t.Wrote = true
	if expiresAt != 0 && (t.MinDeadline == 0 || expiresAt < t.MinDeadline) {
		t.MinDeadline = expiresAt
	}
	return nil
}

// Put writes e and records a set event unless TTLOnly.
func (t *Tx) Put(e store.Entry) error {
	if err := t.Tx.Put(e); err != nil || store.IsInternal(e.Bucket) {
		return err
	}
	t.Wrote = true
	if e.ExpiresAt != 0 && (t.MinDeadline == 0 || e.ExpiresAt < t.MinDeadline) {
		t.MinDeadline = e.ExpiresAt
	}
	if t.TTLOnly || !t.wants(Set, e.Bucket, e.Key) {
		return nil
	}
	return t.record(Set, e)
}

// Delete removes bucket/key and records a delete event if a live entry went.
func (t *Tx) Delete(bucket, key string) (bool, error) {
	if !t.wants(Delete, bucket, key) {
		ok, err := t.Tx.Delete(bucket, key)
		t.Wrote = t.Wrote || ok && !store.IsInternal(bucket)
		return ok, err
	}
	e, live, err := t.Tx.Get(bucket, key)
	if seal.Unopenable(err) {
		// An encrypted bucket this host cannot open: del needs no
		// identity (README), so the event goes without the value, as
		// an expire event of such a bucket does.
		e, live, err = store.Stat(t.Tx, bucket, key)
		e.Value = nil
	}
	if errors.Is(err, store.ErrDamagedKey) {
		// A key damaged outside livedict has no value to give the
		// event; del is how it is cleared, so it goes without one.
		ok, err := t.Tx.Delete(bucket, key)
		t.Wrote = t.Wrote || ok
		return ok, err
	}
	if err != nil {
		return false, err
	}
	ok, err := t.Tx.Delete(bucket, key)
	if err != nil || !ok {
		return ok, err
	}
	t.Wrote = true
	if live {
		err = t.record(Delete, e)
	}
	return ok, err
}

// DropBucket drops bucket, recording a delete event for each live key a
// hook wants.
func (t *Tx) DropBucket(bucket string) (bool, error) {
	if t.watchMax > 0 && !store.IsInternal(bucket) || t.rec.WantsBucket(Delete, bucket) {
		t.seq.hold()
		record := func(e store.Entry) error {
			if !t.wants(Delete, e.Bucket, e.Key) {
				return nil
			}
			return t.record(Delete, e)
		}
		var err error
		if so, ok := t.Tx.(interface {
			ScanOpenable(string, func(store.Entry) error) error
		}); ok {
			// Values this host cannot open go without one (seal.Tx).
			err = so.ScanOpenable(bucket, record)
		} else {
			err = t.Tx.Scan(bucket, "", true, record)
		}
		if rerr := t.seq.release(t.Tx); err == nil {
			err = rerr
		}
		if err != nil {
			return false, err
		}
	}
	ok, err := t.Tx.DropBucket(bucket)
	t.Wrote = t.Wrote || ok
	return ok, err
}

// Reap deletes expired entries, recording one expire event for each that a
// hook wants. Reaping happens inside a write transaction, so however many
// processes reap at once, each entry is reaped, and recorded, once.
func (t *Tx) Reap(limit int, fn func(store.Entry) error) (int, error) {
	wrapped := fn
	if t.watchMax > 0 || t.rec.WantsAny(Expire) {
		wrapped = func(e store.Entry) error {
			if fn != nil {
				if err := fn(e); err != nil {
					return err
				}
			}
			if !t.wants(Expire, e.Bucket, e.Key) {
				return nil
			}
			return t.record(Expire, e)
		}
	}
	t.seq.hold()
	n, err := t.Tx.Reap(limit, wrapped)
	if rerr := t.seq.release(t.Tx); err == nil {
		err = rerr
	}
	t.Wrote = t.Wrote || n > 0
	return n, err
}

// RecordGet records a get event for e, which the command just read.
func (t *Tx) RecordGet(e store.Entry) error {
	if !t.wants(Get, e.Bucket, e.Key) {
		return nil
	}
	return t.record(Get, e)
}

// CountUpTo keeps the backend's bounded count available through the
// wrapper (see store.BoundedCounter).
func (t *Tx) CountUpTo(bucket string, limit int64) (int64, error) {
	if bc, ok := t.Tx.(store.BoundedCounter); ok {
		return bc.CountUpTo(bucket, limit)
	}
	if bucket == "" {
		return t.Tx.CountAll()
	}
	return t.Tx.Count(bucket)
}

// LoadMany keeps the backend's bulk load available through the wrapper
// (see store.BulkLoader) when no hook wants set events; otherwise it
// writes entry by entry through Put, which records them.
func (t *Tx) LoadMany(entries []store.Entry, mode store.ImportMode) (int, error) {
	bl, ok := t.Tx.(store.BulkLoader)
	if !ok || !t.TTLOnly && (t.watchMax > 0 || t.rec.WantsAny(Set)) {
		return store.LoadEach(t, entries, mode)
	}
	n, err := bl.LoadMany(entries, mode)
	t.Wrote = t.Wrote || n > 0
	for _, e := range entries {
		if e.ExpiresAt != 0 && (t.MinDeadline == 0 || e.ExpiresAt < t.MinDeadline) {
			t.MinDeadline = e.ExpiresAt
		}
	}
	return n, err
}
