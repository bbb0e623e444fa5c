package store

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

// lockGate takes the turnstile in front of the file store's flock: an
// open-file-description write lock on the first byte of DIR/.lock, held by
// readers and writers alike only while they wait for the flock, and let go
// as soon as they have it.
//
// flock(2) lets a shared lock in while a writer waits for the readers to
// leave, so a steady stream of overlapping readers (commands reading while
// others write) can keep a writer out past the busy timeout: CI saw
// "stayed locked for 5s" with 8 goroutines alternating writes and reads.
// Behind the turnstile, once a writer is waiting no new reader gets in; it
// waits at the gate until the writer has the lock, so every waiter, reader
// or writer, is served in its turn.
//
// OFD locks and flock locks do not interact, so a livedict that knows
// nothing of the gate still excludes and is excluded as before. A
// descriptor opened read-only (a store the user may only read) cannot
// take a write lock and goes without the gate.
func lockGate(ctx context.Context, fd int, writable bool, timeout time.Duration) (release func(), err error) {
	if !writable {
		return func() {}, nil
	}
	byte0 := func(typ int16) *unix.Flock_t {
		return &unix.Flock_t{Type: typ, Whence: 0, Start: 0, Len: 1}
	}
	err = waitLock(ctx, fd, timeout,
		func(fd int) error { return unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, byte0(unix.F_WRLCK)) },
		func(fd int) error { return ofdLockWait(fd, byte0(unix.F_WRLCK)) })
	if err != nil {
		return nil, err
	}
	return func() { unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, byte0(unix.F_UNLCK)) }, nil
}

// ofdLockWait is F_OFD_SETLKW, retried when a signal interrupts it.
func ofdLockWait(fd int, lk *unix.Flock_t) error {
	for {
		if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLKW, lk); err != unix.EINTR {
			return err
		}
	}
}
