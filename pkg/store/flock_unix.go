//go:build unix

package store

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// errLockTimeout is what flockWait returns when the lock stayed held for
// the whole wait; callers turn it into ErrBusy with their own wording.
var errLockTimeout = errors.New("lock wait timed out")

// flockWait takes the flock(2) lock how (unix.LOCK_SH or unix.LOCK_EX) on
// fd, waiting at most timeout for it.
//
// The wait is a blocking flock in the kernel, not a poll. The kernel wakes
// its waiters the moment the lock is released, so with N contenders each
// gets its turn within about N hold times. A poller that sleeps between
// tries loses every release that happens while it sleeps to whoever is
// awake, and under load a few of 35 writers starved past the busy timeout.
//
// After a timeout or ctx the blocking call is left behind in a goroutine:
// it cannot be interrupted. The caller closes fd as usual; the kernel
// call holds its own reference to the open file, and whatever lock it
// gets is dropped with that reference as soon as it returns.
func flockWait(ctx context.Context, fd int, how int, timeout time.Duration) error {
	return waitLock(ctx, timeout,
		func() error { return flock(fd, how|unix.LOCK_NB) },
		func() error { return flock(fd, how) })
}

// waitLock takes a lock with try, which must not block, and when that
// finds it held, with block in a goroutine, for at most timeout (see
// flockWait, which is the common case).
func waitLock(ctx context.Context, timeout time.Duration, try, block func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// The uncontended case costs one system call and no goroutine.
	err := try()
	if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EACCES) {
		return err
	}
	got := make(chan error, 1)
	go func() { got <- block() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-got:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errLockTimeout
	}
}

// flock is flock(2), retried when a signal interrupts it.
func flock(fd int, how int) error {
	for {
		if err := unix.Flock(fd, how); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
