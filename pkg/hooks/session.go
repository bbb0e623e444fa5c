package hooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/livedict/livedict/pkg/store"
)

// Session is one writer's side of the hook protocol: a command of the CLI,
// or a program using the Go API. Its write transactions record the events
// enabled hooks want (see Tx); when the writer is done, Close tells a
// running daemon about the changes, makes sure someone delivers the events
// (waking the deliverer, or starting one with Spawn), and with Wait waits
// for them.
//
// A program that writes with store.Store.Update directly records no hook
// events; Session.Update is the way to write so that hooks see it.
type Session struct {
	// Store is the store written to.
	Store store.Store
	// NoHooks records none of the writer's own events (the --no-hooks
	// flag): no set, get or delete. The expire events of keys its lazy
	// reap deletes are still recorded: they are the keys', not the
	// command's, and once a key is reaped nothing could record them again.
	NoHooks bool
	// NoExpireEvents, with NoHooks, records no expire events either: for
	// reap and the daemon, whose own events they are.
	NoExpireEvents bool
	// MaxEventValue caps the value bytes an event carries (0: the
	// default).
	MaxEventValue int
	// Spawn starts a detached deliverer ('livedict hook deliver') when
	// events wait and nobody delivers them, and returns a channel closed
	// when that process has exited (nil when it cannot tell). Nil leaves
	// the events for a running daemon or the next livedict command that
	// writes to the store.
	Spawn func() (exited <-chan struct{}, err error)
	// Wait makes Close wait until the events this session recorded have
	// left the outbox (the --wait-hooks flag).
	Wait bool
	// Warn receives the warnings a user should see (a store unsafe for
	// hooks, a deliverer that cannot start); nil discards them.
	Warn func(msg string)
	// Now and Sleep drive Close's wait (time.Now and time.Sleep if nil).
	Now   func() time.Time
	Sleep func(time.Duration)

	events      []uint64
	wrote       bool
	minDeadline int64
	// orphaned is set when a write transaction saw events waiting with
	// nobody delivering them (a dispatcher killed with -9).
	orphaned   bool
	safety     error // checked once, when a hook first matters
	safetyDone bool
	dir        string
	// spawned is closed when the deliverer this session last started has
	// exited; nil when none was started or Spawn could not tell.
	spawned <-chan struct{}
	// delivers marks the daemon's own session: it holds the delivery
	// locks, so it neither looks for undelivered events (testing its own
	// locks would drop them, see Holder) nor keeps what it recorded.
	delivers bool
}

// Update runs fn in a write transaction that records hook events, and
// takes note of what it recorded once it committed.
func (s *Session) Update(ctx context.Context, fn func(*Tx) error) error {
	var htx *Tx
	err := s.Store.Update(ctx, func(raw store.Tx) error {
		var err error
		if htx, err = s.Wrap(raw); err != nil {
			return err
		}
		return fn(htx)
	})
	if err == nil && htx != nil {
		s.publish(htx.Watched)
		s.committed(htx)
	}
	return err
}

// Wrap returns raw recording the events enabled hooks want: none with
// NoHooks, or when the store is unsafe for hooks. When hooks are enabled
// it also looks, cheaply, whether events wait with nobody to deliver them,
// so Close can start a deliverer (see orphaned).
func (s *Session) Wrap(raw store.Tx) (*Tx, error) {
	var rec *Recorder
	if !s.NoHooks || !s.NoExpireEvents {
		var err error
		if rec, err = NewRecorder(raw, s.MaxEventValue); err != nil {
			return nil, err
		}
		if s.NoHooks {
			rec = rec.only(Expire)
		}
		if !rec.Empty() && s.unsafe() != nil {
			rec = nil
		}
		if !rec.Empty() && !s.orphaned && !s.delivers {
			if s.orphaned, err = s.undelivered(raw); err != nil {
				return nil, err
			}
		}
	}
	tx := Wrap(raw, rec)
	if s.watched() {
		tx.watchMax = s.MaxEventValue
		if tx.watchMax <= 0 {
			tx.watchMax = DefaultMaxEventValue
		}
	}
	return tx, nil
}

// watched reports whether a watcher runs for this store: one lock test,
// made afresh for every write transaction (a daemon's session lives
// long) and never cached.
func (s *Session) watched() bool {
	if bus := sharedBus(s.Store); bus != nil {
		on, err := bus.Listening(context.Background())
		return err == nil && on
	}
	dir, err := s.stateDir()
	return err == nil && watching(dir)
}

// publish hands committed events to the running watchers: over the store's
// own bus when hosts share it, else over the watchers' sockets. Never
// fails: a watcher that misses an event is a watcher that was not running.
func (s *Session) publish(events [][]byte) {
	if bus := sharedBus(s.Store); bus != nil {
		for _, ev := range events {
			if bus.Publish(context.Background(), ev) != nil {
				return
			}
		}
		return
	}
	publish(s.dir, events)
}

// undelivered reports whether events wait in the outbox while no process
// holds the delivery or daemon lock. It runs only in write transactions of
// stores with enabled hooks, and reads one outbox entry only when no
// deliverer holds its lock: two fcntl calls otherwise.
func (s *Session) undelivered(tx store.Tx) (bool, error) {
	dir, err := s.stateDir()
	if err != nil {
		return false, nil // no state dir, no deliverer to find
	}
	if pid, _ := Holder(dir, DaemonLock); pid != 0 {
		return false, nil
	}
	if pid, _ := Holder(dir, DeliverLock); pid != 0 {
		return false, nil
	}
	found := false
	err = tx.ScanAfter(outboxBucket, "", false, func(store.Entry) error {
		found = true
		return store.ErrStopScan
	})
	return found, err
}

// unsafe checks once whether hooks may run from this store, and warns when
// they may not.
func (s *Session) unsafe() error {
	if !s.safetyDone {
		s.safetyDone = true
		if info, err := store.Locate(s.Store); err == nil {
			s.safety = CheckSafe(info)
		}
		if s.safety != nil {
			s.warn(s.safety.Error() + "; no hook events are recorded")
		}
	}
	return s.safety
}

// KnownSafety tells the session the outcome of a CheckSafe its owner
// already made (and reported), so the session neither checks nor warns
// again.
func (s *Session) KnownSafety(err error) { s.safety, s.safetyDone = err, true }

func (s *Session) warn(msg string) {
	if s.Warn != nil {
		s.Warn(msg)
	}
}

// errNoStateDir: a store without a location (memory:) lives in one
// process; no daemon or dispatcher can serve it.
var errNoStateDir = errors.New("store has no state dir")

func (s *Session) stateDir() (string, error) {
	if s.dir == "" {
		info, err := store.Locate(s.Store)
		if err != nil {
			return "", err
		}
		if info.Location == "" {
			return "", errNoStateDir
		}
		s.dir = StateDir(info)
	}
	return s.dir, nil
}

// committed takes note of a transaction that committed.
func (s *Session) committed(tx *Tx) {
	if s.delivers {
		return
	}
	s.events = append(s.events, tx.Events...)
	s.wrote = s.wrote || tx.Wrote
	if tx.MinDeadline != 0 && (s.minDeadline == 0 || tx.MinDeadline < s.minDeadline) {
		s.minDeadline = tx.MinDeadline
	}
}

// WantsGet reports whether, in tx, a hook or a running watcher wants a
// get event for bucket/key, so a read may be done again in a write
// transaction that records it.
func (s *Session) WantsGet(tx store.Tx, bucket, key string) (bool, error) {
	if !s.NoHooks {
		rec, err := NewRecorder(tx, 0)
		if err != nil || rec.Wants(Get, bucket, key) {
			return err == nil, err
		}
	}
	return s.watched(), nil
}

// Close runs once the writer is done and its changes are committed: it
// tells a running daemon about changes, wakes or starts whoever delivers
// the recorded events (or events left behind by a deliverer that died),
// and waits for this session's events when Wait. It never fails: the
// writes are committed whatever happens to their delivery. It does not
// close the store.
func (s *Session) Close() {
	if !s.wrote && len(s.events) == 0 && !s.orphaned {
		return
	}
	dir, err := s.stateDir()
	if err != nil {
		return
	}
	if s.wrote {
		Notify(dir, DaemonSocket, ChangedMessage(s.minDeadline))
	}
	if len(s.events) == 0 && !s.orphaned {
		return
	}
	if err := Kick(dir, s.spawn); err != nil {
		s.warn("cannot start hook delivery: " + err.Error())
	}
	if s.Wait && len(s.events) > 0 {
		s.wait(dir)
	}
}

func (s *Session) spawn() error {
	if s.Spawn == nil {
		return nil
	}
	exited, err := s.Spawn()
	s.spawned = exited
	return err
}

// spawnedGone reports whether the deliverer this session last started has
// exited (true when it cannot tell).
func (s *Session) spawnedGone() bool {
	if s.spawned == nil {
		return true
	}
	select {
	case <-s.spawned:
		return true
	default:
		return false
	}
}

// strikeLimit is how many deliverers in a row may come and go without
// delivering anything before Wait gives up.
const strikeLimit = 3

// stallLimit is how long a running deliverer may hold events of this
// session without any of them leaving the outbox before that counts as a
// strike too (one that cannot run them: another host's definitions, a
// claim it waits out).
const stallLimit = 5 * time.Second

// wait waits until every event this session recorded has left the outbox
// (delivered, failed for good, or skipped). Every second it makes sure
// someone is still delivering. It gives up with a warning rather than hang
// the script after three strikes in a row, a strike being a deliverer that
// came and went while nothing moved, or stallLimit in which one that runs
// (or is still starting: a loaded machine can take seconds) moved nothing.
func (s *Session) wait(dir string) {
	now, sleep := s.Now, s.Sleep
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = time.Sleep
	}
	last, lastN, strikes := now(), -1, 0
	moved := last
	for {
		var n int
		err := s.Store.View(context.Background(), func(tx store.Tx) error {
			var err error
			n, err = Pending(tx, s.events)
			return err
		})
		if err != nil || n == 0 {
			return
		}
		sleep(10 * time.Millisecond)
		if now().Sub(last) < time.Second {
			continue
		}
		last = now()
		switch {
		case n != lastN:
			strikes, lastN, moved = 0, n, last
			continue
		case !s.delivering(dir) && s.spawnedGone():
			// Nobody is delivering: a strike, and start another.
		case last.Sub(moved) < stallLimit:
			continue // one is starting, or running a hook
		default:
			moved = last
		}
		if strikes++; strikes == strikeLimit {
			s.warn(fmt.Sprintf("--wait-hooks: %d event(s) not delivered; see 'livedict hook log' and 'livedict daemon status'", n))
			return
		}
		Kick(dir, s.spawn)
	}
}

// delivering reports whether a daemon or a dispatcher holds its lock.
func (s *Session) delivering(dir string) bool {
	d, _ := Holder(dir, DaemonLock)
	if d == 0 {
		d, _ = Holder(dir, DeliverLock)
	}
	return d != 0
}
