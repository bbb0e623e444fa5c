package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livedict/livedict/pkg/sandbox"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
)

// Daemon tuning.
const (
	// scheduleWindow is how many deadlines the daemon holds in memory
	// (about 40 bytes each); the rest wait in the store's expiry index.
	scheduleWindow = 1 << 16
	// safetyPoll is the daemon's slow look at the store when nobody told
	// it anything: at most one cheap stat per second when idle.
	safetyPoll = time.Second
	// sharedPoll is the safety poll of a shared store whose change feed
	// is up: the feed tells of every write, so the poll only covers a
	// message lost on the way (latency, never a key or an event). Each
	// costs two read transactions, five round trips: once a second that
	// was 80-150 ms of CPU a minute for a daemon with nothing to do.
	sharedPoll = 5 * time.Second
	// reapGap is the least time between two reaps, so keys expiring a
	// millisecond apart are reaped together rather than one transaction
	// each.
	reapGap = 10 * time.Millisecond
	// reapBatch is how many expired keys one transaction deletes.
	reapBatch = 1000
	// rereadGap is the least time between two readings of the schedule
	// prompted by a shared store's change feed.
	rereadGap = 20 * time.Millisecond
	// lockPoll is how often the daemon looks whether a detached
	// dispatcher let the delivery lock go.
	lockPoll = 50 * time.Millisecond
)

// Settings are the configuration values that recording and delivery read.
// A value is never changed once made: a reload makes a new one (see
// Daemon.Reload), so a loop reading it needs no lock.
type Settings struct {
	// Concurrency is how many hooks may run at once.
	Concurrency int
	// Retries is how many times a failed run is retried.
	Retries int
	// Backoff is the wait before the first retry.
	Backoff time.Duration
	// MaxEventValue caps the value bytes an event carries.
	MaxEventValue int
	// HookKeyFile holds the key that verifies hook definitions on a
	// shared store (see LoadHookKey).
	HookKeyFile string
}

// NewDeliverer returns the deliverer for s, running hooks in the sandbox
// with settings set, and the store's state dir. It refuses a store that
// others can write (an error wrapping ErrUnsafe, of kind store.Policy).
func NewDeliverer(s store.Store, set Settings, log *slog.Logger) (*Deliverer, string, error) {
	info, err := store.Locate(s)
	if err != nil {
		return nil, "", err
	}
	if err := CheckSafe(info); err != nil {
		return nil, "", store.WithKind(store.KindPolicy, err)
	}
	dir := StateDir(info)
	work, err := WorkDirFor(dir)
	if err != nil {
		return nil, "", err
	}
	var key []byte
	shared := store.IsShared(s)
	if shared {
		if key, err = LoadHookKey(set.HookKeyFile); err != nil {
			return nil, "", err
		}
	}
	return &Deliverer{
		Shared:      shared,
		Key:         key,
		Store:       s,
		Run:         sandbox.Run,
		Concurrency: set.Concurrency,
		Retries:     set.Retries,
		Backoff:     set.Backoff,
		WorkDir:     work,
		Getenv:      os.LookupEnv,
		Log:         log,
		Seen:        seenFile(shared, dir),
		// Claims and retries are times other hosts read: on the
		// store's clock (a Redis server's), not this host's.
		Now: store.ClockOf(s, ttl.System).Now,
	}, dir, nil
}

// seenFile is where a host keeps what it has seen of a shared store's
// definitions (seen.go): in its state dir; none for a local store.
func seenFile(shared bool, stateDir string) string {
	if !shared {
		return ""
	}
	return filepath.Join(stateDir, SeenFile)
}

// RunningError is returned by Daemon.Run when another daemon already runs
// for the store.
type RunningError struct {
	// Pid is the running daemon's process id.
	Pid int
	// Location is the store's.
	Location string
}

func (e *RunningError) Error() string {
	return fmt.Sprintf("a daemon already runs for %s (pid %d)", e.Location, e.Pid)
}

// Daemon is one run of the store's daemon: it reaps keys at their
// deadlines and delivers hook events. The protocol it keeps with writers
// and detached dispatchers:
//
//   - one daemon per store: it holds DaemonLock for its whole life;
//   - it takes delivery over by asking a running dispatcher to stand aside
//     (Takeover) and waiting for DeliverLock, which it then holds;
//   - writers wake it on DaemonSocket (changes, with their earliest
//     deadline) and on DeliverSocket (events); a lost wake-up costs
//     promptness only, since a slow poll of the store's modification time
//     stands behind them.
type Daemon struct {
	// Store is the store served.
	Store store.Store
	// Clock decides what is due (ttl.System if nil), unless the store
	// has a clock of its own (store.ClockOf: a Redis server's).
	Clock ttl.Clock
	// Log receives the daemon's log (discarded if nil).
	Log *slog.Logger
	// Once reaps what is due, delivers what waits and is due, and returns.
	Once bool
	// NoHooks records no expire events (the --no-hooks flag).
	NoHooks bool
	// RunHook runs hook commands (sandbox.Run if nil).
	RunHook Runner
	// Spawn starts a detached deliverer ('livedict hook deliver'), as a
	// writer's Session.Spawn does. When a daemon (not Once) stops with
	// events still waiting, it hands them over this way (see handOver);
	// nil: it leaves them to the next writer or daemon.
	Spawn func() (exited <-chan struct{}, err error)

	settings atomic.Pointer[Settings]
	repeats  repeatedErrors
	reloaded chan struct{}
	deliverC chan struct{} // wakes the deliverer
	session  Session       // records the reaps' expire events
	synthID  uint64        // ids for deadlines heard of by notification
	dir      string
	location string
	lockPoll time.Duration
	lock     *Lock // the daemon lock, while Run holds it
}

// NewDaemon returns a daemon for s with the given settings.
func NewDaemon(s store.Store, set Settings) *Daemon {
	d := &Daemon{Store: s, reloaded: make(chan struct{}, 1), deliverC: make(chan struct{}, 1), lockPoll: lockPoll}
	d.settings.Store(&set)
	return d
}

// Reload replaces the settings, and applies them to delivery. It may be
// called from any goroutine (a SIGHUP handler).
func (d *Daemon) Reload(set Settings) {
	d.settings.Store(&set)
	select {
	case d.reloaded <- struct{}{}:
	default:
	}
}

func (d *Daemon) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

// logError logs a failure of what the daemon does again and again (reap,
// read the deadlines, deliver): the first time, then the same failure at
// most once every repeatLogEvery with how often it came. A lasting one
// (a Redis user the ACL lets read but not write, a server that is down)
// wrote a line every second, 86,400 a day, into the journal.
func (d *Daemon) logError(what string, err error) {
	if n, ok := d.repeats.note(what+"\x00"+err.Error(), time.Now()); ok {
		if n > 1 {
			d.log().Error(what, "error", err.Error(), "times", n)
		} else {
			d.log().Error(what, "error", err.Error())
		}
	}
}

// repeatLogEvery is how often a failure that keeps coming is logged again.
const repeatLogEvery = time.Minute

// repeatedErrors counts the failures logError has seen, by message.
type repeatedErrors struct {
	mu   sync.Mutex
	seen map[string]*repeated
}

type repeated struct {
	logged time.Time // when it was last logged
	n      int       // how often it came since (the logged one included)
}

// note counts msg at now and says whether to log it, with how often it
// came since it was last logged.
func (r *repeatedErrors) note(msg string, now time.Time) (n int, log bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]*repeated{}
	}
	e := r.seen[msg]
	if e == nil {
		if len(r.seen) >= 100 { // messages that vary (a count, a time): forget
			clear(r.seen)
		}
		r.seen[msg] = &repeated{logged: now, n: 0}
		return 1, true
	}
	e.n++
	if now.Sub(e.logged) < repeatLogEvery {
		return 0, false
	}
	n, e.logged, e.n = e.n, now, 0
	return n, true
}

// clock is the clock deadlines are due by: the store's own (a Redis
// server's), else Clock.
func (d *Daemon) clock() ttl.Clock {
	c := d.Clock
	if c == nil {
		c = ttl.System
	}
	return store.ClockOf(d.Store, c)
}

// Run serves the store until ctx ends (or, with Once, until what is due
// is done). It returns a *RunningError at once when another daemon holds
// the store. When ctx ends it starts nothing new and lets running hooks
// finish (within their timeouts).
func (d *Daemon) Run(ctx context.Context) error {
	info, err := store.Locate(d.Store)
	if err != nil {
		return err
	}
	d.dir, d.location = StateDir(info), info.Location
	lock, err := TryLock(d.dir, DaemonLock)
	if errors.Is(err, ErrLocked) {
		pid, _ := Holder(d.dir, DaemonLock)
		return &RunningError{Pid: pid, Location: info.Location}
	}
	if err != nil {
		return fmt.Errorf("daemon lock: %w", err)
	}
	defer lock.Release()
	started := time.Now()
	lock.WriteInfo(fmt.Sprintf("%d %d\n", os.Getpid(), started.UnixMilli()))

	safety := CheckSafe(info)
	if safety != nil {
		d.log().Error("hooks are not run", "reason", safety.Error())
	}
	// The log says so: no warning line when a reap records nothing. The
	// daemon holds its own locks, which it must never test (see Holder):
	// it does not look for undelivered events as writers do.
	d.session = Session{Store: d.Store, NoHooks: d.NoHooks, NoExpireEvents: d.NoHooks, delivers: true}
	d.session.KnownSafety(safety)
	d.log().Info("daemon started", "pid", os.Getpid(), "store", info.Location, "backend", info.Backend, "once", d.Once)

	if d.Once {
		err := d.runOnce(ctx, safety == nil)
		d.log().Info("daemon stopped", "uptime", time.Since(started).Round(time.Millisecond).String())
		return err
	}
	notes, err := Listen(d.dir, DaemonSocket)
	if err != nil {
		d.log().Warn("no change notifications; polling once a second", "error", err.Error())
		notes = &Listener{}
	} else {
		defer notes.Close()
	}

	var wg sync.WaitGroup
	deliverCtx, stopDelivery := context.WithCancel(context.Background())
	defer stopDelivery()
	if safety == nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.deliverLoop(deliverCtx)
		}()
	}
	// On a store shared between hosts, writers elsewhere cannot reach
	// our socket: the store's own change feed wakes us instead.
	var changes <-chan struct{}
	if cf, ok := store.FeedOf(d.Store); ok {
		if changes, err = cf.Changes(ctx); err != nil {
			d.log().Warn("no change feed from the store; reading it again once a second", "error", err.Error())
			changes = nil
		}
	}
	d.lock = lock
	err = d.expireLoop(ctx, notes.C, changes)
	// Stop taking work; running hooks finish within their timeouts.
	stopDelivery()
	wg.Wait()
	d.log().Info("daemon stopped", "uptime", time.Since(started).Round(time.Millisecond).String())
	if err == nil && safety == nil {
		// Its locks go first: the deliverer it starts leaves at once
		// while a daemon holds the store.
		d.lock = nil
		lock.Release()
		d.handOver()
	}
	return err
}

// handOver makes sure the events still waiting when the daemon stops get
// delivered: the events its stop left unstarted (a key's next event, a
// retry's backoff), and those that writers recorded while it let its
// hooks finish, who only woke it since it still held its lock. Before, all
// of these waited for the next write or daemon, however long that took,
// though with no daemon running delivery starts within about a second
// (SPEC, Delivery). Like a writer it wakes a daemon that started meanwhile
// (a restart), or else starts a detached deliverer.
func (d *Daemon) handOver() {
	if d.Spawn == nil {
		return
	}
	more, err := HasPending(context.Background(), d.Store)
	if err != nil || !more {
		return
	}
	err = Kick(d.dir, func() error {
		_, err := d.Spawn()
		return err
	})
	if err != nil {
		d.log().Warn("events left waiting: no deliverer could be started; the next write starts one", "error", err.Error())
		return
	}
	d.log().Info("events left waiting: handed over to the next deliverer")
}

// runOnce reaps what is due, delivers what waits and is due, and returns.
func (d *Daemon) runOnce(ctx context.Context, safe bool) error {
	n, err := d.reap(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	d.log().Info("reaped", "keys", n)
	if !safe {
		return nil
	}
	Takeover(d.dir)
	lock, err := d.waitDeliverLock(ctx)
	if err != nil || lock == nil {
		return err
	}
	defer lock.Release()
	dl, err := d.deliverer()
	if err != nil {
		return err
	}
	dl.NoWait = true
	return dl.Deliver(ctx, nil, true)
}

func (d *Daemon) deliverer() (*Deliverer, error) {
	dl, _, err := d.delivererWith(*d.settings.Load())
	return dl, err
}

func (d *Daemon) delivererWith(set Settings) (*Deliverer, string, error) {
	dl, dir, err := NewDeliverer(d.Store, set, d.log())
	if err == nil && d.RunHook != nil {
		dl.Run = d.RunHook
	}
	return dl, dir, err
}

// waitDeliverLock takes the delivery lock, waiting while a detached
// dispatcher finishes the hooks it is running. It returns nil when ctx ends
// first.
func (d *Daemon) waitDeliverLock(ctx context.Context) (*Lock, error) {
	for {
		lock, err := TryLock(d.dir, DeliverLock)
		if err == nil || !errors.Is(err, ErrLocked) {
			return lock, err
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(d.lockPoll):
		}
	}
}

// deliverLoop delivers events until stop ends (after the running hooks
// finish); a reload applies the new settings to it (see Deliverer.Live).
func (d *Daemon) deliverLoop(stop context.Context) {
	Takeover(d.dir)
	lock, err := d.waitDeliverLock(stop)
	if err != nil {
		d.log().Error("cannot take over hook delivery", "error", err.Error())
		return
	}
	if lock == nil {
		return
	}
	defer lock.Release()
	// Writers wake whoever holds the delivery lock on this socket.
	if l, err := Listen(d.dir, DeliverSocket); err == nil {
		defer l.Close()
		go func() {
			for range l.C {
				d.wakeDelivery()
			}
		}()
	}
	for stop.Err() == nil {
		set := *d.settings.Load()
		dl, _, err := d.delivererWith(set)
		if err != nil {
			// A refused work dir or hook key file can be fixed while
			// the daemon runs; it holds the store's locks, so no
			// detached deliverer would start instead: try again.
			d.logError("hook delivery", err)
			select {
			case <-stop.Done():
			case <-d.reloaded:
			case <-time.After(time.Second):
			}
			continue
		}
		// Concurrency, retries and backoff apply to the delivery going
		// on (Live); only another hook key, or a store that no longer
		// passes the trust rule, needs a new deliverer, which waits for
		// the running hooks first.
		dl.Live = &d.settings
		runCtx, cancel := context.WithCancel(stop)
		go func() {
			for {
				select {
				case <-d.reloaded:
					if d.settings.Load().HookKeyFile != set.HookKeyFile || d.keyChanged(dl) || !d.stillSafe() {
						cancel()
						return
					}
					d.wakeDelivery() // more runs may start now
				case <-runCtx.Done():
					return
				}
			}
		}()
		err = dl.Deliver(runCtx, d.deliverC, false)
		cancel()
		if err != nil {
			d.logError("hook delivery", err)
			select { // the store failed: try again shortly
			case <-stop.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// keyChanged reports whether the hook key file of a shared store no longer
// holds the key dl verifies with: rotating the key is replacing the file's
// content on every host and reloading (README), which must reach the
// delivery going on, not wait for a restart. A key that can no longer be
// read counts as changed: the new deliverer then says why.
func (d *Daemon) keyChanged(dl *Deliverer) bool {
	if !dl.Shared {
		return false
	}
	key, err := ReadHookKey(d.settings.Load().HookKeyFile)
	return err != nil || !bytes.Equal(key, dl.Key)
}

// stillSafe reports whether the store still passes the trust rule, as a
// reload checks (making a new deliverer did, before reloads applied to the
// one going on); a store that fails it gets a new deliverer, refused.
func (d *Daemon) stillSafe() bool {
	info, err := store.Locate(d.Store)
	return err == nil && CheckSafe(info) == nil
}

func (d *Daemon) wakeDelivery() {
	select {
	case d.deliverC <- struct{}{}:
	default:
	}
}

// newSchedule reads the schedule afresh from the store's expiry index.
func (d *Daemon) newSchedule(ctx context.Context) *ttl.Schedule {
	return ttl.NewSchedule(deadlineSource{ctx: ctx, s: d.Store}, d.clock(), scheduleWindow)
}

// expireLoop sleeps until the next deadline, a notification or the safety
// poll, and reaps what is due. It returns when ctx ends.
func (d *Daemon) expireLoop(ctx context.Context, notes <-chan []byte, changes <-chan struct{}) error {
	sched := d.newSchedule(ctx)
	lastMod := d.storeModTime()
	shared := store.IsShared(d.Store)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastReap time.Time
	// changed: the change feed said another host wrote; the schedule is
	// read again, at most once per rereadGap however fast they write.
	changed, lastRead := false, time.Now()
	// pollDue: the safety poll of a shared store found a key due.
	pollDue := false
	// reapMissed: when a reap failed, or ran after the wall clock
	// stepped back (NTP, a VM resumed) and so found nothing due. The keys
	// it was to reap came off the schedule as they came due, so the
	// schedule is read again a safetyPoll later: on a store nobody writes
	// to again, nothing else would bring them back, and their expire
	// events would never come.
	var reapMissed time.Time
	lastCheck := time.Now()
	for {
		if time.Since(lastCheck) >= safetyPoll {
			// A store file deleted or replaced (rm; a backup restored
			// with mv) leaves this process the old file, which nobody
			// else sees, while it holds the store's daemon lock, so
			// writers would leave the new store's events to it for as
			// long as it runs. Stop instead: a write starts a
			// deliverer, and cron or systemd a new daemon.
			lastCheck = time.Now()
			if err := store.Replaced(d.Store); err != nil {
				return err
			}
			// Likewise the daemon lock, removed with the state folder
			// (or a file store's whole folder): a second daemon could
			// start, and two would deliver at once.
			if d.lock != nil {
				if err := d.lock.Lost(); err != nil {
					return err
				}
			}
		}
		if changed && time.Since(lastRead) >= rereadGap {
			sched, changed, lastRead = d.newSchedule(ctx), false, time.Now()
		}
		if !reapMissed.IsZero() && time.Since(reapMissed) >= safetyPoll {
			sched, reapMissed = d.newSchedule(ctx), time.Time{}
		}
		due := pollDue
		pollDue = false
		for {
			ds, err := sched.Due(4096)
			if err != nil && ctx.Err() != nil {
				return nil
			}
			if err != nil {
				// A store error (busy past the timeout, I/O) is no
				// reason to stop: reap anyway, and read the schedule
				// afresh at the next poll.
				d.logError("reading deadlines", err)
				sched, due = d.newSchedule(ctx), true
				break
			}
			due = due || len(ds) > 0
			if len(ds) < 4096 {
				break
			}
		}
		if due {
			if wait := reapGap - time.Since(lastReap); wait > 0 {
				time.Sleep(wait) // gather what expires in the next few ms
			}
			lastReap = time.Now()
			dueAt := ttl.NowMs(d.clock())
			if _, err := d.reap(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				d.logError("reap", err)
				reapMissed = time.Now()
			} else if ttl.NowMs(d.clock()) < dueAt {
				reapMissed = time.Now()
			}
		}
		poll := safetyPoll
		if shared && changes != nil {
			poll = sharedPoll
		}
		wait := poll
		next, ok, err := sched.NextAt()
		if err != nil && ctx.Err() != nil {
			return nil
		}
		if err != nil {
			d.logError("reading deadlines", err)
			sched, ok = d.newSchedule(ctx), false
		}
		if ok {
			wait = min(wait, ttl.Until(ttl.NowMs(d.clock()), next)) // saturates centuries out
		}
		if changed {
			wait = min(wait, rereadGap-time.Since(lastRead))
		}
		if !reapMissed.IsZero() {
			wait = min(wait, safetyPoll-time.Since(reapMissed))
		}
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-notes:
			if !ok {
				notes = nil
				continue
			}
			d.heard(sched, msg)
		case _, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			changed = true
			d.wakeDelivery()
		case <-timer.C:
			mod := d.storeModTime()
			if shared && time.Since(lastRead) >= poll {
				// No modification time tells of other hosts'
				// writes, and a change message can be lost. A
				// lost message costs latency, not a key: ask the
				// expiry index whether anything is due (its head,
				// one query) rather than reading every deadline
				// again, which costs the whole store each second.
				var err error
				if pollDue, err = d.anyDue(ctx); err != nil && ctx.Err() == nil {
					d.logError("reading deadlines", err)
				}
				lastRead = time.Now()
				d.wakeDelivery()
			} else if !mod.Equal(lastMod) {
				// Changed behind our back (a writer that could not
				// notify): start the schedule again from the store.
				sched = d.newSchedule(ctx)
				d.wakeDelivery()
			}
			lastMod = mod
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// anyDue reports whether the store holds a key past its deadline that is
// not reaped yet: on a shared store, the safety poll's look at the head
// of the expiry index.
func (d *Daemon) anyDue(ctx context.Context) (bool, error) {
	var due bool
	err := d.Store.View(ctx, func(tx store.Tx) error {
		var err error
		due, err = tx.HasExpired()
		return err
	})
	return due, err
}

// heard handles one notification: a write (with the earliest deadline it
// set) or recorded events.
func (d *Daemon) heard(sched *ttl.Schedule, msg []byte) {
	events, at := ParseMessage(msg)
	if events {
		d.wakeDelivery()
	}
	if at > 0 {
		// An id of its own, above any rowid: the deadline may be a key's
		// new one, and reaping at it is what matters.
		d.synthID++
		sched.Note(ttl.Due{At: at, ID: 1<<63 | d.synthID})
	}
}

// reap deletes everything expired, in batches, recording expire events.
func (d *Daemon) reap(ctx context.Context) (int, error) {
	d.session.MaxEventValue = d.settings.Load().MaxEventValue
	total := 0
	for {
		var n, events int
		err := d.session.Update(ctx, func(tx *Tx) error {
			var err error
			n, err = tx.Reap(reapBatch, nil)
			events = len(tx.Events)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if events > 0 {
			d.wakeDelivery()
		}
		if n < reapBatch {
			if total > 0 {
				d.log().Debug("reaped", "keys", total)
			}
			return total, nil
		}
	}
}

func (d *Daemon) storeModTime() time.Time {
	fi, err := os.Stat(d.location)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// deadlineSource reads the daemon's schedule from the store's expiry index.
type deadlineSource struct {
	ctx context.Context
	s   store.Store
}

func (src deadlineSource) Next(after ttl.Due, limit int) ([]ttl.Due, error) {
	return store.NextDeadlines(src.ctx, src.s, after, limit)
}
