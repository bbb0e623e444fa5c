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

// DefaultLease is how long a claim on an event lasts without renewal. A
// variable only so that the takeover tests need not wait out 30 s.
var DefaultLease = 30 * time.Second

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
// claim on it (see claimIn).
func (d *Deliverer) claim(it *item) (claimState, time.Time) {
	if len(d.claimAll([]*item{it})) == 0 {
		if it.gone {
			return gone, time.Time{}
		}
		if !it.heldUntil.IsZero() {
			return held, it.heldUntil
		}
		return notDue, time.Time{}
	}
	return claimed, time.Time{}
}

// claimAll claims, in one transaction, every event of items that no other
// deliverer holds and that is due, and returns those. Of the rest, it
// marks the ones delivered already gone and sets heldUntil on the ones
// another holds. It refreshes each item's record from the store: another
// deliverer may have run it and scheduled a retry.
func (d *Deliverer) claimAll(items []*item) []*item {
	var got []*item
	err := d.Store.Update(context.Background(), func(tx store.Tx) error {
		// Anew on every run: a store with optimistic transactions
		// (Redis) runs this again after a conflict, when what the
		// first run claimed may be another deliverer's now.
		got = nil
		now := d.now()
		for _, it := range items {
			it.gone, it.heldUntil = false, time.Time{}
			e, ok, err := tx.Get(outboxBucket, seqKey(it.seq))
			if err != nil {
				return err
			}
			if !ok {
				it.gone = true
				continue
			}
			r, err := decodeRecord(e)
			if err != nil {
				return err
			}
			*it.rec = *r
			switch {
			case r.Owner != "" && r.Owner != d.owner && r.Lease > now.UnixMilli():
				it.heldUntil = time.UnixMilli(r.Lease)
			case r.NextAt > now.UnixMilli() && !d.retryTooFar(r, now):
				// not due: its retry time was set elsewhere (one
				// further ahead than its backoff is a clock that went
				// back: due, as Deliver's clampRetry decided)
			default:
				r.Owner, r.Lease = d.owner, now.Add(d.lease()).UnixMilli()
				if err := putRecord(tx, it.seq, r); err != nil {
					return err
				}
				*it.rec = *r
				got = append(got, it)
			}
		}
		return nil
	})
	if err != nil {
		// Cannot tell: look again after a short while.
		d.logger().Warn("claiming hook events", "error", err.Error())
		for _, it := range items {
			it.gone, it.heldUntil = false, d.now().Add(time.Second)
		}
		return nil
	}
	return got
}

// renewClaims keeps the claims on items alive until the returned stop is
// called.
func (d *Deliverer) renewClaims(items []*item) (stop func()) {
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
				for _, it := range items {
					e, ok, err := tx.Get(outboxBucket, seqKey(it.seq))
					if err != nil {
						return err
					}
					if !ok {
						continue
					}
					r, err := decodeRecord(e)
					if err != nil {
						return err
					}
					if r.Owner != d.owner {
						continue // taken over: our run still ends in finish
					}
					r.Lease = d.now().Add(d.lease()).UnixMilli()
					if err := putRecord(tx, it.seq, r); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				d.logger().Warn("renewing hook events' claims", "error", err.Error())
			}
		}
	}()
	return func() { close(done); <-finished }
}

// owns reports whether the outbox entry e is claimed by this deliverer;
// on a store that is not shared every event is.
func (d *Deliverer) owns(e store.Entry) bool {
	if !d.Shared {
		return true
	}
	r, err := decodeRecord(e)
	return err == nil && r.Owner == d.owner
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
		d.queueRefused(h, "definition "+reason+" (hook_key_file)")
	}
	return false
}

// queueRefused keeps a refusal for the hook log (SPEC: a refused
// definition is logged on stderr and in hook log as refused), written by
// flushRefused once the read-only transaction that met it has ended. The
// signature is part of the record, so each version is logged once however
// many processes meet it.
func (d *Deliverer) queueRefused(h Hook, why string) {
	sig := h.Sig
	if len(sig) > 12 {
		sig = sig[:12]
	}
	if sig == "" {
		sig = "none"
	}
	d.refusedRuns = append(d.refusedRuns, &Run{Time: d.now().UnixMilli(), HookID: h.ID, HookName: h.Name,
		Status: StatusRefused, ExitCode: -1, Error: why + ", signature " + sig})
}

// flushRefused writes the queued refusals to the hook log, each unless the
// log has it already (another process on this host, or an earlier
// deliverer, logged the same version). A store that cannot be written
// (a read-only Redis user) loses only these records, logged on stderr.
func (d *Deliverer) flushRefused(ctx context.Context) {
	if len(d.refusedRuns) == 0 {
		return
	}
	runs := d.refusedRuns
	d.refusedRuns = nil
	err := d.Store.Update(ctx, func(tx store.Tx) error {
		logged, err := Log(tx, 0, false)
		if err != nil {
			return err
		}
		for _, r := range runs {
			dup := false
			for i := len(logged) - 1; i >= 0 && !dup; i-- {
				l := logged[i]
				dup = l.HookID == r.HookID && l.Status == StatusRefused && l.Error == r.Error
			}
			if dup {
				continue
			}
			if err := appendRun(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		d.logger().Warn("hook refused, not recorded in the hook log: " + err.Error())
	}
}

// refuseOlder applies this host's record of the definitions it has seen
// (seen.go) to the ones just read: a verified definition that was removed
// and put back is taken out of defs (its events are dropped, as for a
// removed hook), an older revision than one seen is not run (its events
// wait for the current one). Each is logged once. A record that cannot be
// read or written is logged and leaves the definitions as they are.
func (d *Deliverer) refuseOlder(hs []Hook, defs map[int64]Hook, verified map[int64]bool) {
	seen, err := readSeen(d.Seen)
	if err != nil {
		d.logger().Warn("hook definitions seen: "+err.Error(), "file", d.Seen)
		return
	}
	states, changed := seen.check(hs, verified)
	for _, h := range hs {
		why := ""
		switch states[h.ID] {
		case removed:
			why = "it was removed, and someone put its signed definition back"
			delete(defs, h.ID)
		case older:
			why = "it is an older copy of its definition than this host has seen (someone put it back)"
		default:
			continue
		}
		verified[h.ID] = false
		if d.refused == nil {
			d.refused = map[int64]string{}
		}
		if d.refused[h.ID] != h.Sig+"\x01" {
			d.refused[h.ID] = h.Sig + "\x01"
			d.logger().Warn("hook refused: "+why, "hook", h.ID, "status", StatusRefused)
			d.queueRefused(h, why)
		}
	}
	if changed {
		if err := writeSeen(d.Seen, seen); err != nil {
			d.logger().Warn("hook definitions seen: "+err.Error(), "file", d.Seen)
		}
	}
}

func hash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
