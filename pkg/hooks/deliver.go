package hooks

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/livedict/livedict/pkg/sandbox"
	"github.com/livedict/livedict/pkg/store"
)

// Runner runs one hook command: sandbox.Run in livedict, a fake in tests.
type Runner func(ctx context.Context, s sandbox.Spec) (sandbox.Result, error)

// Delivery defaults.
const (
	DefaultConcurrency = 4
	DefaultRetries     = 3
	// DefaultBackoff is the wait before the first retry; it doubles for
	// each one after, so three retries wait 1+2+4 = 7 s in all.
	DefaultBackoff = time.Second
	// maxPending bounds how many outbox events are held in memory at once.
	maxPending = 4096
	// refillEvery is how often, at most, a deliverer reads the outbox again
	// as runs end while it holds fewer than maxPending/2 events and the
	// outbox had no more (see Deliver).
	refillEvery = 100 * time.Millisecond
	// maxAhead bounds the events held from beyond the first maxPending
	// (see lookAhead in Deliver).
	maxAhead = 1024
	// lookAheadEvery is how often, at most, lookAhead reads past them:
	// up to maxPending events with their values, so not at every run.
	lookAheadEvery = time.Second
)

// Deliverer delivers the outbox's events to their hooks: at least once
// (an event leaves the outbox only in the transaction that logs its
// successful, or last, run), in order per hook and key (a key's next event
// waits until the one before it is done, retries included), at most
// Concurrency runs at a time.
type Deliverer struct {
	Store store.Store
	Run   Runner
	// Concurrency is how many hooks may run at once (DefaultConcurrency
	// if zero).
	Concurrency int
	// Retries is how many times a failed run is retried.
	Retries int
	// Backoff is the wait before the first retry (DefaultBackoff if zero).
	Backoff time.Duration
	// WorkDir holds each hook's private work dir, named by its id.
	WorkDir string
	// Getenv looks up the variables hooks pass through with --env.
	Getenv func(string) (string, bool)
	// Helper is the binary the sandbox re-executes (see sandbox.Spec).
	Helper string
	// Log receives one line per run; nil discards.
	Log *slog.Logger
	// Now is the wall clock retries are scheduled by (time.Now if nil).
	Now func() time.Time
	// NoWait makes an untilIdle Deliver also return when what is left
	// waits for a retry time (daemon --once delivers what is due now).
	NoWait bool
	// Shared is set for a store that several hosts deliver from: events
	// are claimed before they run (claim.go), and only definitions Key
	// verifies are run (sign.go).
	Shared bool
	// Key is this host's hook key (LoadHookKey), used when Shared.
	Key []byte
	// Lease is how long a claim lasts unrenewed (DefaultLease if zero).
	Lease time.Duration
	// Seen is the file, in this host's state dir, that keeps what its
	// deliverers have seen of a shared store's definitions (seen.go);
	// empty: not kept.
	Seen string
	// Live, when set, overrides Concurrency, Retries and Backoff with
	// its current settings at each use: the daemon's reload (SIGHUP)
	// applies to the delivery going on, which it used to stop, waiting
	// for every running hook (up to its timeout) before starting again.
	Live *atomic.Pointer[Settings]

	owner   string           // names this deliverer's claims
	refused map[int64]string // definitions logged as refused, by id
	// refusedRuns are refusals met while reading the definitions (a
	// read-only transaction), waiting to be written to the hook log.
	refusedRuns []*Run
	// leftBlocked is set when an untilIdle Deliver returned with events
	// left that are not this deliverer's to run now (another host's
	// definitions or claims), so Dispatch does not go round at once.
	leftBlocked bool
}

// item is one outbox event held in memory.
type item struct {
	seq     uint64
	rec     *record
	key     string // orderKey
	running bool
	since   time.Time // when a batch hook's event was first ready (batch.go)
	// heldUntil: another deliverer's claim on a shared store lasts until
	// then (or until a wake-up says the store changed).
	heldUntil time.Time
	// gone: a claim found the event delivered by another deliverer.
	gone bool
}

type outcome struct {
	it    *item
	batch []*item // a batch run's events, it first (batch.go)
	// ran is the part of batch that ran: on a shared store, the events
	// this deliverer could claim.
	ran     []*item
	hook    Hook
	skipped string // why the event is dropped without a run
	res     sandbox.Result
	err     error // the sandbox could not run the hook
	start   time.Time
	// claim is what claiming the event found (shared stores); anything
	// but claimed means no run happened.
	claim     claimState
	heldUntil time.Time
}

func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deliverer) logger() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Deliver delivers events until ctx is done or, when untilIdle, until the
// outbox is empty and nothing runs. A receive on wake means new events may
// have been recorded. When ctx is done, no new run starts; those running
// finish (each within its timeout) and are recorded before Deliver
// returns. An error from the store ends delivery (after the running hooks
// finish); events not yet recorded as delivered stay in the outbox.
func (d *Deliverer) Deliver(ctx context.Context, wake <-chan struct{}, untilIdle bool) error {
	conc := d.concurrency()
	if d.Shared && d.owner == "" {
		d.owner = newOwner()
	}
	d.leftBlocked = false
	var (
		pending []*item
		cursor  string
		// defs is the hook definitions as of the last read: with the
		// outbox, or alone after a run (see refill).
		defs map[int64]Hook
		// verified says, on a shared store, which definitions this
		// host's key verifies.
		verified map[int64]bool
		running  int
		done     = make(chan outcome, conc)
		stopErr  error
		busy     = map[int64]int{} // runs going per batch hook
	)
	// truncated says the last load stopped at maxPending: the outbox has
	// more than pending holds. loaded is when it last read the outbox.
	var (
		truncated bool
		loaded    time.Time
	)
	// ahead holds the events lookAhead took from beyond the cursor, until
	// a load reaches them. lookedAhead is when it last looked; aheadWanted
	// says something changed since (a run ended, a wake-up).
	var (
		ahead       = map[uint64]bool{}
		lookedAhead time.Time
		aheadWanted = true
	)
	// defsStale says a run ended, or a retry's time came, since the
	// definitions were last read: the next pass reads them first, for a
	// hook disabled or removed while its key's run went, or during a
	// retry's backoff, must not run again (SPEC: hook disable). Recording
	// a run reads them in its own transaction (finish), so a run's end
	// costs no transaction of its own as a rule.
	defsStale := false
	readDefs := func(tx store.Tx) error {
		hs, err := List(tx)
		if err != nil {
			return err
		}
		defsStale = false
		defs = make(map[int64]Hook, len(hs))
		verified = make(map[int64]bool, len(hs))
		for _, h := range hs {
			defs[h.ID] = h
			if d.Shared {
				verified[h.ID] = d.verify(h)
			}
		}
		if d.Shared && d.Seen != "" {
			d.refuseOlder(hs, defs, verified)
		}
		return nil
	}
	load := func() error {
		if len(pending) >= maxPending && defs != nil {
			err := d.Store.View(ctx, readDefs)
			if err == nil {
				d.flushRefused(ctx)
			}
			return err
		}
		loaded, truncated = time.Now(), false
		var damaged []store.Entry
		err := d.Store.View(ctx, func(tx store.Tx) error {
			if err := readDefs(tx); err != nil {
				return err
			}
			// going holds the seqs of the runs going on when the
			// outbox is read from its start again (see restarted).
			var going map[uint64]bool
			if cursor != "" {
				again, err := restarted(tx, cursor)
				if err != nil {
					return err
				}
				if again {
					going = map[uint64]bool{}
					kept := pending[:0]
					for _, it := range pending {
						if it.running {
							kept = append(kept, it)
							going[it.seq] = true
						}
					}
					clear(pending[len(kept):])
					pending, cursor, ahead = kept, "", map[uint64]bool{}
				}
			}
			return tx.ScanAfter(outboxBucket, cursor, true, func(e store.Entry) error {
				cursor = e.Key
				seq, err := parseSeqKey(e.Key)
				if err == nil && (ahead[seq] || going[seq]) {
					delete(ahead, seq) // held already (lookAhead)
					return nil
				}
				r, rerr := decodeRecord(e)
				if err != nil || rerr != nil {
					damaged = append(damaged, e)
					return nil
				}
				pending = append(pending, &item{seq: seq, rec: r, key: r.orderKey()})
				if len(pending) >= maxPending {
					truncated = true
					return store.ErrStopScan
				}
				return nil
			})
		})
		if err == nil {
			err = d.dropDamaged(damaged)
		}
		if err == nil {
			d.flushRefused(ctx)
		}
		return err
	}
	// lookAhead takes, when pending holds only the first maxPending events
	// of the outbox and slots are free, the oldest event of keys that have
	// none in pending from beyond them (looking at up to maxPending more).
	// Without it, a few keys whose events fill the window (a counter set
	// at every request, its hook slow) held up every other key and hook
	// until thousands of runs had gone: nothing past the window was read.
	// Every event of such a key lies past the cursor, so the first one
	// there is its oldest: order per key holds; load skips it later.
	lookAhead := func(slots int) (bool, error) {
		if !truncated || slots <= 0 || !aheadWanted || time.Since(lookedAhead) < lookAheadEvery {
			return false, nil
		}
		lookedAhead, aheadWanted = time.Now(), false
		// Those delivered before a load reached them are gone from the
		// outbox: forget them.
		have, kept := make(map[string]bool, len(pending)), map[uint64]bool{}
		for _, it := range pending {
			have[it.key] = true
			if ahead[it.seq] {
				kept[it.seq] = true
			}
		}
		if ahead = kept; len(ahead) >= maxAhead {
			return false, nil
		}
		took, looked, again := false, 0, false
		err := d.Store.View(ctx, func(tx store.Tx) error {
			var err error
			if again, err = restarted(tx, cursor); err != nil || again {
				return err // past the cursor is not where a key's oldest is
			}
			return tx.ScanAfter(outboxBucket, cursor, true, func(e store.Entry) error {
				if looked++; looked > maxPending {
					return store.ErrStopScan
				}
				seq, err := parseSeqKey(e.Key)
				r, rerr := decodeRecord(e)
				if err != nil || rerr != nil || ahead[seq] {
					return nil // a damaged one is load's to drop
				}
				k := r.orderKey()
				if have[k] {
					return nil
				}
				have[k] = true
				pending = append(pending, &item{seq: seq, rec: r, key: k})
				ahead[seq], took = true, true
				if slots--; slots == 0 || len(ahead) >= maxAhead {
					return store.ErrStopScan
				}
				return nil
			})
		})
		if err == nil && again {
			return true, load() // from the start of the new outbox
		}
		return took, err
	}
	// refill reads the outbox and the definitions again after a run: when
	// asked to (now), or when pending is running low, at once when the
	// outbox held more than pending could, else at most every refillEvery
	// (a wake brings new events at once; this is the backstop). Reading
	// the outbox after every run cost the daemon a transaction per event,
	// a seventh of its CPU at 200 runs a second.
	refill := func(now bool) error {
		if !now && (len(pending) >= maxPending/2 || (!truncated && time.Since(loaded) < refillEvery)) {
			return nil
		}
		return load()
	}
	stopping := false
	// A load that fails because ctx ended is no store failure: the runs
	// still going must be recorded.
	loadFailed := func(err error) {
		stopping = true
		if ctx.Err() == nil {
			stopErr = err
		}
	}
	if err := load(); err != nil {
		return err
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if !stopping && ctx.Err() != nil {
			stopping = true
		}
		if stopping && running == 0 {
			return stopErr
		}
		conc = d.concurrency() // a reload may have changed it
		// Start what may start: the oldest event of each order key, once
		// its retry time has come.
		var next time.Time
		// blocked counts the events left to other deliverers or to
		// other hosts' keys (shared stores): not this one's to wait for.
		// heads counts the events looked at: the oldest of each order
		// key, all of them unless the pass filled every slot first.
		blocked, heads := 0, 0
		if !stopping && defsStale {
			if err := d.Store.View(ctx, readDefs); err != nil {
				loadFailed(err)
			} else {
				d.flushRefused(ctx)
			}
		}
		if !stopping {
			now := d.now()
			b := newBatcher(busy, batchEager(conc))
			// Only the oldest event of each order key may start. They are
			// found as the pass goes, so a pass that fills the free slot
			// early stops there: finding every key's oldest event first,
			// at every pass, cost a deliverer with thousands pending more
			// than the runs it started (a map insert per pending event per
			// run).
			candidates := pending
			if d.Shared && len(pending) > 0 {
				// On a shared store each deliverer starts its pass at a
				// place of its own among the heads, so that several do
				// not all reach for the same events first.
				all := oldestPerKey(pending)
				first := int(hash(d.owner) % uint64(len(all)))
				candidates = append(all[first:len(all):len(all)], all[:first]...)
			}
			seen := map[string]bool{}
			for _, it := range candidates {
				if running >= conc {
					break
				}
				if seen[it.key] {
					continue
				}
				seen[it.key] = true
				heads++
				if it.running {
					continue
				}
				h, ok := defs[it.rec.HookID]
				if d.Shared && ok && !verified[h.ID] {
					blocked++
					continue
				}
				if it.heldUntil.After(now) {
					blocked++
					if next.IsZero() || it.heldUntil.Before(next) {
						next = it.heldUntil
					}
					continue
				}
				d.clampRetry(it.rec, now)
				if at := time.UnixMilli(it.rec.NextAt); it.rec.NextAt > 0 && at.After(now) {
					if next.IsZero() || at.Before(next) {
						next = at
					}
					continue
				}
				if b.add(it, defs, now) {
					continue
				}
				it.running = true
				running++
				go func() { done <- d.attempt(it, h, ok) }()
			}
			next = d.startBatches(b, defs, now, conc-running, next, func(batch []*item, h Hook) {
				running++
				go func() { done <- d.attemptBatch(batch, h) }()
			})
			if running < conc {
				took, err := lookAhead(conc - running)
				if err != nil {
					loadFailed(err)
				} else if took {
					continue // start them
				}
				if aheadWanted && truncated && len(ahead) < maxAhead {
					// Looked too recently: look again once it may.
					if at := lookedAhead.Add(lookAheadEvery); next.IsZero() || at.Before(next) {
						next = at
					}
				}
			}
		}
		if running == 0 && untilIdle {
			if len(pending) > 0 && (d.NoWait || blocked == heads) && !stopping {
				// Everything left waits for its retry time, or is
				// another deliverer's or another host's to run.
				d.leftBlocked = blocked == heads
				return nil
			}
			if len(pending) == 0 {
				if err := load(); err != nil || len(pending) == 0 {
					return err
				}
				continue
			}
		}
		var timerC <-chan time.Time
		if !next.IsZero() {
			timer.Reset(next.Sub(d.now()))
			timerC = timer.C
		}
		ctxDone := ctx.Done()
		if stopping {
			ctxDone = nil // stays ready once done: waiting on it would spin
		}
		select {
		case o := <-done:
			running--
			o.it.running = false
			defsStale, aheadWanted = true, true
			if o.batch != nil {
				var err error
				if pending, err = d.batchDone(o, busy, pending, stopErr == nil, readDefs); err != nil {
					stopErr, stopping = err, true
				} else if !stopping && stopErr == nil {
					if err := refill(false); err != nil {
						loadFailed(err)
					}
				}
				continue
			}
			if stopErr != nil {
				continue // the store failed: leave the event for next time
			}
			switch o.claim {
			case gone:
				pending = remove(pending, o.it)
				continue
			case held:
				o.it.heldUntil = o.heldUntil
				continue
			case notDue:
				continue
			}
			drop, err := d.finish(o, readDefs)
			if err != nil {
				stopErr, stopping = err, true
				continue
			}
			if drop {
				pending = remove(pending, o.it)
			}
			if !stopping {
				// A run to retry reads the definitions again first: its
				// hook may have been changed or disabled since.
				if err := refill(!drop); err != nil {
					loadFailed(err)
				}
			}
		case <-wake:
			if stopping {
				continue
			}
			// Another deliverer may have let its claims go.
			for _, it := range pending {
				it.heldUntil = time.Time{}
			}
			aheadWanted = true
			if err := load(); err != nil {
				loadFailed(err)
			}
		case <-timerC:
			// A retry's time may have come: its hook may have been
			// disabled or removed during the backoff.
			defsStale = true
		case <-ctxDone:
			stopping = true
		}
		if timerC != nil && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// restarted reports whether the outbox numbers its events from the start
// again since a deliverer read it up to cursor: its counter is behind
// the cursor, or gone. That is a store emptied under the deliverer (a
// Redis server restarted without persistence, FLUSHDB); its new events
// lie before the cursor, where a deliverer reading on from there never
// looked: the first ones waited until it was restarted, and a key's
// later events ran before them.
func restarted(tx store.Tx, cursor string) (bool, error) {
	at, err := parseSeqKey(cursor)
	if err != nil {
		return false, nil
	}
	e, ok, err := tx.Get(metaBucket, "event")
	if err != nil || !ok {
		return !ok && err == nil, err
	}
	n, err := strconv.ParseUint(string(e.Value), 10, 64)
	return err == nil && n < at, nil
}

// dropDamaged takes outbox entries livedict cannot read (a damaged store)
// out of the way, logging each as failed, so they do not stop the delivery
// of every event after them.
func (d *Deliverer) dropDamaged(entries []store.Entry) error {
	for _, e := range entries {
		run := &Run{Time: d.now().UnixMilli(), Status: StatusFailed, ExitCode: -1,
			Error: fmt.Sprintf("damaged event %s dropped: %.200q", e.Key, e.Value)}
		err := d.Store.Update(context.Background(), func(tx store.Tx) error {
			if _, err := tx.Delete(outboxBucket, e.Key); err != nil {
				return err
			}
			return appendRun(tx, run)
		})
		if err != nil {
			return err
		}
		d.logRun(run)
	}
	return nil
}

// oldestPerKey returns the first item of each order key, in order.
func oldestPerKey(items []*item) []*item {
	seen := make(map[string]bool, len(items))
	heads := make([]*item, 0, len(items))
	for _, it := range items {
		if !seen[it.key] {
			seen[it.key] = true
			heads = append(heads, it)
		}
	}
	return heads
}

func remove(items []*item, it *item) []*item {
	for i, x := range items {
		if x == it {
			return append(items[:i], items[i+1:]...)
		}
	}
	return items
}

// attempt runs it's hook once. It runs outside any transaction: a hook may
// take seconds and the store must not wait for it.
func (d *Deliverer) attempt(it *item, h Hook, found bool) outcome {
	o := outcome{it: it, hook: h, start: d.now()}
	if d.Shared {
		if o.claim, o.heldUntil = d.claim(it); o.claim != claimed {
			return o
		}
		defer d.renewClaims([]*item{it})()
	}
	switch {
	case !found:
		o.skipped = "hook removed"
		return o
	case !h.Enabled:
		o.skipped = "hook disabled"
		return o
	}
	r, err := openRecord(context.Background(), d.Store, it.seq, it.rec)
	if err != nil {
		o.err = err // the hook never ran: retried, and logged with why
		return o
	}
	o.res, o.err = d.Run(context.Background(), d.Spec(o.hook, r))
	return o
}

// Spec is the sandbox run of hook h for event r.
func (d *Deliverer) Spec(h Hook, r *record) sandbox.Spec {
	env := map[string]string{}
	for _, name := range h.Env {
		if d.Getenv == nil || EventVar(name) {
			// The event's own variables describe the event: never the
			// delivering process's (which inherits the writer's, a
			// hook's own when a hook calls livedict).
			continue
		}
		if v, ok := d.Getenv(name); ok {
			env[name] = v
		}
	}
	for k, v := range r.env() {
		env[k] = v
	}
	return sandbox.Spec{
		Argv:      h.Argv,
		Env:       env,
		Stdin:     r.payload(),
		Timeout:   h.Timeout(),
		WorkDir:   filepath.Join(d.WorkDir, strconv.FormatInt(h.ID, 10)),
		WriteDirs: h.Write,
		NoNetwork: h.NoNetwork,
		Helper:    d.Helper,
	}
}

// Succeeded reports whether a run delivered its event.
func Succeeded(res sandbox.Result, err error) bool {
	return err == nil && !res.TimedOut && res.ExitCode == 0 && res.Signal == ""
}

// finish records o in the store: the event leaves the outbox when its run
// succeeded, was the last allowed, or cannot happen; otherwise its next
// attempt is scheduled. It reports whether the event left the outbox.
// also runs in the same transaction (the deliverer reads the hook
// definitions again there).
func (d *Deliverer) finish(o outcome, also func(store.Tx) error) (drop bool, err error) {
	r := o.it.rec
	run := &Run{
		Time: o.start.UnixMilli(), HookID: r.HookID, HookName: o.hook.Name,
		Event: r.Event, Bucket: r.Bucket, Key: r.Key, Attempt: r.Attempts + 1,
		ExitCode: -1,
	}
	retries := d.retries()
	if o.hook.Retries != nil {
		retries = *o.hook.Retries
	}
	switch {
	case o.skipped != "":
		run.Status, run.Error, run.Attempt = StatusSkipped, o.skipped, r.Attempts
		drop = true
	default:
		run.ExitCode, run.Signal, run.TimedOut = o.res.ExitCode, o.res.Signal, o.res.TimedOut
		run.DurationMs = o.res.Duration.Milliseconds()
		run.Output, run.OutputCut = o.res.Output, o.res.CutBytes
		if o.err != nil { // the hook never ran
			run.Error, run.ExitCode = o.err.Error(), -1
		}
		switch {
		case Succeeded(o.res, o.err):
			run.Status, drop = StatusOK, true
		case r.Attempts >= retries:
			run.Status, drop = StatusFailed, true
		default:
			run.Status = StatusRetry
		}
	}
	next := *r
	if !drop {
		next.Attempts++
		next.NextAt = d.now().Add(d.backoff(next.Attempts)).UnixMilli()
		next.Owner, next.Lease = "", 0 // the retry is anyone's to run
	}
	err = d.Store.Update(context.Background(), func(tx store.Tx) error {
		if err := also(tx); err != nil {
			return err
		}
		if drop && !d.Shared {
			// Every event is this deliverer's: Delete says whether it
			// was still there, no Get needed.
			there, err := tx.Delete(outboxBucket, seqKey(o.it.seq))
			if err != nil || !there {
				return err // gone already: nothing to record
			}
			return appendRun(tx, run)
		}
		e, ok, err := tx.Get(outboxBucket, seqKey(o.it.seq))
		if err != nil || !ok {
			return err // gone already: nothing to record
		}
		if !d.owns(e) {
			// Our claim lapsed (a pause longer than the lease) and
			// another deliverer took the event over: the run is
			// logged, the event is theirs now.
			drop = false
			return appendRun(tx, run)
		}
		if drop {
			_, err = tx.Delete(outboxBucket, seqKey(o.it.seq))
		} else {
			keepValue(e, &next)
			err = putRecord(tx, o.it.seq, &next)
		}
		if err != nil {
			return err
		}
		return appendRun(tx, run)
	})
	if err != nil {
		return false, err
	}
	*o.it.rec = next
	d.logRun(run)
	return drop, nil
}

// backoff is the wait before retry n (1-based): Backoff, doubling.
// clampRetry brings a retry time that lies further ahead than the
// backoff of its attempt back to now plus that backoff. Retry times are
// wall-clock (they outlive the process that set them), so a clock set back
// after a failure (an hour, say) delayed the retry by as much, where SPEC
// promises retries within about 10 s. Only a clock that went back (or a
// deliverer with a longer retry_backoff) sets one that far.
func (d *Deliverer) clampRetry(r *record, now time.Time) {
	if d.retryTooFar(r, now) {
		r.NextAt = now.Add(d.backoff(r.Attempts)).UnixMilli()
	}
}

// retryTooFar reports whether r's retry time lies further ahead than the
// backoff of its attempt allows (see clampRetry): a claim treats it as due.
func (d *Deliverer) retryTooFar(r *record, now time.Time) bool {
	return r.Attempts > 0 && r.NextAt > now.Add(d.backoff(r.Attempts)).UnixMilli()
}

func (d *Deliverer) backoff(n int) time.Duration {
	b := d.Backoff
	if d.Live != nil {
		b = d.Live.Load().Backoff
	}
	if b <= 0 {
		b = DefaultBackoff
	}
	// Saturate rather than overflow: retry_backoff may be up to 100
	// years, and 1w << 20 already wraps past time.Duration's range to a
	// negative wait, which retried a failing hook at once, again and
	// again, instead of never.
	shift := min(n-1, 20)
	if b > math.MaxInt64>>shift {
		return math.MaxInt64
	}
	return b << shift
}

// concurrency is how many hooks may run at once.
func (d *Deliverer) concurrency() int {
	n := d.Concurrency
	if d.Live != nil {
		n = d.Live.Load().Concurrency
	}
	if n <= 0 {
		n = DefaultConcurrency
	}
	return n
}

// retries is how many times a failed run is retried, unless its hook says.
func (d *Deliverer) retries() int {
	if d.Live != nil {
		return d.Live.Load().Retries
	}
	return d.Retries
}

func (d *Deliverer) logRun(r *Run) {
	attrs := []any{"hook", r.HookID, "event", r.Event.String(), "bucket", r.Bucket,
		"key", string(r.Key), "attempt", r.Attempt, "status", r.Status}
	if r.Status != StatusSkipped {
		attrs = append(attrs, "exit", r.ExitCode, "duration_ms", r.DurationMs)
	}
	if r.Signal != "" {
		attrs = append(attrs, "signal", r.Signal)
	}
	if r.TimedOut {
		attrs = append(attrs, "timed_out", true)
	}
	if r.Error != "" {
		attrs = append(attrs, "error", r.Error)
	}
	level := slog.LevelInfo
	if r.Status != StatusOK {
		level = slog.LevelWarn
	}
	d.logger().Log(context.Background(), level, "hook run", attrs...)
}

// Test runs hook h once, now, for a made-up event ev on e, as 'hook test'
// does. Nothing is recorded: the run is not from the outbox.
func (d *Deliverer) Test(ctx context.Context, h Hook, ev Event, e store.Entry, now int64, maxValue int) (sandbox.Result, error) {
	r := &record{HookID: h.ID, Event: ev, Bucket: e.Bucket, Key: []byte(e.Key), Value: e.Value, ExpiresAt: e.ExpiresAt, Time: now}
	r.cut(maxValue) // as NewRecorder's max_event_value_bytes cuts real events
	if h.Batch > 0 {
		// As a real run of a batch hook: a batch, of one.
		return d.Run(ctx, d.BatchSpec(h, []*item{{rec: r}}))
	}
	return d.Run(ctx, d.Spec(h, r))
}
