package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
	"github.com/livedict/livedict/pkg/wake"
)

// ErrLost: a held lease was found taken over or gone at renewal.
var ErrLost = errors.New("lease lost")

// Locker runs the lease steps through the caller's transactions (so hook
// events and lazy reaping happen as for any other write) and waits on a
// Waker instead of polling.
type Locker struct {
	// Update runs fn in one read-write transaction.
	Update func(fn func(store.Tx) error) error
	// View runs fn in one read-only transaction; nil makes every
	// attempt a write.
	View func(fn func(store.Tx) error) error
	// Clock is the clock the store's transactions use.
	Clock ttl.Clock
	// NewWaker makes the Waker that wakes waiters when the bucket may
	// have changed; nil re-checks every wake.Fallback. It is called on
	// the first wait only, so an uncontended lock sets up no watch.
	NewWaker func() *wake.Waker
	// Turn, when set, queues this waiter behind the others of its host
	// (for at most within, then ErrNoTurn): only the first in the queue
	// watches the store, the rest wait in the kernel. within is a
	// duration, not a time: Clock may not be the system's.
	Turn func(ctx context.Context, r Ref, within time.Duration) (release func(), err error)
	// Warn, when set, is told once that a waiter waits out a store that
	// stopped answering (see outage).
	Warn func(msg string)

	waker *wake.Waker
}

// ErrNoTurn is what a Turn returns when its wait ended first.
var ErrNoTurn = errors.New("no turn in time")

// Acquire tries to take r for owner, waiting up to wait for a place. It
// wakes on every change to the bucket (a release) and at the earliest
// holder's deadline (an expiry writes nothing). False: not acquired in
// time.
//
// After a failed attempt, a woken waiter first looks with a read-only
// transaction and only tries again (a write) when there is room: with
// many waiters, every change would otherwise queue all of them for the
// write lock, ahead of the holder's release.
func (l *Locker) Acquire(ctx context.Context, r Ref, owner string, limit int, ttlD, wait time.Duration) (Holder, bool, error) {
	give := l.Clock.Now().Add(wait)
	var st State
	var leaveQueue func()
	defer func() {
		if leaveQueue != nil {
			leaveQueue() // the next waiter's turn, acquired or not
		}
	}()
	var retry time.Duration // between attempts while the store fails
	for tried := false; ; tried = true {
		full := false
		if tried && l.View != nil {
			if err := l.View(func(tx store.Tx) (err error) {
				st, err = Status(tx, r)
				return err
			}); err != nil {
				if err := l.outage(ctx, err, &retry, give); err != nil {
					return Holder{}, false, err
				}
				continue
			}
			full = len(st.Holders) >= limit
		}
		if !full {
			var h Holder
			var ok bool
			err := l.Update(func(tx store.Tx) (err error) {
				h, ok, st, err = Acquire(tx, r, owner, limit, ttlD.Milliseconds())
				return err
			})
			if err != nil && tried {
				if err := l.outage(ctx, err, &retry, give); err != nil {
					return Holder{}, false, err
				}
				continue
			}
			if err != nil || ok {
				return h, ok, err
			}
		}
		retry = 0
		if !l.Clock.Now().Before(give) {
			return Holder{}, false, nil
		}
		if l.Turn != nil && leaveQueue == nil {
			release, err := l.Turn(ctx, r, give.Sub(l.Clock.Now()))
			if errors.Is(err, ErrNoTurn) {
				return Holder{}, false, ctx.Err()
			}
			if err != nil {
				return Holder{}, false, err
			}
			leaveQueue = release
			continue // the lease may have been freed while we queued
		}
		until := give
		if next := time.UnixMilli(st.NextDeadline()); st.NextDeadline() != 0 && next.Before(until) {
			until = next
		}
		if _, err := l.Wait(ctx, until); err != nil {
			return Holder{}, false, err
		}
	}
}

// outage decides what a waiter does with err, met after its first
// attempt worked: a store that is busy or unreachable (a Redis server
// restarting, failing over) is waited out until give, as wait does, with
// one warning, and outage returns nil once it is time to try again; any
// other error, or one that lasts until give, is returned. Such an error
// writes nothing (store.Transient), so trying again cannot take the
// lease twice.
func (l *Locker) outage(ctx context.Context, err error, retry *time.Duration, give time.Time) error {
	if !store.Transient(err) || !l.Clock.Now().Before(give) {
		return err
	}
	if *retry == 0 && l.Warn != nil {
		l.Warn(fmt.Sprintf("%v; still waiting", err))
	}
	*retry = min(max(2**retry, 100*time.Millisecond), 2*time.Second)
	next := l.Clock.Now().Add(*retry)
	if give.Before(next) {
		next = give
	}
	_, werr := l.Wait(ctx, next)
	return werr
}

// Wait sleeps until the bucket may have changed or until passes. The
// first call only arms the Waker and returns at once: the caller checks
// again, now that no change can go unnoticed (check, arm, check, sleep).
func (l *Locker) Wait(ctx context.Context, until time.Time) (bool, error) {
	if l.waker == nil {
		if l.NewWaker != nil {
			l.waker = l.NewWaker()
		} else {
			l.waker = wake.New(l.Clock)
		}
		return true, ctx.Err()
	}
	return l.waker.Wait(ctx, until)
}

// Close releases the Waker, if one was made.
func (l *Locker) Close() error {
	if l.waker == nil {
		return nil
	}
	return l.waker.Close()
}

// Keep renews h every ttl/3 until stop is called, and reports ErrLost on
// lost (then stops renewing) when a renewal finds h no longer holding, or
// when renewals kept failing (a busy store) until h's deadline passed.
// stop returns once no renewal is running, so the caller may then use
// the store (Release) without racing one, except a renewal the store did
// not answer before h's deadline: that one is left behind, and h lost.
func (l *Locker) Keep(r Ref, h Holder, ttlD time.Duration) (lost <-chan error, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(max(ttlD/3, time.Millisecond))
		defer t.Stop()
		var failed error // the last renewal's error, until one works
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// The renewal runs on a goroutine of its own, raced against
			// h's deadline: a store that stops answering instead of
			// failing (a network partition, where a Redis connection
			// hangs) must not keep CMD going past the deadline, once
			// another holder may have the lease.
			type renewal struct {
				h   Holder
				ok  bool
				err error
			}
			res := make(chan renewal, 1)
			go func() {
				var rn renewal
				rn.err = l.Update(func(tx store.Tx) (err error) {
					rn.h, rn.ok, err = Renew(tx, r, h, ttlD.Milliseconds())
					return err
				})
				res <- rn
			}()
			timeout := time.NewTimer(time.UnixMilli(h.Deadline).Sub(l.Clock.Now()))
			var rn renewal
			select {
			case rn = <-res:
				timeout.Stop()
			case <-timeout.C:
				if failed != nil {
					// The store answered the earlier ones, refusing
					// them (OOM, a read-only replica): say why, not
					// that this last one met the deadline first.
					ch <- fmt.Errorf("%w: renewals failed until its deadline: %w", ErrLost, failed)
					return
				}
				ch <- fmt.Errorf("%w: the store did not answer a renewal before the lease's deadline", ErrLost)
				return
			}
			failed = rn.err
			switch {
			case rn.err == nil && rn.ok:
				h = rn.h
			case rn.err == nil:
				ch <- fmt.Errorf("%w: another holder has it, or it was deleted", ErrLost)
				return
			case l.Clock.Now().UnixMilli() >= h.Deadline:
				// One line, as every error livedict prints.
				ch <- fmt.Errorf("%w: renewals failed until its deadline: %w", ErrLost, rn.err)
				return
			}
		}
	}()
	return ch, func() { cancel(); <-done }
}

// Release gives h up; false when it no longer held r.
func (l *Locker) Release(r Ref, h Holder) (bool, error) {
	var ok bool
	err := l.Update(func(tx store.Tx) (err error) {
		ok, err = Release(tx, r, h)
		return err
	})
	return ok, err
}
