package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/runcache"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

const runUse = "livedict run [--ttl D] [--stale D] [--key K] [--cwd] [--env NAME]... [--modtime FILE]... [--scope S] [--discard-failures] [--force] [--warm] -- CMD [ARGS...]"

// runBucket is where run caches unless -b names another bucket.
const runBucket = "run"

func newRunCmd(a *App) *cobra.Command {
	var o struct {
		ttl, stale, key, scope    string
		cwd, discard, force, warm bool
		refresh                   bool
		env, modtime              []string
	}
	c := &cobra.Command{
		Use:   "run [--ttl D] [--stale D] [--key K] ... -- CMD [ARGS...]",
		Short: "Run a command once per TTL and replay its cached output",
		Long: `Run CMD and cache its stdout bytes, stderr bytes and exit status for --ttl
(default 60s); while the entry lives, run replays them exactly (binary-safe,
nothing added) and exits with the cached status, without running CMD.

The entry is a key in the bucket "run" (or the one -b names; LIVEDICT_BUCKET
does not apply), so list, del and bucket policies see it. Its key is
derived from argv plus what --cwd, --env NAME, --modtime FILE and --scope S
name, or is exactly --key K. CMD's stdin is /dev/null: the key does not
cover stdin.

Concurrent callers of a missing or expired entry run CMD once (a lease on
"running:KEY" elects one); the others wait for its result and print it.

  --stale D           an entry older than D is printed at once and refreshed
                      in a detached background process (D < --ttl)
  --discard-failures  do not cache a non-zero exit status
  --force             run CMD (and re-cache) even when an entry is fresh
  --warm              refresh the entry in a detached background process
                      and exit 0 at once, printing nothing (as bkt --warm);
                      a refresh already running is not doubled

A result larger than max_value_bytes is printed but not cached (a warning
says so); a CMD killed by a signal is never cached.`,
		Example: `  livedict run --ttl 5m -- curl -s https://example.com/status.json
  livedict run --ttl 1h --stale 10m --modtime go.mod -- go list -m all
  livedict run --ttl 1d --discard-failures --key weather -- ./weather.sh`,
		Args: args(1, -1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			defer func() { err = wrongType(err) }()
			fs := cmd.Flags()
			before, argv, err := commandAfterDash(cmd.ArgsLenAtDash(), args, runUse)
			if err != nil {
				return err
			}
			if len(before) != 0 || argv == nil {
				return usageErr(errors.New("run takes its command after --"), runUse)
			}
			if fs.Changed("key") && (o.cwd || o.scope != "" || len(o.env) > 0 || len(o.modtime) > 0) {
				return usageErr(errors.New("--key names the entry itself: it cannot be combined with --cwd, --env, --modtime or --scope"), "")
			}
			if err := exclusive(fs, "force", "warm", "refresh"); err != nil {
				return err
			}
			ttlD, err := durationFlag("ttl", o.ttl, false)
			if err != nil {
				return err
			}
			opts := runcache.Options{TTL: ttlD, Force: o.force || o.refresh, Skip: o.refresh, DiscardFailures: o.discard}
			if fs.Changed("stale") {
				if opts.Stale, err = durationFlag("stale", o.stale, false); err != nil {
					return err
				}
				if opts.Stale >= ttlD {
					return usageErr(fmt.Errorf("--stale %s must be shorter than --ttl %s", o.stale, o.ttl), "")
				}
			}
			bucket := runBucket
			if fs.Changed("bucket") {
				if bucket, err = a.Bucket(); err != nil {
					return err
				}
			}
			key := o.key
			if !fs.Changed("key") {
				in := runcache.KeyInputs{Env: o.env, Getenv: os.LookupEnv, Modtime: o.modtime, Scope: o.scope}
				if o.cwd {
					if in.Cwd, err = os.Getwd(); err != nil {
						// The folder the command runs in was removed:
						// there is no cwd to key on.
						return usageErr(fmt.Errorf("--cwd: %w", err), "cd to a folder that exists")
					}
				}
				key = runcache.Key(argv, in)
			} else if err := store.ValidateKey(key); err != nil {
				return usageErr(err, "")
			}
			if _, err := exec.LookPath(argv[0]); err != nil {
				return newLaunchError(argv[0], err)
			}
			if o.warm {
				return a.refreshInBackground(bucket, key, o.ttl, o.discard, argv)
			}
			l, err := a.locker(bucket)
			if err != nil {
				return err
			}
			defer l.Close()
			cache := &runcache.Cache{Locker: l, Bucket: bucket, Limits: a.Limits()}
			var spilled *runcache.Capture
			res, err := cache.Do(context.Background(), key, opts, func() (runcache.Entry, bool) {
				ent, ok, c := a.runCaptured(argv, int64(a.Limits().MaxValueBytes))
				if c.Spilled() {
					spilled = c
				}
				return ent, ok
			})
			if spilled != nil {
				defer spilled.Close()
			}
			if err != nil {
				return err
			}
			if spilled != nil && !o.refresh {
				fmt.Fprintf(a.IO.Err, "livedict: warning: result of %s not cached: %v\n", terminalSafe(argv[0], false), spilled.TooLarge())
				spilled.PrintTo(a.IO.Out, a.IO.Err)
				return exitStatus(res.Entry.Status)
			}
			if res.Stale {
				// Best effort: the stale entry is printed either way.
				_ = a.refreshInBackground(bucket, key, o.ttl, o.discard, argv)
			}
			if res.NotStored != nil {
				fmt.Fprintf(a.IO.Err, "livedict: warning: result of %s not cached: %v\n", terminalSafe(argv[0], false), res.NotStored)
			}
			if o.refresh {
				if res.Skipped {
					return nil
				}
				return exitStatus(res.Entry.Status)
			}
			a.IO.Out.Write(res.Entry.Stdout)
			a.IO.Err.Write(res.Entry.Stderr)
			return exitStatus(res.Entry.Status)
		},
	}
	f := c.Flags()
	f.StringVar(&o.ttl, "ttl", "60s", "replay a result for `D`")
	f.StringVar(&o.stale, "stale", "", "refresh in the background a result older than `D`")
	f.StringVar(&o.key, "key", "", "cache under key `K` instead of one derived from argv")
	f.BoolVar(&o.cwd, "cwd", false, "make the working directory part of the key")
	f.StringArrayVar(&o.env, "env", nil, "make the value of environment variable `NAME` part of the key (repeatable)")
	f.StringArrayVar(&o.modtime, "modtime", nil, "make the modification time of `FILE` part of the key (repeatable)")
	f.StringVar(&o.scope, "scope", "", "make the string `S` part of the key")
	f.BoolVar(&o.discard, "discard-failures", false, "do not cache a non-zero exit status")
	f.BoolVar(&o.force, "force", false, "run and re-cache even when a result is cached")
	f.BoolVar(&o.warm, "warm", false, "refresh in the background, print nothing")
	// --refresh is --warm's detached process: run now (unless another
	// caller is), cache, print nothing, exit with CMD's status.
	f.BoolVar(&o.refresh, "refresh", false, "")
	f.MarkHidden("refresh")
	return c
}

// runCaptured runs argv with stdin from /dev/null and its output kept;
// false when a signal killed it (interrupted: not a result to cache).
// Output over limit (max_value_bytes; 0: none) cannot be cached: it is
// kept in temporary files instead (see runcache.Capture), and the entry
// holds none of it and is not to be cached either.
func (a *App) runCaptured(argv []string, limit int64) (runcache.Entry, bool, *runcache.Capture) {
	c := runcache.NewCapture(limit)
	child, err := startChild(argv, nil, nil, c.Stdout(), c.Stderr())
	if err != nil {
		return runcache.Entry{Status: 126, Stderr: []byte("livedict: error: " + err.Error() + "\n")}, false, c
	}
	status := child.wait(nil, nil, 0)
	return c.Entry(status), !c.Spilled() && !child.waitStatus().Signaled(), c
}

// refreshInBackground starts `livedict run --refresh` for the same entry in
// a process of its own session, with /dev/null for stdio and no other
// descriptors, so the caller's pipes close when it exits. The refresher
// names the entry with --key: argv, cwd and environment are inherited.
func (a *App) refreshInBackground(bucket, key, ttlFlag string, discard bool, argv []string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	storeURL, env := a.spawnStore()
	args := []string{"livedict", "--store", storeURL, "-b", bucket}
	if a.Config.File != "" {
		args = append(args, "--config", a.Config.File)
	}
	args = append(args, "run", "--refresh", "--key", key, "--ttl", ttlFlag)
	if discard {
		args = append(args, "--discard-failures")
	}
	args = append(append(args, "--"), argv...)
	c := &exec.Cmd{Path: exe, Args: args, Env: env, SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	_ = hooks.PrepareSpawn() // the caller's descriptors stay with the caller
	if err := c.Start(); err != nil {
		return err
	}
	return c.Process.Release()
}
