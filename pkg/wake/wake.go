// Package wake lets a process sleep until another process may have changed
// the store, instead of polling it: lock --wait, run's single-flight
// followers and wait all block here.
//
// A Waker watches the folders store.ChangeWatches names with inotify. A wake-up
// is only a hint ("look again"): callers always re-read the store in a
// transaction, so a spurious wake-up costs one read and a missed one costs
// at most Fallback. Expiry writes nothing, so callers also pass the next
// deadline they care about. inotify creates no file and trusts nothing it
// reads (the events carry no data the caller uses), so unlike the hooks'
// sockets it needs no ownership check of the store's folder.
package wake

import (
	"context"
	"time"

	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
)

// Fallback is the longest a Waker sleeps without an event: the re-check
// that covers whatever inotify cannot see (a network filesystem, a store
// replaced under its path, a backend with no files). A variable only so
// that tests can lengthen it, making a wake-up that never comes a hang
// rather than a second's delay nobody notices.
var Fallback = time.Second

// settle is how long a woken Waker lets the writer finish: SQLite deletes
// its journal a few system calls before it drops its lock, and a reader
// that arrives in between meets the lock and sleeps in SQLite's busy
// handler (1 ms, then 2, 5, 10...), far longer than this pause.
const settle = 2 * time.Millisecond

// Waker blocks until one of its paths changes or a deadline passes.
type Waker struct {
	clock   ttl.Clock
	w       *watcher // nil when inotify is unavailable: timer only
	watches []store.Watch
	// feed is a shared store's change feed (store.ChangeFeed): writes on
	// other hosts never touch a local folder.
	feed     <-chan struct{}
	stopFeed context.CancelFunc
}

// New watches folders (which need not exist yet: a missing one is retried
// on every Wait). clock gives the time deadlines are measured in; nil is
// the system clock. New never fails: without inotify the Waker re-checks
// every Fallback.
func New(clock ttl.Clock, watches ...store.Watch) *Waker {
	if clock == nil {
		clock = ttl.System
	}
	wk := &Waker{clock: clock, watches: watches}
	if len(watches) > 0 {
		wk.w = newWatcher()
	}
	wk.arm()
	return wk
}

// ForStore is New over the folders whose change may mean bucket changed,
// and over the store's change feed when it has one (Redis). A feed that
// cannot start leaves the Fallback re-check.
func ForStore(clock ttl.Clock, s store.Store, bucket string) *Waker {
	wk := New(clock, store.ChangeWatches(s, bucket)...)
	if cf, ok := store.FeedOf(s); ok {
		ctx, cancel := context.WithCancel(context.Background())
		if feed, err := cf.Changes(ctx); err == nil {
			wk.feed, wk.stopFeed = feed, cancel
		} else {
			cancel()
		}
	}
	return wk
}

// arm adds the watches that are missing (a bucket folder made since).
func (wk *Waker) arm() {
	if wk.w != nil {
		wk.w.add(wk.watches)
	}
}

// Wait returns true as soon as a watched folder changes (or already changed
// since the last Wait), false when until passes or Fallback elapses first,
// and ctx's error when it is cancelled. A zero until means no deadline.
func (wk *Waker) Wait(ctx context.Context, until time.Time) (bool, error) {
	d := Fallback
	if !until.IsZero() {
		if left := until.Sub(wk.clock.Now()); left < d {
			d = left
		}
	}
	if d <= 0 {
		return wk.drain(), ctx.Err()
	}
	if wk.drainFeed() {
		return true, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	var events <-chan struct{}
	if wk.w != nil {
		events = wk.w.events
	}
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-events:
		time.Sleep(settle)
		wk.arm()
		return true, nil
	case _, ok := <-wk.feed:
		if !ok {
			wk.feed = nil // broken: the Fallback re-check is left
		}
		return ok, nil
	case <-t.C:
		wk.arm()
		return false, nil
	}
}

// drainFeed reports (and consumes) a change the feed already sent.
func (wk *Waker) drainFeed() bool {
	select {
	case _, ok := <-wk.feed:
		return ok
	default:
		return false
	}
}

// drain reports (and consumes) a pending event without blocking.
func (wk *Waker) drain() bool {
	if wk.drainFeed() {
		return true
	}
	if wk.w == nil {
		return false
	}
	select {
	case <-wk.w.events:
		return true
	default:
		return false
	}
}

// Close stops watching.
func (wk *Waker) Close() error {
	if wk.stopFeed != nil {
		wk.stopFeed()
	}
	if wk.w == nil {
		return nil
	}
	return wk.w.close()
}
