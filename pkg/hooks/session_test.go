package hooks

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/store"
)

// sessionPut writes bucket/key through a new session, closes it, and
// returns it.
func sessionPut(t *testing.T, sess *Session, bucket, key string) *Session {
	t.Helper()
	err := sess.Update(context.Background(), func(tx *Tx) error {
		return tx.Put(store.Entry{Bucket: bucket, Key: key, Value: []byte("v")})
	})
	if err != nil {
		t.Fatal(err)
	}
	sess.Close()
	return sess
}

func TestSessionKicksDelivery(t *testing.T) {
	s, _ := sqliteStore(t)
	addHook(t, s, Hook{Events: Set, Key: "watched"})
	spawned := 0
	spawn := func() (<-chan struct{}, error) { spawned++; return nil, nil }

	// An event: nobody delivers, so the session starts a dispatcher.
	sessionPut(t, &Session{Store: s, Spawn: spawn}, "main", "watched")
	if spawned != 1 {
		t.Fatalf("spawned %d dispatchers for a recorded event, want 1", spawned)
	}
	// --no-hooks records nothing and starts nothing.
	sessionPut(t, &Session{Store: s, Spawn: spawn, NoHooks: true}, "main", "watched")
	if spawned != 1 || len(outbox(t, s)) != 1 {
		t.Fatalf("--no-hooks: spawned %d, outbox %d", spawned, len(outbox(t, s)))
	}
}

// The dispatcher started for an event was killed with -9 before it
// delivered: the next write to the store, even one no hook matches,
// notices the waiting event and starts another. Reads never look.
func TestSessionRestartsDeliveryForOrphanedEvents(t *testing.T) {
	s, _ := sqliteStore(t)
	addHook(t, s, Hook{Events: Set, Key: "watched"})
	dead := func() (<-chan struct{}, error) { return nil, nil } // a dispatcher that dies at once
	sessionPut(t, &Session{Store: s, Spawn: dead}, "main", "watched")
	if len(outbox(t, s)) != 1 {
		t.Fatal("no event recorded")
	}

	spawned := 0
	spawn := func() (<-chan struct{}, error) { spawned++; return nil, nil }
	sess := &Session{Store: s, Spawn: spawn}
	err := sess.Store.View(context.Background(), func(tx store.Tx) error {
		_, err := sess.WantsGet(tx, "main", "other")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sess.Close()
	if spawned != 0 {
		t.Fatalf("a read started %d dispatchers", spawned)
	}

	sessionPut(t, &Session{Store: s, Spawn: spawn}, "main", "unwatched")
	if spawned != 1 {
		t.Fatalf("a write beside an orphaned event started %d dispatchers, want 1", spawned)
	}

	// Once the outbox is empty, writes start nothing.
	f := newFakeRunner(t)
	deliver(t, newDeliverer(t, s, f))
	sessionPut(t, &Session{Store: s, Spawn: spawn}, "main", "unwatched")
	if spawned != 1 {
		t.Fatalf("a write with an empty outbox started a dispatcher (%d)", spawned)
	}
}

// A dispatcher holding the delivery lock is delivering: a write does not
// start another for the events it sees waiting.
func TestSessionLeavesRunningDispatcherAlone(t *testing.T) {
	s, _ := sqliteStore(t)
	addHook(t, s, Hook{Events: Set, Key: "watched"})
	sessionPut(t, &Session{Store: s}, "main", "watched")
	info, err := s.Info()
	if err != nil {
		t.Fatal(err)
	}
	holdLock(t, StateDir(info), DeliverLock)
	spawned := 0
	sessionPut(t, &Session{Store: s, Spawn: func() (<-chan struct{}, error) { spawned++; return nil, nil }}, "main", "unwatched")
	if spawned != 0 {
		t.Fatalf("started %d dispatchers beside a running one", spawned)
	}
}

// fakeTime is a clock that moves only when slept on.
type fakeTime struct{ now time.Time }

func (f *fakeTime) Now() time.Time        { return f.now }
func (f *fakeTime) Sleep(d time.Duration) { f.now = f.now.Add(d * 50) }

// With Wait, a session whose events nobody delivers gives up after three
// deliverers in a row came and went, with a warning, instead of hanging.
func TestSessionWaitGivesUp(t *testing.T) {
	s, _ := sqliteStore(t)
	addHook(t, s, Hook{Events: Set, Key: "watched"})
	clk := &fakeTime{now: t0}
	spawned := 0
	var warnings []string
	sess := &Session{
		Store: s, Wait: true, Now: clk.Now, Sleep: clk.Sleep,
		Spawn: func() (<-chan struct{}, error) { spawned++; return nil, nil },
		Warn:  func(msg string) { warnings = append(warnings, msg) },
	}
	sessionPut(t, sess, "main", "watched")
	if len(warnings) != 1 || !strings.Contains(warnings[0], "1 event(s) not delivered") {
		t.Fatalf("warnings: %q", warnings)
	}
	// One for the event, then one a second until three came and went.
	if spawned != strikeLimit {
		t.Fatalf("spawned %d dispatchers, want %d", spawned, strikeLimit)
	}
}

// A deliverer that is still starting (a loaded machine) is not a strike
// within stallLimit: Wait neither gives up on it nor starts another.
func TestSessionWaitPatientWithSlowStart(t *testing.T) {
	s, _ := sqliteStore(t)
	addHook(t, s, Hook{Events: Set, Key: "watched"})
	clk := &fakeTime{now: t0}
	slow := make(chan struct{})
	spawned, slowUntil := 0, t0.Add(stallLimit-time.Second)
	var warnedAt time.Time
	sess := &Session{
		Store: s, Wait: true, Now: clk.Now,
		Sleep: func(d time.Duration) {
			clk.Sleep(d)
			if slow != nil && !clk.now.Before(slowUntil) {
				close(slow)
				slow = nil
			}
		},
		Spawn: func() (<-chan struct{}, error) {
			spawned++
			if spawned == 1 {
				return slow, nil
			}
			return nil, nil
		},
		Warn: func(string) { warnedAt = clk.now },
	}
	sessionPut(t, sess, "main", "watched")
	if warnedAt.Before(slowUntil) {
		t.Fatalf("gave up at %v, while the first deliverer was still running (until %v)", warnedAt.Sub(t0), slowUntil.Sub(t0))
	}
	if spawned != strikeLimit {
		t.Fatalf("spawned %d dispatchers, want %d", spawned, strikeLimit)
	}
}

// With Wait, a session returns once the dispatcher it started delivered
// its events.
func TestSessionWaitReturnsWhenDelivered(t *testing.T) {
	s, _ := sqliteStore(t)
	addHook(t, s, Hook{Events: Set, Key: "watched"})
	f := newFakeRunner(t)
	d := newDeliverer(t, s, f)
	var warnings []string
	var delivered []chan error
	sess := &Session{
		Store: s, Wait: true,
		Spawn: func() (<-chan struct{}, error) {
			done := make(chan error, 1)
			delivered = append(delivered, done)
			go func() { done <- d.Deliver(context.Background(), nil, true) }()
			return nil, nil
		},
		Warn: func(msg string) { warnings = append(warnings, msg) },
	}
	sessionPut(t, sess, "main", "watched")
	for _, done := range delivered {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if len(warnings) != 0 || len(f.snapshot()) != 1 || len(outbox(t, s)) != 0 {
		t.Fatalf("warnings %q, %d runs, outbox %d", warnings, len(f.snapshot()), len(outbox(t, s)))
	}
}

// A store that other users can write records no events, and says so once.
func TestSessionUnsafeStoreWarnsOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, "sqlite:"+filepath.Join(dir, "s.db"), nil)
	addHook(t, s, Hook{Events: Set})
	if err := os.Chmod(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	sess := &Session{Store: s, Warn: func(msg string) { warnings = append(warnings, msg) }}
	for _, k := range []string{"a", "b"} {
		if err := sess.Update(context.Background(), func(tx *Tx) error {
			return tx.Put(store.Entry{Bucket: "main", Key: k, Value: []byte("v")})
		}); err != nil {
			t.Fatal(err)
		}
	}
	sess.Close()
	if len(warnings) != 1 || !strings.HasSuffix(warnings[0], "; no hook events are recorded") {
		t.Fatalf("warnings: %q", warnings)
	}
	if n := len(outbox(t, s)); n != 0 {
		t.Fatalf("%d events recorded from an unsafe store", n)
	}
}

// A deliverer that holds the lock but moves none of the session's events
// (another host's definitions, say) does not keep Wait forever: each
// stallLimit without progress is a strike.
func TestSessionWaitGivesUpOnStalledDeliverer(t *testing.T) {
	s, _ := sqliteStore(t)
	addHook(t, s, Hook{Events: Set, Key: "watched"})
	info, err := s.Info()
	if err != nil {
		t.Fatal(err)
	}
	holdLock(t, StateDir(info), DeliverLock)
	clk := &fakeTime{now: t0}
	var warnedAt time.Time
	sess := &Session{
		Store: s, Wait: true, Now: clk.Now, Sleep: clk.Sleep,
		Spawn: func() (<-chan struct{}, error) { t.Fatal("spawned beside a running deliverer"); return nil, nil },
		Warn:  func(string) { warnedAt = clk.now },
	}
	sessionPut(t, sess, "main", "watched")
	if warnedAt.IsZero() || warnedAt.Sub(t0) < strikeLimit*stallLimit {
		t.Fatalf("gave up after %v, want a warning after %v", warnedAt.Sub(t0), strikeLimit*stallLimit)
	}
}
