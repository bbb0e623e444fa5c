package hooks

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/livedict/livedict/pkg/store"
)

// Notification messages. Any other datagram is a plain wake-up.
var (
	// msgTakeover asks a detached dispatcher to finish its running hooks
	// and exit, because the daemon is taking delivery over.
	msgTakeover = []byte("takeover")
	// MsgEvents says events were recorded.
	MsgEvents = []byte("events")
)

// ChangedMessage tells the daemon that a command changed the store and
// that the earliest deadline it wrote is minDeadline (Unix ms, 0: none).
func ChangedMessage(minDeadline int64) []byte {
	return []byte("changed " + strconv.FormatInt(minDeadline, 10))
}

// ParseMessage reads a notification: events reports MsgEvents; deadline is
// the deadline a ChangedMessage carries (0 when none, or for anything
// else). Datagrams come from any local process, so anything unexpected is
// just a wake-up.
func ParseMessage(msg []byte) (events bool, deadline int64) {
	word, arg, _ := strings.Cut(string(msg), " ")
	switch word {
	case string(MsgEvents):
		return true, 0
	case "changed":
		if at, err := strconv.ParseInt(arg, 10, 64); err == nil && at > 0 {
			return false, at
		}
	}
	return false, 0
}

// Dispatch is the detached dispatcher's whole life: take the delivery lock
// (or leave at once if someone has it, or a daemon runs), deliver until the
// outbox is empty, then let go. After letting go it looks at the outbox
// once more: a writer that committed an event while the lock was still held
// did not start a dispatcher, trusting this one to see the event; the
// second look does. When the store file was deleted or replaced meanwhile
// it returns an error wrapping store.ErrStoreReplaced: the caller should
// start a dispatcher on the store now at the path.
func Dispatch(ctx context.Context, d *Deliverer, stateDir string) error {
	blockedRounds, lastCount := 0, -1
	for {
		if pid, err := Holder(stateDir, DaemonLock); err != nil || pid != 0 {
			return err // the daemon delivers
		}
		lock, err := TryLock(stateDir, DeliverLock)
		if errors.Is(err, ErrLocked) {
			return nil
		}
		if err != nil {
			return err
		}
		err = deliverLocked(ctx, d, stateDir)
		lock.Release()
		// The store file deleted or replaced meanwhile (the old file
		// then refuses the runs' log entries, an error here): the events
		// a writer trusted this dispatcher with are in the new file,
		// which this process cannot see. Its caller starts one that can.
		if rerr := store.Replaced(d.Store); rerr != nil && ctx.Err() == nil {
			return rerr
		}
		if err != nil || ctx.Err() != nil {
			return unlessStopped(ctx, err)
		}
		more, err := HasPending(ctx, d.Store)
		if err != nil || !more {
			return unlessStopped(ctx, err)
		}
		if !d.leftBlocked {
			continue
		}
		// Everything left is another host's to run (its definitions, or
		// events it claimed). Going round at once would spin; look again
		// each second, lock released (a writer meanwhile starts its own
		// dispatcher), for longer than a claim's lease so the events of a
		// host that died are taken over; then leave them to daemons and
		// the next writer, unless events came in since the last look.
		n, err := pendingCount(ctx, d.Store)
		if err != nil {
			return unlessStopped(ctx, err)
		}
		if blockedRounds++; blockedRounds > maxBlockedRounds && n == lastCount {
			return nil
		}
		lastCount = n
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(blockedPause):
		}
	}
}

// unlessStopped is err, or nil once ctx ended: a dispatcher told to stop
// (SIGTERM) leaves what is left to the next one, and the store call that
// ctx cut short is no failure. Under load the stop came during one about
// as often as between them (TestDispatchDoesNotSpinOnRefusedEvents).
func unlessStopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// blockedPause and maxBlockedRounds pace a detached dispatcher whose
// events are all another host's: one look a second, for more than a
// claim's DefaultLease.
const (
	blockedPause     = time.Second
	maxBlockedRounds = 35
)

// pendingCount counts the events in the outbox.
func pendingCount(ctx context.Context, s store.Store) (int, error) {
	n := 0
	err := s.View(ctx, func(tx store.Tx) error {
		return tx.ScanAfter(outboxBucket, "", false, func(store.Entry) error {
			n++
			return nil
		})
	})
	return n, err
}

// deliverLocked delivers while holding the lock, until idle or until a
// daemon asks to take over.
func deliverLocked(ctx context.Context, d *Deliverer, stateDir string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wake := make(chan struct{}, 1)
	if l, err := Listen(stateDir, DeliverSocket); err == nil {
		defer l.Close()
		go func() {
			for msg := range l.C {
				if string(msg) == string(msgTakeover) || store.Replaced(d.Store) != nil {
					// The daemon takes over, or the store file was
					// replaced (see Dispatch): start nothing more.
					cancel()
					return
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}()
	}
	return d.Deliver(ctx, wake, true)
}

// HasPending reports whether any event waits in the outbox. It reads the
// outbox exactly as Deliver does (ScanAfter from the start), so the two can
// never disagree and make Dispatch go round without delivering.
func HasPending(ctx context.Context, s store.Store) (bool, error) {
	found := false
	err := s.View(ctx, func(tx store.Tx) error {
		return tx.ScanAfter(outboxBucket, "", false, func(store.Entry) error {
			found = true
			return store.ErrStopScan
		})
	})
	return found, err
}

// Kick makes sure someone delivers the events just committed: it wakes the
// daemon or the dispatcher that holds the delivery lock, and otherwise
// calls spawn to start a detached dispatcher. It must be called after the
// commit (see Dispatch for why that order makes it safe).
func Kick(stateDir string, spawn func() error) error {
	if pid, _ := Holder(stateDir, DaemonLock); pid != 0 {
		Notify(stateDir, DaemonSocket, MsgEvents)
		Notify(stateDir, DeliverSocket, MsgEvents)
		return nil
	}
	if pid, _ := Holder(stateDir, DeliverLock); pid != 0 {
		Notify(stateDir, DeliverSocket, MsgEvents)
		return nil
	}
	return spawn()
}

// Takeover asks a running detached dispatcher to stand aside.
func Takeover(stateDir string) { Notify(stateDir, DeliverSocket, msgTakeover) }
