package runcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/livedict/livedict/pkg/lease"
	"github.com/livedict/livedict/pkg/store"
)

// LeaseTTL is the single-flight lease's TTL: renewed every third of it
// while the command runs, it lets followers take over this long after a
// leader died without releasing.
const LeaseTTL = 30 * time.Second

// Options say how one call uses the cache.
type Options struct {
	// TTL is the entry's lifetime.
	TTL time.Duration
	// Stale, when > 0, marks a hit older than this as stale (the caller
	// refreshes it in the background).
	Stale time.Duration
	// Force runs the command even when an entry is fresh.
	Force bool
	// Skip: when another caller is already running the command, return
	// at once (Result.Skipped) rather than wait for its result.
	Skip bool
	// DiscardFailures does not store a non-zero exit status.
	DiscardFailures bool
}

// Result is what Do did.
type Result struct {
	Entry Entry
	// Hit: Entry came from the cache (possibly run by a concurrent
	// caller this one waited for).
	Hit bool
	// Stale: a hit older than Options.Stale.
	Stale bool
	// Skipped: Options.Skip and another caller was running it.
	Skipped bool
	// Stored: this call ran the command and cached the result.
	Stored bool
	// NotStored says why this call ran the command but did not cache
	// its result (store.ErrValueTooLarge, a full bucket...); nil when it
	// was stored or deliberately discarded.
	NotStored error
}

// Cache is a bucket of cached results.
type Cache struct {
	// Locker runs the transactions (its View reads entries) and the
	// single-flight lease; its View must be set.
	Locker *lease.Locker
	Bucket string
	Limits store.Limits
}

// lockName is the single-flight lease's key for key.
func lockName(key string) string {
	const prefix = "running:"
	if len(prefix)+len(key) <= store.MaxKeyBytes {
		return prefix + key
	}
	sum := sha256.Sum256([]byte(key))
	return prefix + "#" + hex.EncodeToString(sum[:])
}

// Do returns key's cached result, or runs the command with run and
// caches its result unless run says it must not be (a command killed by
// a signal, interrupted: its output is not its result). Concurrent callers of a missing (or, with Force,
// any) entry run it once: the lease on "running:KEY" elects one, the
// others sleep on the Waker until it stores the result and releases in
// the same transaction. A leader that dies frees the lease after
// LeaseTTL and a follower takes over.
//
// A leader that ends without storing a result (its command failed under
// DiscardFailures, its output was too large, a signal killed it) releases
// with nothing to hand on: the callers that waited for it then run the
// command each at once, as bkt would, rather than elect one leader after
// another, each waiting for the last (8 callers of a failing 10s command
// took 80s). A leader that died (its lease lapsed, not released) is still
// taken over by one follower.
func (c *Cache) Do(ctx context.Context, key string, o Options, run func() (Entry, bool)) (Result, error) {
	ref := lease.Ref{Bucket: c.Bucket, Name: lockName(key), Limits: c.Limits}
	owner := lease.NewOwner()
	var leader lease.Holder // the leader this caller waits for
	for {
		if !o.Force {
			if res, ok, err := c.lookup(key, o); err != nil || ok {
				return res, err
			}
		}
		if leader.Token != 0 {
			released, err := c.released(ref, leader)
			if err != nil {
				return Result{}, err
			}
			if released {
				// Its result and its release land in one transaction:
				// a lookup now sees the result if there is one (the
				// one above may have run before that commit).
				if res, ok, err := c.lookup(key, o); err != nil || ok {
					return res, err
				}
				res, err := c.store(key, o, run, nil)
				if err != nil {
					res.NotStored = err // printed, uncached
				}
				return res, nil
			}
		}
		h, ok, err := c.Locker.Acquire(ctx, ref, owner, 1, LeaseTTL, 0)
		if store.KindOf(err) == store.KindPolicy {
			// No room for the lease (a full bucket or store): run the
			// command alone, its result printed and not cached, as one
			// too large to keep is.
			ent, _ := run()
			return Result{Entry: ent, NotStored: err}, nil
		}
		if err != nil {
			return Result{}, err
		}
		if ok {
			return c.lead(key, o, ref, h, run)
		}
		if o.Skip {
			return Result{Skipped: true}, nil
		}
		// Someone else is running it: sleep until the bucket changes
		// (its result and release land together) or its lease lapses.
		var st lease.State
		if err := c.Locker.View(func(tx store.Tx) (err error) {
			st, err = lease.Status(tx, ref)
			return err
		}); err != nil {
			return Result{}, err
		}
		var until time.Time
		if d := st.NextDeadline(); d != 0 {
			until = time.UnixMilli(d)
		}
		if len(st.Holders) == 1 {
			leader = st.Holders[0]
		}
		if _, err := c.Locker.Wait(ctx, until); err != nil {
			return Result{}, err
		}
		o.Force = false // a forced call is satisfied by the result it waited for
	}
}

// released reports whether leader gave the lease up before its deadline
// (so it ended, and left no result this caller can use), rather than
// still holding it or having let it lapse (it died).
func (c *Cache) released(ref lease.Ref, leader lease.Holder) (bool, error) {
	var released bool
	err := c.Locker.View(func(tx store.Tx) error {
		st, err := lease.Status(tx, ref)
		if err != nil {
			return err
		}
		released = tx.Now() < leader.Deadline && !slices.ContainsFunc(st.Holders, func(h lease.Holder) bool { return h.Token == leader.Token })
		return nil
	})
	return released, err
}

// lookup reads key; ok when it holds a live result.
func (c *Cache) lookup(key string, o Options) (Result, bool, error) {
	var res Result
	var found bool
	err := c.Locker.View(func(tx store.Tx) error {
		e, ok, err := tx.Get(c.Bucket, key)
		if err != nil || !ok {
			return err
		}
		ent, err := Decode(e.Value)
		if err != nil {
			return nil // something else lives there: run and overwrite it
		}
		found = true
		res = Result{Entry: ent, Hit: true, Stale: o.Stale > 0 && tx.Now()-ent.Created >= o.Stale.Milliseconds()}
		return nil
	})
	return res, found, err
}

// lead runs the command as the elected caller and stores its result in
// the transaction that releases the lease.
func (c *Cache) lead(key string, o Options, ref lease.Ref, h lease.Holder, run func() (Entry, bool)) (Result, error) {
	if !o.Force { // a leader may have finished between our read and our lease
		if res, ok, err := c.lookup(key, o); err != nil || ok {
			c.Locker.Release(ref, h)
			return res, err
		}
	}
	_, stop := c.Locker.Keep(ref, h, LeaseTTL)
	res, err := c.store(key, o, func() (Entry, bool) {
		defer stop()
		return run()
	}, func(tx store.Tx) error {
		_, err := lease.Release(tx, ref, h)
		return err
	})
	if err != nil {
		// The command ran: its output is still the caller's to print,
		// uncached, and the lease goes (or lapses) as usual.
		res.NotStored = err
		c.Locker.Release(ref, h)
	}
	return res, nil
}

// store runs the command and caches its result unless it must not be,
// running also (a leader's release, or nil) in the same transaction. The
// error is that transaction's.
func (c *Cache) store(key string, o Options, run func() (Entry, bool), also func(store.Tx) error) (Result, error) {
	ent, cacheable := run()
	res := Result{Entry: ent}
	keep := cacheable && !(o.DiscardFailures && ent.Status != 0)
	if keep {
		if err := c.Limits.CheckValue(EncodedSize(len(ent.Stdout), len(ent.Stderr))); err != nil {
			// Name what the user sees: the output, not its record.
			res.NotStored = fmt.Errorf("%w: its output is %d bytes (stdout and stderr, %d stored), max_value_bytes is %d",
				store.ErrValueTooLarge, len(ent.Stdout)+len(ent.Stderr), EncodedSize(len(ent.Stdout), len(ent.Stderr)), c.Limits.MaxValueBytes)
		}
		keep = res.NotStored == nil
	}
	if !keep && also == nil {
		return res, nil
	}
	err := c.Locker.Update(func(tx store.Tx) error {
		if keep {
			ent.Created = tx.Now()
			if _, err := store.Set(tx, c.Limits, store.SetArgs{
				Bucket: c.Bucket, Key: key, Value: ent.Encode(), ExpiresAt: ent.Created + o.TTL.Milliseconds(),
			}); err != nil {
				return err
			}
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	res.Stored = keep && err == nil
	return res, err
}
