package hooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"os"
	"time"

	"github.com/livedict/livedict/pkg/store"
)

// On a store shared between hosts, no lock file keeps a second deliverer
// away: every host's daemon (or detached dispatcher) delivers from the same
// outbox. So there each event is claimed in the store before its run: the
// claim names its owner and lasts a lease, renewed while the hook runs and
// given up when the run is recorded. A deliverer that dies leaves its
// claims to lapse, and another takes them over: at least once, never lost.
// Per-key order holds because a deliverer only ever claims the oldest event
// of a hook and key still in the outbox (its pending list holds every
// event from its first read on, and gives one up only once it is gone).

// DefaultLease is how long a claim on an event lasts without renewal.
const DefaultLease = 30 * time.Second

// claimState is what a claim attempt found.
type claimState int

const (
	claimed claimState = iota // ours now: run it
	gone                      // delivered by someone else: forget it
	held                      // another deliverer's, until heldUntil
	notDue                    // waits for a retry time set elsewhere
)

// newOwner names a deliverer in the claims it makes: host, pid and a
// random part, so two runs of one pid never pass for each other.
func newOwner() string {
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

func (d *Deliverer) lease() time.Duration {
	if d.Lease > 0 {
		return d.Lease
	}
	return DefaultLease
}

// claim takes it's event for this deliverer unless another holds a live
// claim on it. It refreshes it.rec from the store: another deliverer may
// have run it and scheduled a retry.
func (d *Deliverer) claim(it *item) (claimState, time.Time) {
	state, until := claimed, time.Time{}
	err := d.Store.Update(context.Background(), func(tx store.Tx) error {
		state, until = claimed, time.Time{}
		e, ok, err := tx.Get(outboxBucket, seqKey(it.seq))
		if err != nil {
			return err
		}
		if !ok {
			state = gone
			return nil
		}
		r, err := decodeRecord(e)
		if err != nil {
			return err
		}
		now := d.now()
		switch {
		case r.Owner != "" && r.Owner != d.owner && r.Lease > now.UnixMilli():
			state, until = held, time.UnixMilli(r.Lease)
		case r.NextAt > now.UnixMilli():
			state = notDue
		default:
			r.Owner, r.Lease = d.owner, now.Add(d.lease()).UnixMilli()
			if err := putRecord(tx, it.seq, r); err != nil {
				return err
			}
		}
		*it.rec = *r
		return nil
	})
	if err != nil {
		// Cannot tell: look again after a short while.
		d.logger().Warn("claiming a hook event", "error", err.Error())
		return held, d.now().Add(time.Second)
	}
	return state, until
}

// renewClaim keeps it's claim alive until the returned stop is called.
func (d *Deliverer) renewClaim(it *item) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(d.lease() / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			err := d.Store.Update(context.Background(), func(tx store.Tx) error {
				e, ok, err := tx.Get(outboxBucket, seqKey(it.seq))
				if err != nil || !ok {
					return err
				}
				r, err := decodeRecord(e)
				if err != nil || r.Owner != d.owner {
					return err // taken over: our run still ends in finish
				}
				r.Lease = d.now().Add(d.lease()).UnixMilli()
				return putRecord(tx, it.seq, r)
			})
			if err != nil {
				d.logger().Warn("renewing a hook event's claim", "error", err.Error())
			}
		}
	}()
	return func() { close(done); <-finished }
}

// verify tells, on a shared store, whether this host's key signed h; a
// definition it did not sign is not run here (its events wait for a host
// whose key verifies it) and is logged once per version.
func (d *Deliverer) verify(h Hook) bool {
	if h.Verified(d.Key) {
		return true
	}
	if d.refused == nil {
		d.refused = map[int64]string{}
	}
	if d.refused[h.ID] != h.Sig+"\x00" {
		d.refused[h.ID] = h.Sig + "\x00"
		reason := "not signed"
		if h.Sig != "" {
			reason = "signed with another key"
		}
		d.logger().Warn("hook refused: its definition is "+reason+" (hook_key_file)", "hook", h.ID, "status", StatusRefused)
	}
	return false
}

func hash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
