package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/sandbox"
	"github.com/livedict/livedict/pkg/store"
)

// hookState is what one command knows about hooks: the events it recorded
// (committed), whether it changed anything a daemon should hear about, and
// whether this store may run hooks at all.
type hookState struct {
	// ttlOnly marks commands that only change deadlines (expire, persist,
	// getex): their writes are not set events.
	ttlOnly bool

	events      []uint64
	wrote       bool
	minDeadline int64
	safety      error // checked once, when a hook first matters
	safetyDone  bool
}

// hookTx wraps a transaction so changes record the events enabled hooks
// want (none with --no-hooks, or when the store is unsafe for hooks).
func (a *App) hookTx(raw store.Tx) (*hooks.Tx, error) {
	var rec *hooks.Recorder
	if !a.NoHooks {
		var err error
		if rec, err = hooks.NewRecorder(raw, a.Config.MaxEventValueBytes); err != nil {
			return nil, err
		}
		if !rec.Empty() && a.hooksUnsafe() != nil {
			rec = nil
		}
	}
	tx := hooks.Wrap(raw, rec)
	tx.TTLOnly = a.hooks.ttlOnly
	return tx, nil
}

// hooksUnsafe checks once whether hooks may run from this store, and warns
// on stderr when they may not.
func (a *App) hooksUnsafe() error {
	h := &a.hooks
	if !h.safetyDone {
		h.safetyDone = true
		if info, err := a.store.Info(); err == nil {
			h.safety = hooks.CheckSafe(info)
		}
		if h.safety != nil && !a.Quiet {
			fmt.Fprintf(a.IO.Err, "livedict: warning: %s; no hook events are recorded\n", terminalSafe(oneLine(h.safety.Error()), true))
		}
	}
	return h.safety
}

// updateHooks changes hook definitions in a plain write transaction: no
// events to record (livedict's own buckets never match a hook) and no lazy
// reap, so a damaged definition that stops recording can still be removed.
func (a *App) updateHooks(fn func(store.Tx) error) error {
	s, err := a.Store()
	if err != nil {
		return err
	}
	return s.Update(context.Background(), fn)
}

// committed takes note of a transaction that committed.
func (a *App) committed(tx *hooks.Tx) {
	h := &a.hooks
	h.events = append(h.events, tx.Events...)
	h.wrote = h.wrote || tx.Wrote
	if tx.MinDeadline != 0 && (h.minDeadline == 0 || tx.MinDeadline < h.minDeadline) {
		h.minDeadline = tx.MinDeadline
	}
}

// wantsGet reports whether, in tx, a hook wants a get event for
// bucket/key.
func (a *App) wantsGet(tx store.Tx, bucket, key string) (bool, error) {
	if a.NoHooks {
		return false, nil
	}
	rec, err := hooks.NewRecorder(tx, 0)
	return rec.Wants(hooks.Get, bucket, key), err
}

// recordGet records a get event for e in tx, a transaction from Update.
func recordGet(tx store.Tx, e store.Entry) error {
	if h, ok := tx.(*hooks.Tx); ok {
		return h.RecordGet(e)
	}
	return nil
}

// afterCommands runs once the command is done and its changes are
// committed: it wakes or starts whoever delivers the recorded events, waits
// for them with --wait-hooks, and tells a running daemon about changes.
// Nothing here changes the command's exit status.
func (a *App) afterCommands() {
	h := &a.hooks
	if a.store == nil || (!h.wrote && len(h.events) == 0) {
		return
	}
	info, err := a.store.Info()
	if err != nil {
		return
	}
	dir := hooks.StateDir(info)
	if h.wrote {
		hooks.Notify(dir, hooks.DaemonSocket, hooks.ChangedMessage(h.minDeadline))
	}
	if len(h.events) == 0 {
		return
	}
	if err := hooks.Kick(dir, a.spawnDispatcher); err != nil && !a.Quiet {
		fmt.Fprintf(a.IO.Err, "livedict: warning: cannot start hook delivery: %s\n", oneLine(err.Error()))
	}
	if a.WaitHooks {
		a.waitHooks(dir)
	}
}

// spawnDispatcher starts a detached 'livedict hook deliver' for this store:
// its own session (no terminal signals reach it), no stdio, the same
// environment and configuration as this command.
func (a *App) spawnDispatcher() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	argv := []string{"livedict", "--store", a.Config.Store}
	if a.Config.File != "" {
		argv = append(argv, "--config", a.Config.File)
	}
	c := &exec.Cmd{
		Path:        exe,
		Args:        append(argv, "hook", "deliver"),
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	_ = hooks.PrepareSpawn() // the caller's descriptors stay with the caller
	if err := c.Start(); err != nil {
		return err
	}
	return c.Process.Release()
}

// waitHooks waits until every event this command recorded has left the
// outbox (delivered, failed for good, or skipped). Every second it makes
// sure someone is still delivering; when three deliverers in a row came and
// went without delivering anything (a store they cannot use), it gives up
// with a warning rather than hang the script.
func (a *App) waitHooks(dir string) {
	last, lastN, strikes := time.Now(), -1, 0
	for {
		var n int
		err := a.store.View(context.Background(), func(tx store.Tx) error {
			var err error
			n, err = hooks.Pending(tx, a.hooks.events)
			return err
		})
		if err != nil || n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
		if time.Since(last) < time.Second {
			continue
		}
		if d, _ := hooks.Holder(dir, hooks.DeliverLock); d == 0 && n == lastN {
			if strikes++; strikes == 3 {
				if !a.Quiet {
					fmt.Fprintf(a.IO.Err, "livedict: warning: --wait-hooks: %d event(s) not delivered; see 'livedict hook log' and 'livedict daemon status'\n", n)
				}
				return
			}
		} else if n != lastN {
			strikes = 0
		}
		hooks.Kick(dir, a.spawnDispatcher)
		last, lastN = time.Now(), n
	}
}

// deliverer builds the event deliverer for this store, refusing a store
// that others can write.
func (a *App) deliverer(log *slog.Logger) (*hooks.Deliverer, string, error) {
	s, info, err := a.StoreInfo()
	if err != nil {
		return nil, "", err
	}
	if err := hooks.CheckSafe(info); err != nil {
		return nil, "", err // exit 4, see classify
	}
	dir := hooks.StateDir(info)
	work, err := hooks.WorkDirFor(dir)
	if err != nil {
		return nil, "", err
	}
	return &hooks.Deliverer{
		Store:       s,
		Run:         sandbox.Run,
		Concurrency: a.Config.HookConcurrency,
		Retries:     a.Config.Retries,
		Backoff:     a.Config.RetryBackoff,
		WorkDir:     work,
		Getenv:      os.LookupEnv,
		Log:         log,
	}, dir, nil
}
