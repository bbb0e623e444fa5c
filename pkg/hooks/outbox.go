package hooks

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/livedict/livedict/pkg/store"
)

// DefaultMaxEventValue is how much of a value an event carries by default.
const DefaultMaxEventValue = 64 << 10

// record is one event waiting in the outbox for one hook. Keys are []byte
// so JSON keeps non-UTF-8 keys exactly (as base64).
type record struct {
	HookID    int64  `json:"hook"`
	Event     Event  `json:"event"`
	Bucket    string `json:"bucket"`
	Key       []byte `json:"key"`
	Value     []byte `json:"value"`
	Truncated bool   `json:"truncated,omitempty"`
	// Sealed: Value is the plaintext a hook added with --decrypt gets
	// (or any hook, for an event recorded before its bucket was
	// encrypted: SealPlainEvents), sealed under its encrypted bucket's
	// data key (see eventSealer), so the outbox never holds an encrypted
	// bucket's plaintext; the deliverer opens it just before the run.
	Sealed bool `json:"sealed,omitempty"`
	// ExpiresAt is the key's deadline (Unix ms) when the event happened,
	// 0 for none.
	ExpiresAt int64 `json:"expires_at,omitempty"`
	// Time is when the event happened (Unix ms, the store's clock).
	Time int64 `json:"time"`
	// Attempts counts failed runs so far; NextAt (Unix ms, wall clock)
	// is when the next may start.
	Attempts int   `json:"attempts,omitempty"`
	NextAt   int64 `json:"next_at,omitempty"`
	// On a shared store, Owner is the deliverer running the event and
	// Lease (Unix ms, wall clock) when its claim lapses (see claim.go).
	Owner string `json:"owner,omitempty"`
	Lease int64  `json:"lease,omitempty"`
}

// orderKey is what per-key ordering is kept over: one hook's events for
// one key run one at a time, oldest first.
func (r *record) orderKey() string {
	return fmt.Sprintf("%d\x00%s\x00%s", r.HookID, r.Bucket, r.Key)
}

func decodeRecord(e store.Entry) (*record, error) {
	var r record
	if err := json.Unmarshal(e.Value, &r); err != nil {
		return nil, fmt.Errorf("%w: outbox event %s: %v", store.ErrCorrupt, e.Key, err)
	}
	return &r, nil
}

func putRecord(tx store.Tx, seq uint64, r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Put(store.Entry{Bucket: outboxBucket, Key: seqKey(seq), Value: b})
}

// Recorder writes events that match enabled hooks to the outbox.
type Recorder struct {
	hooks    []Hook
	maxValue int
}

// NewRecorder loads the enabled hooks for recording events in tx's store.
// maxValue caps the value bytes an event carries (0: the default).
func NewRecorder(tx store.Tx, maxValue int) (*Recorder, error) {
	all, err := List(tx)
	if err != nil {
		return nil, err
	}
	r := &Recorder{maxValue: maxValue}
	if r.maxValue <= 0 {
		r.maxValue = DefaultMaxEventValue
	}
	for _, h := range all {
		if h.Enabled {
			r.hooks = append(r.hooks, h)
		}
	}
	return r, nil
}

// only returns a recorder for the events in evs alone: the hooks that want
// some of them, each wanting nothing else.
func (r *Recorder) only(evs Event) *Recorder {
	if r == nil {
		return nil
	}
	o := &Recorder{maxValue: r.maxValue}
	for _, h := range r.hooks {
		if h.Events &= evs; h.Events != 0 {
			o.hooks = append(o.hooks, h)
		}
	}
	return o
}

// Empty reports whether no hook is enabled, so nothing is ever recorded.
func (r *Recorder) Empty() bool { return r == nil || len(r.hooks) == 0 }

// Wants reports whether some enabled hook matches ev on bucket/key.
func (r *Recorder) Wants(ev Event, bucket, key string) bool {
	if r == nil {
		return false
	}
	for _, h := range r.hooks {
		if h.Matches(ev, bucket, key) {
			return true
		}
	}
	return false
}

// WantsAny reports whether some enabled hook asks for ev at all.
func (r *Recorder) WantsAny(ev Event) bool {
	if r == nil {
		return false
	}
	for _, h := range r.hooks {
		if h.Events&ev != 0 {
			return true
		}
	}
	return false
}

// WantsBucket reports whether some enabled hook could match ev on some key
// of bucket.
func (r *Recorder) WantsBucket(ev Event, bucket string) bool {
	if r == nil {
		return false
	}
	for _, h := range r.hooks {
		if h.Enabled && h.Events&ev != 0 && (h.Bucket == "" || h.Bucket == bucket) {
			return true
		}
	}
	return false
}

// Record writes one outbox event per enabled hook matching ev on e, and
// returns their sequence numbers.
func (r *Recorder) Record(tx store.Tx, ev Event, e store.Entry) ([]uint64, error) {
	return r.record(tx, ev, e, e, nil)
}

// eventSeq hands out the outbox's sequence numbers within one transaction:
// the counter is read once, then kept in memory; each number is still
// written back as it is taken, so the counter in the store is right
// whenever the transaction commits. Reaping 20,000 keys with an expire
// hook spent 11% of the daemon's CPU reading and writing that counter.
//
// Within a bulk change (a reap, a bucket dropped) the counter is written
// at its end (hold, then release), and ahead by seqReserve once every
// seqReserve events: writing it at every event was two fifths of the cost
// of recording 100,000 expire events.
type eventSeq struct {
	next   uint64
	loaded bool
	held   bool // a bulk change is under way: the write waits for release
	unsent bool // next is not the counter in the store
	// reserved, while held, is what the counter in the store says: at
	// least every number handed out, so that a failed release (the
	// store failing that one write) cannot hand the same numbers out
	// again, in this transaction or, if its caller commits regardless,
	// the next.
	reserved uint64
}

// seqReserve is how many numbers a held counter writes ahead at a time.
const seqReserve = 1024

// hold defers writing the exact counter until release.
func (s *eventSeq) hold() { s.held, s.reserved = true, 0 }

// release writes the counter if events were numbered while it was held.
// Without it the counter stays ahead (see reserved): numbers are skipped,
// never given twice.
func (s *eventSeq) release(tx store.Tx) error {
	s.held = false
	if !s.unsent {
		return nil
	}
	return s.write(tx, s.next)
}

func (s *eventSeq) write(tx store.Tx, n uint64) error {
	if err := tx.Put(store.Entry{Bucket: metaBucket, Key: "event", Value: []byte(strconv.FormatUint(n, 10))}); err != nil {
		s.loaded = false // read it again: the write may or may not have happened
		return err
	}
	s.unsent = false
	return nil
}

func (s *eventSeq) take(tx store.Tx) (uint64, error) {
	if !s.loaded {
		e, ok, err := tx.Get(metaBucket, "event")
		if err != nil {
			return 0, err
		}
		if ok {
			if s.next, err = strconv.ParseUint(string(e.Value), 10, 64); err != nil {
				return 0, fmt.Errorf("%w: hook counter event: %q", store.ErrCorrupt, e.Value)
			}
		}
		s.loaded = true
	}
	n := s.next + 1
	if s.held {
		if n > s.reserved {
			r := n - 1 + seqReserve
			if err := s.write(tx, r); err != nil {
				return 0, err
			}
			s.reserved = r
		}
		s.next, s.unsent = n, true
		return n, nil
	}
	if err := s.write(tx, n); err != nil {
		return 0, err
	}
	s.next = n
	return n, nil
}

// record is Record where e carries the value as stored (ciphertext in an
// encrypted bucket) and plain the value hooks added with --decrypt get.
// seq, if not nil, is the transaction's counter (see eventSeq): every
// event recorded in a transaction must then go through it.
func (r *Recorder) record(tx store.Tx, ev Event, e, plain store.Entry, seq *eventSeq) ([]uint64, error) {
	if r == nil {
		return nil, nil
	}
	var seqs []uint64
	for _, h := range r.hooks {
		if !h.Matches(ev, e.Bucket, e.Key) {
			continue
		}
		rec := &record{
			HookID: h.ID, Event: ev, Bucket: e.Bucket, Key: []byte(e.Key),
			Value: e.Value, ExpiresAt: e.ExpiresAt, Time: tx.Now(),
		}
		if h.Decrypt {
			rec.Value = plain.Value
		}
		rec.cut(r.maxValue)
		if s, ok := tx.(eventSealer); ok && h.Decrypt && rec.Value != nil {
			v, sealed, err := s.SealEvent(e.Bucket, e.Key, rec.Value)
			if err != nil {
				return seqs, err
			}
			if sealed {
				rec.Value, rec.Sealed = v, true
			}
		}
		var n uint64
		var err error
		if seq != nil {
			n, err = seq.take(tx)
		} else {
			n, err = nextSeq(tx, "event")
		}
		if err != nil {
			return seqs, err
		}
		if err := putRecord(tx, n, rec); err != nil {
			return seqs, err
		}
		seqs = append(seqs, n)
	}
	return seqs, nil
}

// cut keeps at most max bytes of the event's value (0: the default), as
// every event an enabled hook gets, real or from 'hook test'.
func (r *record) cut(max int) {
	if max <= 0 {
		max = DefaultMaxEventValue
	}
	if len(r.Value) > max {
		r.Value, r.Truncated = truncate(r.Value, max), true
	}
}

// truncate cuts v to at most n bytes; text is cut at a character boundary
// so that it stays text (the event's "value", not "value_b64").
func truncate(v []byte, n int) []byte {
	cut := v[:n]
	if utf8.Valid(v) {
		for len(cut) > 0 && !utf8.Valid(cut) {
			cut = cut[:len(cut)-1]
		}
	}
	return cut
}

// Pending reports how many of seqs are still in the outbox.
func Pending(tx store.Tx, seqs []uint64) (int, error) {
	n := 0
	for _, s := range seqs {
		_, ok, err := tx.Get(outboxBucket, seqKey(s))
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// Counts returns how many events wait in the outbox and how many events
// the logged runs gave up (failed for good).
func Counts(tx store.Tx) (pending, failed int64, err error) {
	err = tx.Scan(outboxBucket, "", false, func(store.Entry) error { pending++; return nil })
	if err != nil {
		return
	}
	err = tx.Scan(runsBucket, "", true, func(e store.Entry) error {
		var r Run
		if json.Unmarshal(e.Value, &r) == nil && r.Status == StatusFailed {
			failed += max(1, int64(r.Events)) // a batch run gave up all its events
		}
		return nil
	})
	return
}

// eventSealer is a transaction that encrypts some buckets at rest
// (seal.Tx): SealEvent seals a --decrypt hook's event value when bucket is
// encrypted, OpenEvent opens it.
type eventSealer interface {
	SealEvent(bucket, key string, v []byte) ([]byte, bool, error)
	OpenEvent(bucket, key string, sealed []byte) ([]byte, error)
}

// openRecord returns r, event seq of the outbox, with its value opened
// when it is sealed (see record.Sealed), in a read transaction of s; r
// itself stays sealed, as it is written back to the outbox. The value is
// read again from the outbox: a rekey since r was loaded sealed it anew.
func openRecord(ctx context.Context, s store.Store, seq uint64, r *record) (*record, error) {
	if !r.Sealed {
		return r, nil
	}
	o := *r
	err := s.View(ctx, func(tx store.Tx) error {
		es, ok := tx.(eventSealer)
		if !ok {
			return fmt.Errorf("%w: hook event on %q is encrypted and this store cannot decrypt", store.ErrCorrupt, r.Bucket)
		}
		if e, ok, err := tx.Get(outboxBucket, seqKey(seq)); err == nil && ok {
			keepValue(e, &o)
		}
		if !o.Sealed {
			return nil
		}
		v, err := es.OpenEvent(r.Bucket, string(r.Key), o.Value)
		o.Value, o.Sealed = v, false
		return err
	})
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// outboxEvent is an event read from the outbox with its sequence number.
type outboxEvent struct {
	seq uint64
	r   *record
}

// bucketEvents reads bucket's events waiting in the outbox that keep
// accepts (a damaged one is the deliverer's to drop, not these callers').
func bucketEvents(tx store.Tx, bucket string, keep func(*record) bool) ([]outboxEvent, error) {
	var evs []outboxEvent
	err := tx.Scan(outboxBucket, "", true, func(e store.Entry) error {
		r, err := decodeRecord(e)
		if err != nil || r.Bucket != bucket || !keep(r) {
			return nil
		}
		seq, err := parseSeqKey(e.Key)
		if err != nil {
			return nil
		}
		evs = append(evs, outboxEvent{seq, r})
		return nil
	})
	return evs, err
}

// ResealEvents opens the events of bucket sealed in the outbox for hooks
// added with --decrypt, under the bucket's data key as it is now, and
// returns a function that writes them back sealed under the data key it
// has then (or plain, when the bucket is no longer encrypted). A rekey, or
// turning encryption off, calls it around the change, in the same
// transaction: otherwise those events could never be opened again.
func ResealEvents(tx store.Tx, bucket string) (func() error, error) {
	es, ok := tx.(eventSealer)
	if !ok {
		return func() error { return nil }, nil
	}
	evs, err := bucketEvents(tx, bucket, func(r *record) bool { return r.Sealed })
	if err != nil {
		return nil, err
	}
	for _, x := range evs {
		if x.r.Value, err = es.OpenEvent(bucket, string(x.r.Key), x.r.Value); err != nil {
			return nil, err
		}
	}
	return func() error {
		for _, x := range evs {
			v, sealed, err := es.SealEvent(bucket, string(x.r.Key), x.r.Value)
			if err != nil {
				return err
			}
			if sealed {
				x.r.Value = v
			}
			x.r.Sealed = sealed
			if err := putRecord(tx, x.seq, x.r); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// SealPlainEvents seals, under bucket's data key, the values of the
// bucket's events waiting unsealed in the outbox, once the bucket has
// just been encrypted (in that transaction): recorded while it was plain
// (or by the reap of its expired values just before), they hold its
// plaintext, which would otherwise stay in the store's files until
// delivered. Sealed, each opens for its run to the bytes recorded, so
// every hook gets what it would have got.
func SealPlainEvents(tx store.Tx, bucket string) error {
	es, ok := tx.(eventSealer)
	if !ok {
		return nil
	}
	evs, err := bucketEvents(tx, bucket, func(r *record) bool { return !r.Sealed && r.Value != nil })
	if err != nil {
		return err
	}
	for _, x := range evs {
		v, sealed, err := es.SealEvent(bucket, string(x.r.Key), x.r.Value)
		if err != nil {
			return err
		}
		if !sealed {
			return nil // not encrypted after all: nothing to hide
		}
		x.r.Value, x.r.Sealed = v, true
		if err := putRecord(tx, x.seq, x.r); err != nil {
			return err
		}
	}
	return nil
}

// keepValue gives next, a record about to be written back to the outbox
// over e, e's value: a rekey may have sealed it anew (or opened it) since
// the deliverer read it.
func keepValue(e store.Entry, next *record) {
	if cur, err := decodeRecord(e); err == nil {
		next.Value, next.Sealed = cur.Value, cur.Sealed
	}
}
