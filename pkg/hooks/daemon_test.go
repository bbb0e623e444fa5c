package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/sandbox"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
)

// These tests run the daemon in this process. It holds POSIX locks, which
// a process must never test itself (see Holder): they write with plain
// hook transactions and Notify, never with a Session or Kick.

func testDaemon(t *testing.T, s store.Store, clk ttl.Clock, f *fakeRunner) *Daemon {
	d := NewDaemon(s, Settings{Concurrency: 2, Retries: 1, Backoff: 2 * time.Millisecond})
	d.Clock, d.RunHook = clk, f.Run
	return d
}

func stateDirOf(t *testing.T, s store.Store) string {
	t.Helper()
	info, err := s.Info()
	if err != nil {
		t.Fatal(err)
	}
	return StateDir(info)
}

// startDaemon runs d until the test ends, and returns how to stop it and
// wait for it.
func startDaemon(t *testing.T, d *Daemon) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			cancel()
			err, stopped = <-done, true
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// eventually waits (really: the daemon is another goroutine) until cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting: %s", what)
}

func putTTL(t *testing.T, s store.Store, key string, at int64) {
	t.Helper()
	mustHookUpdate(t, s, func(tx *Tx) error {
		return tx.Put(store.Entry{Bucket: "main", Key: key, Value: []byte("v"), ExpiresAt: at})
	})
}

func live(t *testing.T, s store.Store, key string) bool {
	var ok bool
	view(t, s, func(tx store.Tx) error {
		var err error
		_, ok, err = tx.Get("main", key)
		return err
	})
	return ok
}

// --once reaps what is due by the injected clock, records the expire
// events and delivers them, then returns.
func TestDaemonOnceReapsAndDelivers(t *testing.T) {
	s, clk := sqliteStore(t)
	addHook(t, s, Hook{Events: Expire})
	putTTL(t, s, "soon", t0.Add(time.Minute).UnixMilli())
	putTTL(t, s, "later", t0.Add(time.Hour).UnixMilli())
	clk.Advance(2 * time.Minute)
	f := newFakeRunner(t)
	d := testDaemon(t, s, clk, f)
	d.Once = true
	if err := d.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls := f.snapshot()
	if len(calls) != 1 || calls[0].event != "expire" || calls[0].key != "soon" {
		t.Fatalf("runs: %+v", calls)
	}
	if live(t, s, "soon") || !live(t, s, "later") || len(outbox(t, s)) != 0 {
		t.Fatalf("soon live %v, later live %v, outbox %d", live(t, s, "soon"), live(t, s, "later"), len(outbox(t, s)))
	}
}

// A second daemon for the store returns a RunningError naming the first.
func TestDaemonOnePerStore(t *testing.T) {
	s, clk := sqliteStore(t)
	h := holdLock(t, stateDirOf(t, s), DaemonLock)
	err := testDaemon(t, s, clk, newFakeRunner(t)).Run(context.Background())
	var running *RunningError
	if !errors.As(err, &running) || running.Pid != h.pid() {
		t.Fatalf("Run = %v, want a RunningError with pid %d", err, h.pid())
	}
}

// The daemon takes delivery over from a detached dispatcher: it asks it
// to stand aside, waits for the delivery lock, and only then delivers.
func TestDaemonTakesOverFromDispatcher(t *testing.T) {
	s, clk := sqliteStore(t)
	addHook(t, s, Hook{Events: Set})
	dir := stateDirOf(t, s)
	dispatcher := holdLock(t, dir, DeliverLock)
	l, err := Listen(dir, DeliverSocket)
	if err != nil {
		t.Fatal(err)
	}
	set(t, s, "main", "k", "v")
	f := newFakeRunner(t)
	d := testDaemon(t, s, clk, f)
	d.lockPoll = time.Millisecond
	startDaemon(t, d)
	select {
	case msg := <-l.C:
		if string(msg) != string(msgTakeover) {
			t.Fatalf("dispatcher heard %q, want takeover", msg)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not ask the dispatcher to stand aside")
	}
	if n := len(f.snapshot()); n != 0 {
		t.Fatalf("%d runs while the dispatcher held the lock", n)
	}
	l.Close()
	dispatcher.release()
	eventually(t, "the daemon delivers once the lock is free", func() bool { return len(outbox(t, s)) == 0 })
	if n := len(f.snapshot()); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}
}

// A key set by another process with a deadline is reaped at it: the
// writer's notification puts it in the daemon's schedule, and its expire
// event is delivered.
func TestDaemonReapsWhatItHearsOf(t *testing.T) {
	s, clk := sqliteStore(t)
	addHook(t, s, Hook{Events: Expire})
	f := newFakeRunner(t)
	stop := startDaemon(t, testDaemon(t, s, clk, f))
	dir := stateDirOf(t, s)
	at := t0.Add(time.Hour).UnixMilli()
	putTTL(t, s, "k", at)
	// The daemon may not listen yet: say it until it has heard.
	clk.Advance(2 * time.Hour)
	eventually(t, "k reaped", func() bool {
		Notify(dir, DaemonSocket, ChangedMessage(at))
		return !live(t, s, "k")
	})
	eventually(t, "expire delivered", func() bool { return len(f.snapshot()) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// Reloading the settings while the delivery loop runs restarts delivery
// with them, and is no data race (run with -race): the loop reads the
// settings through an atomic pointer, never the command's configuration.
func TestDaemonReloadWhileDelivering(t *testing.T) {
	s, clk := sqliteStore(t)
	addHook(t, s, Hook{Events: Set})
	f := newFakeRunner(t)
	d := testDaemon(t, s, clk, f)
	stop := startDaemon(t, d)
	dir := stateDirOf(t, s)
	for i := 0; i < 20; i++ {
		set(t, s, "main", fmt.Sprintf("k%d", i), "v")
		d.Reload(Settings{Concurrency: 1 + i%3, Retries: 1, Backoff: time.Millisecond})
		Notify(dir, DeliverSocket, MsgEvents)
	}
	eventually(t, "every event delivered", func() bool {
		Notify(dir, DeliverSocket, MsgEvents)
		return len(outbox(t, s)) == 0
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := d.settings.Load().Concurrency; got != 1+19%3 {
		t.Fatalf("settings after reloads: concurrency %d", got)
	}
	f.check(t)
}

// countingStore is a shared store that counts how often its transactions
// list deadlines (every deadline, on Redis: the whole store) and ask
// whether anything is due (the head of the expiry index).
type countingStore struct {
	store.Store
	deadlines, hasExpired atomic.Int64
}

func (*countingStore) Shared() bool { return true }

func (c *countingStore) View(ctx context.Context, fn func(store.Tx) error) error {
	return c.Store.View(ctx, func(tx store.Tx) error { return fn(countingTx{tx, c}) })
}

type countingTx struct {
	store.Tx
	c *countingStore
}

func (t countingTx) HasExpired() (bool, error) {
	t.c.hasExpired.Add(1)
	return t.Tx.HasExpired()
}

func (t countingTx) Deadlines(after ttl.Due, limit int) ([]ttl.Due, error) {
	t.c.deadlines.Add(1)
	return t.Tx.(store.DeadlineLister).Deadlines(after, limit)
}

// On a shared store no writer elsewhere can reach the daemon's socket and
// a change message can be lost: the daemon's slow poll finds a key that
// fell due behind its back. It does so by asking whether anything is due,
// not by reading every deadline again (on Redis, the whole store each
// second; BenchmarkRedisDaemonIdle).
func TestDaemonSharedPollReadsNoSchedule(t *testing.T) {
	s := reapedByPoll(t, false)
	polls := s.hasExpired.Load()
	eventually(t, "another poll", func() bool { return s.hasExpired.Load() > polls })
	if n := s.deadlines.Load(); n != 1 {
		t.Errorf("the schedule was read %d times, want once (at start)", n)
	}
}

// reapedByPoll starts a daemon on a shared store (with a change feed that
// never says anything when feed: every message was lost), writes a key
// behind its back and waits until the daemon's poll has reaped it.
func reapedByPoll(t *testing.T, feed bool) *countingStore {
	base, clk := sqliteStore(t)
	putTTL(t, base, "far", t0.Add(24*time.Hour).UnixMilli()) // the store exists before the daemon starts
	c := &countingStore{Store: base}
	var s store.Store = c
	if feed {
		s = feedingStore{c}
	}
	startDaemon(t, testDaemon(t, s, clk, newFakeRunner(t)))
	eventually(t, "the daemon's first schedule read", func() bool { return c.deadlines.Load() > 0 })
	// Behind its back: no notification, no change message.
	putTTL(t, base, "k", t0.Add(time.Minute).UnixMilli())
	clk.Advance(time.Hour)
	eventually(t, "k reaped by the poll", func() bool { return !live(t, base, "k") })
	return c
}

// feedingStore is a countingStore with a change feed that never says
// anything.
type feedingStore struct{ *countingStore }

func (f feedingStore) Changes(ctx context.Context) (<-chan struct{}, error) {
	return make(chan struct{}), nil
}

// With a change feed up, the shared store's safety poll is every
// sharedPoll, not every second: it still finds a key that fell due with
// its message lost, and an idle daemon asks the store five times less
// often (BenchmarkRedisDaemonIdle: 150 → 50 ms of CPU a minute).
func TestDaemonSharedPollWithFeed(t *testing.T) {
	s := reapedByPoll(t, true)
	// A slow machine only makes polls rarer: three in 3 s is a poll a
	// second.
	polls := s.hasExpired.Load()
	time.Sleep(3 * time.Second)
	if n := s.hasExpired.Load() - polls; n > 1 {
		t.Errorf("%d polls in 3 s with a change feed up, want at most 1 (one each %v)", n, sharedPoll)
	}
}

// busyStore fails every Update while failing is set, as a store busy
// past its timeout does.
type busyStore struct {
	store.Store
	failing atomic.Bool
	failed  atomic.Int64
}

func (f *busyStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if f.failing.Load() {
		f.failed.Add(1)
		return fmt.Errorf("%w: held by another process (test)", store.ErrBusy)
	}
	return f.Store.Update(ctx, fn)
}

func (f *busyStore) Unwrap() store.Store { return f.Store }

// A reap that fails (the store busy past its timeout) leaves what was due
// to the next attempt: the daemon took the keys off its schedule when they
// came due, and kept them off, so on a store nobody wrote to again they
// stayed unreaped, their expire events never recorded.
func TestDaemonReapFailureRetries(t *testing.T) {
	s, clk := sqliteStore(t)
	addHook(t, s, Hook{Events: Expire})
	putTTL(t, s, "k", t0.Add(time.Minute).UnixMilli())
	clk.Advance(2 * time.Minute)
	fs := &busyStore{Store: s}
	fs.failing.Store(true)
	f := newFakeRunner(t)
	stop := startDaemon(t, testDaemon(t, fs, clk, f))
	eventually(t, "a reap attempt", func() bool { return fs.failed.Load() > 0 })
	time.Sleep(100 * time.Millisecond) // let the daemon go back to sleep
	fs.failing.Store(false)
	eventually(t, "expire delivered", func() bool { return len(f.snapshot()) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// stepBackStore sets clk back to to at its first Update: the wall clock
// stepped back (NTP, a VM resumed) between the daemon finding keys due
// and its reap, which then finds nothing due.
type stepBackStore struct {
	store.Store
	clk  *ttl.Fake
	to   time.Time
	done atomic.Bool
}

func (s *stepBackStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if s.done.CompareAndSwap(false, true) {
		s.clk.Set(s.to)
	}
	return s.Store.Update(ctx, fn)
}

func (s *stepBackStore) Unwrap() store.Store { return s.Store }

// Keys found due just before the clock stepped back are reaped once they
// are due again: they had come off the schedule, and nothing but a write
// to the store brought them back.
func TestDaemonClockStepBackKeepsDueKeys(t *testing.T) {
	s, clk := sqliteStore(t)
	addHook(t, s, Hook{Events: Expire})
	putTTL(t, s, "k", t0.Add(time.Minute).UnixMilli())
	clk.Advance(2 * time.Minute)
	sb := &stepBackStore{Store: s, clk: clk, to: t0}
	f := newFakeRunner(t)
	stop := startDaemon(t, testDaemon(t, sb, clk, f))
	eventually(t, "the reap after the step back", func() bool { return sb.done.Load() })
	time.Sleep(100 * time.Millisecond) // let the daemon go back to sleep
	clk.Set(t0.Add(2 * time.Minute))
	eventually(t, "expire delivered", func() bool { return len(f.snapshot()) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// logBuffer is a log destination the daemon's goroutines may share.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A failure that lasts (the store busy, a Redis user who may not write)
// is logged once, then at most once a minute with how often it came: the
// daemon retried the reap every second and logged each, 86,400 lines a
// day into the journal.
func TestDaemonLogsALastingFailureOnce(t *testing.T) {
	s, clk := sqliteStore(t)
	addHook(t, s, Hook{Events: Expire})
	putTTL(t, s, "k", t0.Add(time.Minute).UnixMilli())
	clk.Advance(2 * time.Minute)
	fs := &busyStore{Store: s}
	fs.failing.Store(true)
	d := testDaemon(t, fs, clk, newFakeRunner(t))
	var log logBuffer
	d.Log = slog.New(slog.NewTextHandler(&log, nil))
	stop := startDaemon(t, d)
	eventually(t, "three reap attempts", func() bool { return fs.failed.Load() >= 3 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), "msg=reap "); n != 1 {
		t.Errorf("%d attempts logged %d reap failures, want 1:\n%s", fs.failed.Load(), n, log.String())
	}
}

// The same failure is logged again after repeatLogEvery with its count;
// another failure is logged at once.
func TestRepeatedErrorsNote(t *testing.T) {
	var r repeatedErrors
	now := time.Unix(1000, 0)
	if n, ok := r.note("a", now); !ok || n != 1 {
		t.Fatalf("first: %d, %v", n, ok)
	}
	for i := 1; i <= 5; i++ {
		if _, ok := r.note("a", now.Add(time.Duration(i)*time.Second)); ok {
			t.Fatalf("repeat %d logged", i)
		}
	}
	if _, ok := r.note("b", now.Add(6*time.Second)); !ok {
		t.Fatal("another failure not logged")
	}
	if n, ok := r.note("a", now.Add(repeatLogEvery)); !ok || n != 6 {
		t.Fatalf("after a minute: %d, %v; want 6, true", n, ok)
	}
}

// A deliverer the daemon cannot make (its work dir refused, a hook key
// file others may read, on a shared store) is tried again: the daemon
// delivers once the cause is fixed. Before, the delivery loop returned
// for good while the daemon ran on holding its locks, so no detached
// deliverer could start either, and every event waited until a restart
// (SIGHUP after the fix did not help).
func TestDaemonRetriesADelivererItCouldNotMake(t *testing.T) {
	s, clk := sqliteStore(t)
	addHook(t, s, Hook{Events: Set})
	dir := stateDirOf(t, s)
	work := filepath.Join(dir, "work")
	if err := OpenStateDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(work, 0o777); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	f := newFakeRunner(t)
	d := testDaemon(t, s, clk, f)
	d.Log = slog.New(slog.NewTextHandler(&logs, nil))
	stop := startDaemon(t, d)
	set(t, s, "main", "k", "v")
	eventually(t, "the refusal logged", func() bool { return strings.Contains(logs.String(), "hook delivery") })
	if err := os.Chmod(work, 0o700); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the event delivered once the work dir is fixed", func() bool {
		Notify(dir, DeliverSocket, MsgEvents)
		return len(outbox(t, s)) == 0
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(f.snapshot()); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}
}

// A reload (SIGHUP) while a hook runs long does not hold up the other
// keys' events until it ends: the new settings apply to the delivery
// going on. Before, a reload stopped delivery, waited for every running
// hook (up to its timeout, an hour at most) and only then started again.
func TestDaemonReloadDoesNotWaitForRunningHooks(t *testing.T) {
	s, clk := sqliteStore(t)
	addHook(t, s, Hook{Events: Set})
	release := make(chan struct{})
	f := newFakeRunner(t)
	f.started = make(chan call, 10)
	f.result = func(c call, attempt int) (sandbox.Result, error) {
		if c.key == "slow" {
			<-release
		}
		return sandbox.Result{Duration: time.Millisecond}, nil
	}
	d := testDaemon(t, s, clk, f)
	stop := startDaemon(t, d)
	defer close(release)
	dir := stateDirOf(t, s)
	set(t, s, "main", "slow", "v")
	eventually(t, "the slow hook started", func() bool {
		Notify(dir, DeliverSocket, MsgEvents)
		return len(f.snapshot()) == 1
	})
	d.Reload(Settings{Concurrency: 3, Retries: 2, Backoff: time.Millisecond})
	set(t, s, "main", "fast", "v")
	eventually(t, "the other key's event delivered while the slow hook runs", func() bool {
		Notify(dir, DeliverSocket, MsgEvents)
		return len(outbox(t, s)) == 1
	})
	release <- struct{}{}
	eventually(t, "every event delivered", func() bool { return len(outbox(t, s)) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	f.check(t)
}
