//go:build unix

package store

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// errLockTimeout is what FlockWait returns when the lock stayed held for
// the whole wait; callers turn it into ErrBusy with their own wording.
var errLockTimeout = errors.New("lock wait timed out")

// FlockWait takes the flock(2) lock how (unix.LOCK_SH or unix.LOCK_EX) on
// fd, waiting at most timeout for it (then errLockTimeout, which
// IsLockTimeout reports).
//
// The wait is a blocking flock in the kernel, not a poll. The kernel wakes
// its waiters the moment the lock is released, so with N contenders each
// gets its turn within about N hold times. A poller that sleeps between
// tries loses every release that happens while it sleeps to whoever is
// awake, and under load a few of 35 writers starved past the busy timeout.
func FlockWait(ctx context.Context, fd int, how int, timeout time.Duration) error {
	return waitLock(ctx, fd, timeout,
		func(fd int) error { return flock(fd, how|unix.LOCK_NB) },
		func(fd int) error { return flock(fd, how) })
}

// IsLockTimeout reports whether err is FlockWait's timeout.
func IsLockTimeout(err error) bool { return errors.Is(err, errLockTimeout) }

// waitLock takes a lock on fd with try, which must not block, and when
// that finds it held, with block in a goroutine, for at most timeout (see
// FlockWait, which is the common case). The locks taken this way (flock,
// OFD) belong to the open file, not the descriptor.
//
// After a timeout or ctx the blocking call is left behind: it cannot be
// interrupted. It runs on a duplicate of fd that it closes itself when it
// returns, so the caller closes fd as usual and the call can never lock
// whatever file reuses fd's number; once both are closed, whatever lock it
// got goes with the open file.
func waitLock(ctx context.Context, fd int, timeout time.Duration, try, block func(fd int) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// The uncontended case costs one system call and no goroutine.
	err := try(fd)
	if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EACCES) {
		return err
	}
	dfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	got := make(chan error, 1)
	go func() {
		err := block(dfd)
		unix.Close(dfd)
		got <- err
	}()
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
