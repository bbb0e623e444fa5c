package hooks

import (
	"bytes"
	"context"
	"strconv"
	"time"

	"github.com/livedict/livedict/pkg/sandbox"
	"github.com/livedict/livedict/pkg/store"
)

// Batches (SPEC "Hooks", Batches): a hook with Batch > 0 gets up to Batch
// events in one run, as JSON Lines on stdin, LIVEDICT_EVENTS the count.
// A batch takes only the oldest waiting event of each order key, so a
// key's next event waits until the batch holding the one before it is
// done, retries included: at least once and in order per key hold as for
// single events. A partial batch starts at once when fewer of its hook's
// runs are going than half the deliverer's concurrency (batchEager),
// otherwise when it is full or its oldest event has waited the hook's
// BatchWait since it became ready.

// DefaultBatchWait is how long a partial batch may wait to fill while its
// hook is busy.
const DefaultBatchWait = 100 * time.Millisecond

// MaxBatch bounds --batch.
const MaxBatch = 100000

// BatchWait returns how long a partial batch of h waits to fill.
func (h Hook) BatchWait() time.Duration {
	if h.BatchWaitMs <= 0 {
		return DefaultBatchWait
	}
	return time.Duration(h.BatchWaitMs) * time.Millisecond
}

// batcher gathers one scheduling pass's startable events of batch hooks.
// busy (kept across passes) counts each hook's runs going.
type batcher struct {
	busy map[int64]int
	// eager is how many runs of a hook may be going with a partial batch
	// of it still starting at once.
	eager  int
	groups map[int64][]*item
	order  []int64
}

func newBatcher(busy map[int64]int, eager int) *batcher {
	return &batcher{busy: busy, eager: max(eager, 1), groups: map[int64][]*item{}}
}

// batchEager is the batcher's eager for a deliverer running at most conc
// hooks at once: half of them. A batch hook whose runs take longer than
// BatchWait is nearly always busy; when a partial batch waited whenever
// one run was going, nearly every event waited BatchWait. Starting on
// every free slot instead was worse on a loaded machine: tiny batches in
// four concurrent runs slowed each other's start (p99 709 ms). Batches
// still fill while half the slots run.
func batchEager(conc int) int { return max(conc/2, 1) }

// add takes it into its hook's batch when the hook batches, reporting
// whether it did. A full batch takes no more: the rest wait for the next.
func (b *batcher) add(it *item, defs map[int64]Hook, now time.Time) bool {
	h, ok := defs[it.rec.HookID]
	if !ok || !h.Enabled || h.Batch <= 0 {
		return false
	}
	if it.since.IsZero() {
		it.since = now
	}
	g, seen := b.groups[h.ID]
	if !seen {
		b.order = append(b.order, h.ID)
	}
	if len(g) < h.Batch {
		b.groups[h.ID] = append(g, it)
	}
	return true
}

// ready returns the batches to start now, at most slots of them, and the
// earliest time a batch held back must be looked at again (zero if none).
func (b *batcher) ready(defs map[int64]Hook, now time.Time, slots int) (start [][]*item, next time.Time) {
	for _, id := range b.order {
		g := b.groups[id]
		h := defs[id]
		oldest := g[0].since
		for _, it := range g[1:] {
			if it.since.Before(oldest) {
				oldest = it.since
			}
		}
		due := oldest.Add(h.BatchWait())
		if len(g) < h.Batch && b.busy[id] >= b.eager && now.Before(due) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		if len(start) >= slots {
			break
		}
		start = append(start, g)
	}
	return start, next
}

// attemptBatch runs hook h once on every event of batch: on a shared
// store, on those of them this deliverer could claim (none: no run).
func (d *Deliverer) attemptBatch(batch []*item, h Hook) outcome {
	o := outcome{it: batch[0], batch: batch, ran: batch, hook: h, start: d.now()}
	if d.Shared {
		if o.ran = d.claimAll(batch); len(o.ran) == 0 {
			return o
		}
		defer d.renewClaims(o.ran)()
	}
	// Sealed values opened for this run only: the items stay sealed, as
	// they are written back to the outbox.
	run := make([]*item, len(o.ran))
	for i, it := range o.ran {
		r, err := openRecord(context.Background(), d.Store, it.seq, it.rec)
		if err != nil {
			o.err = err // the hook never ran: retried, and logged with why
			return o
		}
		c := *it
		c.rec = r
		run[i] = &c
	}
	o.res, o.err = d.Run(context.Background(), d.BatchSpec(h, run))
	return o
}

// BatchSpec is the sandbox run of hook h for the events of batch: their
// JSON objects one per line, in outbox order, and in the environment the
// count and the hook, not one event's kind, bucket or key.
func (d *Deliverer) BatchSpec(h Hook, batch []*item) sandbox.Spec {
	var stdin bytes.Buffer
	for _, it := range batch {
		stdin.Write(it.rec.payload())
	}
	s := d.Spec(h, batch[0].rec)
	for _, k := range []string{"LIVEDICT_EVENT", "LIVEDICT_BUCKET", "LIVEDICT_KEY"} {
		delete(s.Env, k)
	}
	s.Env["LIVEDICT_EVENTS"] = strconv.Itoa(len(batch))
	s.Stdin = stdin.Bytes()
	return s
}

// finishBatch records a batch run, as finish does for one event: on
// success every event leaves the outbox; on failure each is retried with
// backoff, or given up when its retries are spent. The log gets one entry
// for the run, naming its first event and the count. It returns the
// events that left the outbox. also runs in the same transaction.
func (d *Deliverer) finishBatch(o outcome, also func(store.Tx) error) (dropped []*item, err error) {
	first := o.ran[0].rec
	run := &Run{
		Time: o.start.UnixMilli(), HookID: first.HookID, HookName: o.hook.Name,
		Event: first.Event, Bucket: first.Bucket, Key: first.Key, Events: len(o.ran),
		ExitCode: o.res.ExitCode, Signal: o.res.Signal, TimedOut: o.res.TimedOut,
		DurationMs: o.res.Duration.Milliseconds(), Output: o.res.Output, OutputCut: o.res.CutBytes,
	}
	if o.err != nil {
		run.Error, run.ExitCode = o.err.Error(), -1
	}
	retries := d.retries()
	if o.hook.Retries != nil {
		retries = *o.hook.Retries
	}
	ok := Succeeded(o.res, o.err)
	next := make([]record, len(o.ran))
	drop := make([]bool, len(o.ran))
	run.Status = StatusOK
	if !ok {
		run.Status = StatusFailed
	}
	for i, it := range o.ran {
		r := it.rec
		run.Attempt = max(run.Attempt, r.Attempts+1)
		run.Event |= r.Event
		next[i] = *r
		switch {
		case ok || r.Attempts >= retries:
			drop[i] = true
		default:
			run.Status = StatusRetry
			next[i].Attempts++
			next[i].NextAt = d.now().Add(d.backoff(next[i].Attempts)).UnixMilli()
			next[i].Owner, next[i].Lease = "", 0 // the retry is anyone's to run
		}
	}
	err = d.Store.Update(context.Background(), func(tx store.Tx) error {
		if err := also(tx); err != nil {
			return err
		}
		for i, it := range o.ran {
			if drop[i] && !d.Shared {
				// Every event is this deliverer's: whether it was
				// still there is what Delete reports, no Get needed.
				there, err := tx.Delete(outboxBucket, seqKey(it.seq))
				if err != nil {
					return err
				}
				drop[i] = there
				continue
			}
			e, there, err := tx.Get(outboxBucket, seqKey(it.seq))
			if err != nil {
				return err
			}
			if !there || !d.owns(e) {
				drop[i] = false // gone already, or another deliverer's now
				continue
			}
			if drop[i] {
				_, err = tx.Delete(outboxBucket, seqKey(it.seq))
			} else {
				keepValue(e, &next[i])
				err = putRecord(tx, it.seq, &next[i])
			}
			if err != nil {
				return err
			}
		}
		return appendRun(tx, run)
	})
	if err != nil {
		return nil, err
	}
	for i, it := range o.ran {
		*it.rec = next[i]
		it.since = time.Time{}
		if drop[i] {
			dropped = append(dropped, it)
		}
	}
	d.logRun(run)
	return dropped, nil
}

// startBatches starts the batches b has ready, at most slots of them,
// through start, and returns next moved earlier to when a batch held back
// must be looked at again.
func (d *Deliverer) startBatches(b *batcher, defs map[int64]Hook, now time.Time, slots int, next time.Time, start func([]*item, Hook)) time.Time {
	batches, at := b.ready(defs, now, slots)
	if !at.IsZero() && (next.IsZero() || at.Before(next)) {
		next = at
	}
	for _, g := range batches {
		for _, it := range g {
			it.running = true
		}
		h := defs[g[0].rec.HookID]
		b.busy[h.ID]++
		start(g, h)
	}
	return next
}

// batchDone takes a finished batch run back: its events are no longer
// running and, when record is set (the store has not failed), the run is
// recorded and the events that left the outbox leave pending too; also
// runs in the transaction that records it.
func (d *Deliverer) batchDone(o outcome, busy map[int64]int, pending []*item, record bool, also func(store.Tx) error) ([]*item, error) {
	if busy[o.hook.ID]--; busy[o.hook.ID] <= 0 {
		delete(busy, o.hook.ID)
	}
	for _, it := range o.batch {
		it.running = false
		if it.gone {
			pending = remove(pending, it) // delivered by another deliverer
		}
	}
	if !record || len(o.ran) == 0 {
		return pending, nil // leave the events for next time
	}
	dropped, err := d.finishBatch(o, also)
	if err != nil {
		return pending, err
	}
	return removeAll(pending, dropped), nil
}

// removeAll removes drop from items in one pass: a batch drops up to a
// thousand events from a pending list of up to maxPending, which one
// remove each made a quadratic copy.
func removeAll(items, drop []*item) []*item {
	if len(drop) == 0 {
		return items
	}
	gone := make(map[*item]bool, len(drop))
	for _, it := range drop {
		gone[it] = true
	}
	kept := items[:0]
	for _, it := range items {
		if !gone[it] {
			kept = append(kept, it)
		}
	}
	clear(items[len(kept):]) // let the dropped ones go
	return kept
}
