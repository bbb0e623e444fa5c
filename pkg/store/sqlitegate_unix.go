//go:build unix

package store

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// writeGate queues this writer behind the store's other livedict writers
// with a blocking flock(2) on the database file, before SQLite's own
// locking. SQLite's busy handler polls with sleeps of up to 100 ms, so with
// dozens of writers the ones asleep lose the lock to whoever is awake, and
// some waited close to the busy timeout; in the kernel's queue each gets
// its turn (FlockWait). Readers do not take the gate: SQLite's PENDING lock
// already keeps them from starving a writer.
//
// flock and SQLite's fcntl locks do not interact, so the gate costs SQLite
// nothing. The release closes the descriptor, which drops every fcntl lock
// this process holds on the file: it must run only when no transaction is
// open, which run ensures.
func (s *sqliteStore) writeGate(ctx context.Context) (release func(), err error) {
	fd, err := unix.Open(s.real, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", s.path, err)
	}
	err = FlockWait(ctx, fd, unix.LOCK_EX, s.opts.BusyTimeout)
	if err == nil {
		return func() { unix.Close(fd) }, nil
	}
	unix.Close(fd)
	switch {
	case errors.Is(err, errLockTimeout):
		return nil, fmt.Errorf("%w: %s: another process held it for more than %s", ErrBusy, s.path, s.opts.busyFor())
	case ctx.Err() != nil:
		return nil, ctx.Err()
	default:
		return nil, fmt.Errorf("lock %s: %w", s.path, err)
	}
}
