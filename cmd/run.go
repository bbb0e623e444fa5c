package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
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
						return err
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
			var spilled *capture
			res, err := cache.Do(context.Background(), key, opts, func() (runcache.Entry, bool) {
				ent, ok, c := a.runCaptured(argv, int64(a.Limits().MaxValueBytes))
				if c.spilled() {
					spilled = c
				}
				return ent, ok
			})
			if spilled != nil {
				defer spilled.close()
			}
			if err != nil {
				return err
			}
			if spilled != nil && !o.refresh {
				fmt.Fprintf(a.IO.Err, "livedict: warning: result of %s not cached: %v\n", terminalSafe(argv[0], false), spilled.tooLarge())
				spilled.out.printTo(a.IO.Out)
				spilled.err.printTo(a.IO.Err)
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
	f.StringVar(&o.ttl, "ttl", "60s", "how long a result is replayed")
	f.StringVar(&o.stale, "stale", "", "refresh in the background a result older than this")
	f.StringVar(&o.key, "key", "", "cache under this key instead of one derived from argv")
	f.BoolVar(&o.cwd, "cwd", false, "make the working directory part of the key")
	f.StringArrayVar(&o.env, "env", nil, "make this environment variable's value part of the key (repeatable)")
	f.StringArrayVar(&o.modtime, "modtime", nil, "make this file's modification time part of the key (repeatable)")
	f.StringVar(&o.scope, "scope", "", "make this string part of the key")
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
// kept in temporary files instead (see capture), and the entry holds none
// of it and is not to be cached either.
func (a *App) runCaptured(argv []string, limit int64) (runcache.Entry, bool, *capture) {
	c := &capture{limit: limit}
	c.out.c, c.err.c = c, c
	child, err := startChild(argv, nil, nil, &c.out, &c.err)
	if err != nil {
		return runcache.Entry{Status: 126, Stderr: []byte("livedict: error: " + err.Error() + "\n")}, false, c
	}
	status := child.wait(nil, nil, 0)
	if c.spilled() {
		return runcache.Entry{Status: status}, false, c
	}
	return runcache.Entry{Status: status, Stdout: c.out.mem.Bytes(), Stderr: c.err.mem.Bytes()}, !child.waitStatus().Signaled(), c
}

// capture holds a command's stdout and stderr for run: in memory while
// together they may still fit max_value_bytes, then, once they cannot be
// cached, each in an unlinked temporary file, so that printing them does
// not hold them all in memory (`run -- cat disk.img` held the whole image,
// however small the limit).
type capture struct {
	mu       sync.Mutex
	limit    int64
	total    int64
	over     bool
	out, err spillBuf
}

// spillBuf is one stream of a capture: what went to its file (if any),
// then what is in mem.
type spillBuf struct {
	c    *capture
	n    int64 // bytes written, wherever they went
	f    *os.File
	full bool // f could take no more
	mem  bytes.Buffer
}

func (b *spillBuf) Write(p []byte) (int, error) {
	c := b.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total += int64(len(p))
	if !c.over && c.limit > 0 && c.total > c.limit {
		c.over = true
		c.out.spill()
		c.err.spill()
	}
	b.n += int64(len(p))
	if b.f != nil && !b.full {
		n, err := b.f.Write(p)
		if err == nil {
			return n, nil
		}
		// The temporary folder is full: keep the rest in memory, after
		// what the file holds, rather than lose it.
		b.full = true
		b.mem.Write(p[n:])
		return len(p), nil
	}
	return b.mem.Write(p)
}

// spill moves the stream to an unlinked temporary file; where none can be
// made, it stays in memory, as before there were files.
func (b *spillBuf) spill() {
	f, err := os.CreateTemp("", "livedict-run-*")
	if err != nil {
		return
	}
	os.Remove(f.Name())
	if _, err := f.Write(b.mem.Bytes()); err != nil {
		f.Close()
		return
	}
	b.f = f
	b.mem = bytes.Buffer{}
}

func (c *capture) spilled() bool { return c.out.f != nil || c.err.f != nil }

// tooLarge is the reason the output was not cached, as runcache says it.
func (c *capture) tooLarge() error {
	return fmt.Errorf("%w: its output is %d bytes (stdout and stderr, %d stored), max_value_bytes is %d",
		store.ErrValueTooLarge, c.total, runcache.EncodedSize(int(c.out.n), int(c.err.n)), c.limit)
}

// printTo writes the stream to w: its file from the start, then memory.
func (b *spillBuf) printTo(w io.Writer) {
	if b.f != nil {
		if _, err := b.f.Seek(0, io.SeekStart); err == nil {
			io.Copy(w, b.f)
		}
	}
	w.Write(b.mem.Bytes())
}

func (c *capture) close() {
	for _, b := range []*spillBuf{&c.out, &c.err} {
		if b.f != nil {
			b.f.Close()
		}
	}
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
