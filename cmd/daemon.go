package cmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
	"github.com/spf13/cobra"
)

// Daemon tuning.
const (
	// scheduleWindow is how many deadlines the daemon holds in memory
	// (about 40 bytes each); the rest wait in the store's expiry index.
	scheduleWindow = 1 << 16
	// safetyPoll is the daemon's slow look at the store when nobody told
	// it anything: at most one cheap stat per second when idle.
	safetyPoll = time.Second
	// reapGap is the least time between two reaps, so keys expiring a
	// millisecond apart are reaped together rather than one transaction
	// each.
	reapGap = 10 * time.Millisecond
	// reapBatch is how many expired keys one transaction deletes.
	reapBatch = 1000
)

func newDaemonCmd(a *App) *cobra.Command {
	var o struct {
		once      bool
		duration  string
		logFormat string
	}
	c := &cobra.Command{
		Use:   "daemon [--once | --duration D]",
		Short: "Expire keys on time and deliver hook events (one per store)",
		Long: `Run in the foreground: delete keys at their deadline, and deliver hook events
(at most hook_concurrency hooks at once, default 4). It keeps the earliest
deadlines in memory, sleeps until the next one, and hears about keys set by
other livedict commands at once, without polling.

One daemon per store: a second one exits 0 at once, saying which pid holds
the store, so cron may start it as often as it likes:

  * * * * *    livedict daemon --once          # reap and deliver, then exit
  */10 * * * * livedict daemon --duration 10m  # always one running

--once reaps everything due, delivers the events waiting (and the retries
that are due), and exits. --duration D runs for D, then exits cleanly.
SIGTERM or SIGINT: start nothing new, let running hooks finish (within their
timeouts), exit 0. SIGHUP: reload the configuration. Logs go to stderr, as
text or (--log-format json) one JSON object per line.`,
		Example: "  livedict daemon &\n  livedict daemon --once        # from cron: reap and deliver, then exit",
		Args:    args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.once && cmd.Flags().Changed("duration") {
				return usageErr(errors.New("--once and --duration cannot be used together"), "")
			}
			var dur time.Duration
			if cmd.Flags().Changed("duration") {
				d, err := ttl.ParseDuration(o.duration)
				if err != nil {
					return usageErr(err, "")
				}
				if d <= 0 {
					return usageErr(fmt.Errorf("--duration %q: must be more than 0", o.duration), "")
				}
				dur = d
			}
			if o.logFormat != "text" && o.logFormat != "json" {
				return usageErr(fmt.Errorf("--log-format %q: must be text or json", o.logFormat), "")
			}
			d := &daemon{a: a, log: newLogger(a, o.logFormat), flags: cmd.Flags(), once: o.once, duration: dur}
			return d.run(cmd.Context())
		},
	}
	c.Flags().BoolVar(&o.once, "once", false, "reap what is due, deliver waiting events, and exit")
	c.Flags().StringVar(&o.duration, "duration", "", "run for `D`, then exit")
	c.Flags().StringVar(&o.logFormat, "log-format", "text", "log format on stderr: text or json")
	c.AddCommand(newDaemonStatusCmd(a))
	return c
}

func newLogger(a *App, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(a.IO.Err, nil))
	}
	return slog.New(slog.NewTextHandler(a.IO.Err, nil))
}

// daemon is one run of 'livedict daemon'.
type daemon struct {
	a        *App
	log      *slog.Logger
	flags    interface{ Changed(string) bool }
	once     bool
	duration time.Duration

	s        store.Store
	dir      string
	safe     bool
	synthID  uint64        // ids for deadlines heard of by notification
	deliverC chan struct{} // wakes the deliverer
}

func (d *daemon) run(parent context.Context) error {
	a := d.a
	s, info, err := a.StoreInfo()
	if err != nil {
		return err
	}
	d.s, d.dir = s, hooks.StateDir(info)
	lock, err := hooks.TryLock(d.dir, hooks.DaemonLock)
	if errors.Is(err, hooks.ErrLocked) {
		pid, _ := hooks.Holder(d.dir, hooks.DaemonLock)
		if !a.Quiet {
			fmt.Fprintf(a.IO.Err, "livedict: a daemon already runs for %s (pid %d)\n", info.Location, pid)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("daemon lock: %w", err)
	}
	defer lock.Release()
	started := time.Now()
	lock.WriteInfo(fmt.Sprintf("%d %d\n", os.Getpid(), started.UnixMilli()))

	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	if d.duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, d.duration)
		defer cancel()
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	err = hooks.CheckSafe(info)
	if err != nil {
		d.log.Error("hooks are not run", "reason", err.Error())
	} else {
		d.safe = true
	}
	// The log says so: no plain warning line when a reap records nothing.
	a.hooks.safety, a.hooks.safetyDone = err, true
	d.log.Info("daemon started", "pid", os.Getpid(), "store", info.Location, "backend", info.Backend, "once", d.once)

	if d.once {
		return d.runOnce(ctx)
	}
	notes, err := hooks.Listen(d.dir, hooks.DaemonSocket)
	if err != nil {
		d.log.Warn("no change notifications; polling once a second", "error", err.Error())
		notes = &hooks.Listener{}
	} else {
		defer notes.Close()
	}

	d.deliverC = make(chan struct{}, 1)
	var wg sync.WaitGroup
	deliverCtx, stopDelivery := context.WithCancel(context.Background())
	defer stopDelivery()
	reload := make(chan struct{}, 1)
	if d.safe {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.deliverLoop(ctx, deliverCtx, reload)
		}()
	}
	err = d.expireLoop(ctx, notes.C, sigs, reload, cancel)
	// Stop taking work; running hooks finish within their timeouts.
	stopDelivery()
	wg.Wait()
	d.log.Info("daemon stopped", "uptime", time.Since(started).Round(time.Millisecond).String())
	return err
}

// runOnce reaps what is due, delivers what waits and is due, and returns.
func (d *daemon) runOnce(ctx context.Context) error {
	n, err := d.reap(ctx)
	if err != nil {
		return err
	}
	d.log.Info("reaped", "keys", n)
	if !d.safe {
		return nil
	}
	hooks.Takeover(d.dir)
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

func (d *daemon) deliverer() (*hooks.Deliverer, error) {
	dl, _, err := d.a.deliverer(d.log)
	return dl, err
}

// waitDeliverLock takes the delivery lock, waiting while a detached
// dispatcher finishes the hooks it is running. It returns nil when ctx ends
// first.
func (d *daemon) waitDeliverLock(ctx context.Context) (*hooks.Lock, error) {
	for {
		lock, err := hooks.TryLock(d.dir, hooks.DeliverLock)
		if err == nil || !errors.Is(err, hooks.ErrLocked) {
			return lock, err
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// deliverLoop delivers events for as long as the daemon runs. stop ends
// it (after the running hooks finish); a reload restarts the deliverer
// with the new configuration.
func (d *daemon) deliverLoop(ctx, stop context.Context, reload <-chan struct{}) {
	hooks.Takeover(d.dir)
	lock, err := d.waitDeliverLock(stop)
	if err != nil {
		d.log.Error("cannot take over hook delivery", "error", err.Error())
		return
	}
	if lock == nil {
		return
	}
	defer lock.Release()
	// Writers wake whoever holds the delivery lock on this socket.
	if l, err := hooks.Listen(d.dir, hooks.DeliverSocket); err == nil {
		defer l.Close()
		go func() {
			for range l.C {
				d.wakeDelivery()
			}
		}()
	}
	for stop.Err() == nil {
		dl, err := d.deliverer()
		if err != nil {
			d.log.Error("hook delivery", "error", err.Error())
			return
		}
		runCtx, cancel := context.WithCancel(stop)
		go func() {
			select {
			case <-reload:
				cancel()
			case <-runCtx.Done():
			}
		}()
		err = dl.Deliver(runCtx, d.deliverC, false)
		cancel()
		if err != nil {
			d.log.Error("hook delivery", "error", err.Error())
			select { // the store failed: try again shortly
			case <-stop.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (d *daemon) wakeDelivery() {
	select {
	case d.deliverC <- struct{}{}:
	default:
	}
}

// expireLoop sleeps until the next deadline, a notification or the safety
// poll, and reaps what is due. It returns when ctx ends or a signal asks.
func (d *daemon) expireLoop(ctx context.Context, notes <-chan []byte, sigs <-chan os.Signal, reload chan<- struct{}, stop func()) error {
	src := deadlineSource{ctx: ctx, s: d.s}
	sched := ttl.NewSchedule(src, d.a.Clock, scheduleWindow)
	lastMod := d.storeModTime()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastReap time.Time
	for {
		due := false
		for {
			ds, err := sched.Due(4096)
			if err != nil && ctx.Err() != nil {
				return nil
			}
			if err != nil {
				// A store error (busy past the timeout, I/O) is no
				// reason to stop: reap anyway, and read the schedule
				// afresh at the next poll.
				d.log.Error("reading deadlines", "error", err.Error())
				sched, due = ttl.NewSchedule(src, d.a.Clock, scheduleWindow), true
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
			if _, err := d.reap(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				d.log.Error("reap", "error", err.Error())
			}
		}
		wait := safetyPoll
		next, ok, err := sched.NextAt()
		if err != nil && ctx.Err() != nil {
			return nil
		}
		if err != nil {
			d.log.Error("reading deadlines", "error", err.Error())
			sched, ok = ttl.NewSchedule(src, d.a.Clock, scheduleWindow), false
		}
		if ok {
			wait = min(wait, ttl.Until(ttl.NowMs(d.a.Clock), next)) // saturates centuries out
		}
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return nil
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				d.reload(reload)
				continue
			}
			d.log.Info("stopping", "signal", sig.String())
			stop()
			return nil
		case msg, ok := <-notes:
			if !ok {
				notes = nil
				continue
			}
			d.heard(sched, msg)
		case <-timer.C:
			mod := d.storeModTime()
			if !mod.Equal(lastMod) {
				// Changed behind our back (a writer that could not
				// notify): start the schedule again from the store.
				sched = ttl.NewSchedule(src, d.a.Clock, scheduleWindow)
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

// heard handles one notification: a write (with the earliest deadline it
// set) or recorded events.
func (d *daemon) heard(sched *ttl.Schedule, msg []byte) {
	events, at := hooks.ParseMessage(msg)
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
func (d *daemon) reap(ctx context.Context) (int, error) {
	total := 0
	for {
		var n, events int
		err := d.s.Update(ctx, func(raw store.Tx) error {
			tx, err := d.a.hookTx(raw)
			if err != nil {
				return err
			}
			n, err = tx.Reap(reapBatch, nil)
			events = len(tx.Events)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if events > 0 && d.deliverC != nil {
			d.wakeDelivery()
		}
		if n < reapBatch {
			if total > 0 {
				d.log.Debug("reaped", "keys", total)
			}
			return total, nil
		}
	}
}

// reload reads the configuration again and restarts delivery with it.
func (d *daemon) reload(reload chan<- struct{}) {
	cfg, err := loadConfig(d.a.flagSet)
	if err != nil {
		d.log.Error("configuration not reloaded", "error", oneLine(err.Error()))
		return
	}
	if cfg.Store != d.a.Config.Store {
		d.log.Warn("the store cannot change on reload; restart the daemon to use it", "store", cfg.Store)
		cfg.Store = d.a.Config.Store
	}
	d.a.Config = cfg
	d.log.Info("configuration reloaded", "file", cfg.File)
	select {
	case reload <- struct{}{}:
	default:
	}
}

func (d *daemon) storeModTime() time.Time {
	info, err := d.s.Info()
	if err != nil {
		return time.Time{}
	}
	fi, err := os.Stat(info.Location)
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
