package cmd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
)

// newSession returns the hook session for this command's writes to s: the
// protocol lives in package hooks; the command line hands in its flags,
// its warnings and how to start a detached dispatcher.
func (a *App) newSession(s store.Store) *hooks.Session {
	return &hooks.Session{
		Store:         s,
		NoHooks:       a.NoHooks,
		MaxEventValue: a.Config.MaxEventValueBytes,
		Spawn:         a.spawnDispatcher,
		Wait:          a.WaitHooks,
		Warn:          a.warn,
	}
}

// updateHooks changes hook definitions in a plain write transaction: no
// events to record (livedict's own buckets never match a hook) and no lazy
// reap, so a damaged definition that stops recording can still be removed.
func (a *App) updateHooks(fn func(store.Tx) error) error {
	s, err := a.Store()
	if err != nil {
		return err
	}
	return storeErr(s.Update(a.writeContext(context.Background()), fn))
}

// hookKey is the key that signs hook definitions written to s: on a store
// shared between hosts, this host's hook_key_file (made on first use);
// elsewhere nil, since only the store's owner can write its definitions.
//
// A host without a key makes one only while the store has no definitions:
// where it has some, they were signed by another host's key, which this
// host was meant to be given. A new key would sign a definition that
// every other host's daemon refuses, silently.
func (a *App) hookKey(s store.Store) ([]byte, error) {
	if !store.IsShared(s) {
		return nil, nil
	}
	path := a.Config.HookKeyFile
	if path != "" {
		key, err := hooks.ReadHookKey(path)
		if !errors.Is(err, fs.ErrNotExist) {
			return key, err
		}
		var n int
		if err := a.View(func(tx store.Tx) error {
			hs, err := hooks.List(tx)
			n = len(hs)
			return err
		}); err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, &exitError{kind: store.KindPolicy,
				err:  fmt.Errorf("%w: this host has no hook key (%s), and the store's %d hook definition(s) were signed with another host's: one signed with a new key here would run on no other host", hooks.ErrHookKey, path, n),
				hint: "copy hook_key_file from a host that runs this store's hooks to " + path + " (mode 600), or make a new key there on purpose: (umask 077; openssl rand -hex 32 > " + shellQuote(path) + ")"}
		}
	}
	return hooks.LoadHookKey(path)
}

// spawnDispatcher starts a detached 'livedict hook deliver' for this store:
// its own session (no terminal signals reach it), no stdio, the same
// environment and configuration as this command. The channel closes when
// it exited, so --wait-hooks can tell a slow start from a failed one.
func (a *App) spawnDispatcher() (<-chan struct{}, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	storeURL, env := a.spawnStore()
	argv := []string{"livedict", "--store", storeURL}
	if a.Config.File != "" {
		argv = append(argv, "--config", a.Config.File)
	}
	c := &exec.Cmd{
		Path:        exe,
		Args:        append(argv, "hook", "deliver"),
		Env:         env,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	_ = hooks.PrepareSpawn() // the caller's descriptors stay with the caller
	if err := c.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() {
		_, _ = c.Process.Wait()
		close(exited)
	}()
	return exited, nil
}

// spawnPasswordEnv carries a password from the store URL to a livedict
// this one starts in the background (spawnStore). It was
// LIVEDICT_REDIS_PASSWORD, which the started livedict kept in its
// environment and so handed to what it ran in turn: a run refresher's CMD
// had the password in its environment, though the user gave it only in
// the URL and a foreground CMD never had it.
const spawnPasswordEnv = "LIVEDICT_SPAWN_REDIS_PASSWORD"

// spawnedPassword is the password a livedict that started this one passed
// on, taken out of the environment at start-up, before anything is run.
var spawnedPassword = func() string {
	pw := os.Getenv(spawnPasswordEnv)
	os.Unsetenv(spawnPasswordEnv)
	return pw
}()

// spawnStore is how a livedict this one starts in the background (a
// dispatcher, a run refresher) is told the store: the URL for its argv,
// and its environment. A password in the URL goes into the environment
// (the user's own to read; spawnPasswordEnv), not onto argv, which every
// local user sees in ps.
func (a *App) spawnStore() (storeURL string, env []string) {
	storeURL, env = a.Config.Store, os.Environ()
	if spawnedPassword != "" {
		// Passed on again: this livedict was itself started so (a
		// refresher's writes start a dispatcher).
		env = withEnv(env, []string{spawnPasswordEnv + "=" + spawnedPassword})
	}
	if !strings.HasPrefix(storeURL, "redis://") && !strings.HasPrefix(storeURL, "rediss://") && !strings.HasPrefix(storeURL, "unix://") {
		return storeURL, env
	}
	u, err := url.Parse(storeURL)
	if err != nil || u.User == nil {
		return storeURL, env
	}
	pw, ok := u.User.Password()
	if !ok {
		return storeURL, env
	}
	if name := u.User.Username(); name != "" {
		u.User = url.User(name)
	} else {
		u.User = nil
	}
	return u.String(), withEnv(env, []string{spawnPasswordEnv + "=" + pw})
}

// hookSettings are the parts of cfg that recording and delivery read.
func hookSettings(cfg *Config) hooks.Settings {
	return hooks.Settings{
		Concurrency:   cfg.HookConcurrency,
		Retries:       cfg.Retries,
		Backoff:       cfg.RetryBackoff,
		MaxEventValue: cfg.MaxEventValueBytes,
		HookKeyFile:   cfg.HookKeyFile,
	}
}

// deliverer builds the event deliverer for this store, refusing a store
// that others can write (exit 4).
func (a *App) deliverer(log *slog.Logger) (*hooks.Deliverer, string, error) {
	s, err := a.Store()
	if err != nil {
		return nil, "", err
	}
	d, dir, err := hooks.NewDeliverer(s, hookSettings(a.Config), log)
	return d, dir, storeErr(err)
}
