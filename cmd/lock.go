package cmd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/lease"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/wake"
	"github.com/spf13/cobra"
)

const lockUse = "livedict lock NAME [--ttl D] [--wait D] [--limit N] -- CMD [ARGS...]"

func newLockCmd(a *App) *cobra.Command {
	var o struct {
		ttl, wait       string
		limit           int
		acquire, status bool
		renew, release  string
	}
	c := &cobra.Command{
		Use:   "lock NAME [--ttl D] [--wait D] [--limit N] -- CMD [ARGS...]",
		Short: "Run a command while holding a lease (a lock with a TTL and fencing token)",
		Long: `Run CMD while holding a lease on NAME, a key in the bucket. The lease is
renewed every TTL/3 while CMD runs and released when it ends, by its holder
only. If livedict is killed (even with -9), the lease frees itself when its
TTL (default 30s) runs out.

--wait D waits up to D for the lease, woken by a release or an expiry (no
polling); --limit N lets up to N holders in at once (a semaphore; callers
must agree on N). CMD gets LIVEDICT_LOCK_TOKEN, the fencing token: a number
greater than every token given out before in the bucket, so a resource can
refuse a holder older than the last one it saw. SIGINT, SIGTERM, SIGHUP and
SIGQUIT are passed on to CMD. If the lease is lost while CMD runs (a
renewal found it taken over or deleted), livedict says so and stops CMD
(SIGTERM, then SIGKILL after 5s), as consul lock does: two holders must
not both go on.

Exit status: CMD's own (128+N when signal N killed it); 1 when the lease
was not acquired; 127/126 when CMD cannot be found or run.

For scripts that manage a lease themselves:
  --acquire --ttl D   take the lease and print its handle TOKEN.SECRET
  --renew HANDLE      hold it until --ttl from now (default: the TTL it
                      last took; exit 1 when HANDLE no longer holds)
  --release HANDLE    give it up (exit 1 when HANDLE no longer holds)
  --status            print the holders' fencing tokens (exit 1 when free)`,
		Example: `  livedict lock backup --ttl 1m -- ./backup.sh
  livedict lock deploy --wait 10m -- make deploy
  livedict lock gpu --limit 2 --wait 1h -- ./train.sh
  h=$(livedict lock job --acquire --ttl 5m) || exit 0
  livedict lock job --renew "$h"; livedict lock job --release "$h"`,
		Args: args(1, -1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			defer func() { err = wrongType(err) }()
			fs := cmd.Flags()
			dash := cmd.ArgsLenAtDash()
			script := fs.Changed("acquire") || fs.Changed("renew") || fs.Changed("release") || fs.Changed("status")
			// A first -- may end the flags before NAME, so a NAME
			// may start with - like any key: lock -- -NAME -- CMD,
			// lock --status -- -NAME.
			switch {
			case dash == 0 && !script && len(args) > 1 && args[1] == "--":
				args = append([]string{args[0]}, args[2:]...)
				dash = 1
			case dash == 0 && script && len(args) == 1:
				dash = -1
			}
			names, argv, err := commandAfterDash(dash, args, lockUse)
			if err != nil {
				return err
			}
			if len(names) != 1 {
				return usageErr(fmt.Errorf("lock takes one NAME, then -- CMD"), lockUse)
			}
			if err := exclusive(fs, "acquire", "renew", "release", "status"); err != nil {
				return err
			}
			if script == (argv != nil) {
				if script {
					return usageErr(errors.New("--acquire, --renew, --release and --status take no command"), "")
				}
				return usageErr(errors.New("no command: put it after --, or use --acquire/--status"), lockUse)
			}
			bucket, err := a.target(names[0])
			if err != nil {
				return err
			}
			ttlD, err := durationFlag("ttl", o.ttl, false)
			if err != nil {
				return err
			}
			if len(argv) > 0 && ttlD < minKeptTTL {
				// Kept while CMD runs by a renewal (a store write) every
				// TTL/3: with a few milliseconds one is late at once
				// and CMD was killed, "the store did not answer".
				return usageErr(fmt.Errorf("--ttl %s: too short to keep while CMD runs (renewed every TTL/3, each renewal a write to the store); use at least %v", o.ttl, minKeptTTL), "--acquire takes a shorter lease, kept by no one")
			}
			wait, err := durationFlag("wait", o.wait, true)
			if err != nil {
				return err
			}
			if o.limit < 1 {
				return usageErr(fmt.Errorf("--limit %d: must be at least 1", o.limit), "")
			}
			r := lease.Ref{Bucket: bucket, Name: names[0], Limits: a.Limits()}
			switch {
			case o.status:
				return a.lockStatus(r)
			case fs.Changed("renew"), fs.Changed("release"):
				a.changesOnly = true // a missing store stays missing (store.NoCreate)
				h, err := lease.ParseHandle(o.renew + o.release)
				if err != nil {
					return usageErr(err, "")
				}
				return a.updateOK(func(tx *hooks.Tx) (bool, error) {
					if o.release != "" {
						return lease.Release(tx, r, h)
					}
					ttlMs := int64(0) // the TTL it last took
					if fs.Changed("ttl") {
						ttlMs = ttlD.Milliseconds()
					}
					_, ok, err := lease.Renew(tx, r, h, ttlMs)
					return ok, err
				})
			}
			l, err := a.locker(bucket)
			if err != nil {
				return err
			}
			defer l.Close()
			h, ok, err := l.Acquire(context.Background(), r, lease.NewOwner(), o.limit, ttlD, wait)
			if err != nil {
				return err
			}
			if !ok {
				return errNotFound
			}
			if o.acquire {
				if a.JSON {
					a.jsonLine(append(keyFields(bucket, r.Name), field{"token", h.Token}, field{"handle", h.Handle()}, field{"deadline_ms", h.Deadline}))
				} else {
					a.printf("%s\n", h.Handle())
				}
				if err := a.outputErr(); err != nil {
					// Nobody got the handle, so nobody could release the
					// lease: every other taker would wait out its TTL.
					a.updateOK(func(tx *hooks.Tx) (bool, error) { return lease.Release(tx, r, h) })
					return err
				}
				return nil
			}
			return a.lockRun(l, r, h, ttlD, argv)
		},
	}
	f := c.Flags()
	f.StringVar(&o.ttl, "ttl", "30s", "lease time `D`; renewed every TTL/3 while CMD runs")
	f.StringVar(&o.wait, "wait", "0", "wait up to `D` for the lease (0: do not wait)")
	f.IntVar(&o.limit, "limit", 1, "`N` holders allowed at once (a semaphore)")
	f.BoolVar(&o.acquire, "acquire", false, "take the lease and print its handle, run nothing")
	f.StringVar(&o.renew, "renew", "", "hold the lease `HANDLE` holds until --ttl from now")
	f.StringVar(&o.release, "release", "", "release the lease `HANDLE` holds")
	f.BoolVar(&o.status, "status", false, "print the holders' fencing tokens; exit 1 when free")
	return c
}

// wrongType makes a key that holds another kind of value exit 2, as
// incr on a non-integer does.
func wrongType(err error) error {
	if errors.Is(err, lease.ErrNotLease) {
		return usageErr(err, "the key holds a value that is not a lease; use another NAME or delete the key")
	}
	return err
}

// locker is a lease.Locker over this command's transactions. Its
// renewals run beside the command's own writes, so they take turns.
func (a *App) locker(bucket string) (*lease.Locker, error) {
	s, err := a.Store()
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	clock := store.ClockOf(s, a.Clock) // leases are on the store's clock
	return &lease.Locker{
		Update: func(fn func(store.Tx) error) error {
			mu.Lock()
			defer mu.Unlock()
			return a.Update(func(tx *hooks.Tx) error { return fn(tx) })
		},
		View:     a.View,
		Warn:     a.warn,
		Clock:    clock,
		NewWaker: func() *wake.Waker { return wake.ForStore(clock, s, bucket) },
		Turn: func(ctx context.Context, r lease.Ref, within time.Duration) (func(), error) {
			info, err := store.Locate(s)
			if err != nil {
				return nil, err
			}
			t, err := hooks.WaitTurn(ctx, hooks.StateDir(info), hooks.TurnName(r.Bucket, r.Name), within)
			if errors.Is(err, hooks.ErrLocked) {
				return nil, lease.ErrNoTurn
			}
			if errors.Is(err, hooks.ErrUnsafe) {
				// A state folder another user made first (beside a
				// store in /tmp): the queue only spares the store, so
				// wait without it, as data works without hooks, rather
				// than refuse a contended lock with exit 4.
				return func() {}, nil
			}
			if err != nil {
				return nil, err
			}
			return func() { t.Release() }, nil
		},
	}, nil
}

// lockRun runs argv while keeping h, then releases it.
// minKeptTTL is the shortest lease lock keeps while CMD runs (etcd's
// minimum lease is 5s, Consul's session TTL 10s).
const minKeptTTL = time.Second

func (a *App) lockRun(l *lease.Locker, r lease.Ref, h lease.Holder, ttlD time.Duration, argv []string) error {
	env := []string{"LIVEDICT_LOCK_TOKEN=" + strconv.FormatInt(h.Token, 10)}
	child, err := startChild(argv, env, a.IO.In, childStdio(a.IO.Out), childStdio(a.IO.Err))
	if err != nil {
		l.Release(r, h)
		return err
	}
	lost, stopKeeping := l.Keep(r, h, ttlD)
	wasLost := false
	status := child.wait(lost, func(err error) {
		wasLost = true
		why := strings.TrimPrefix(err.Error(), lease.ErrLost.Error()+": ")
		// Quoted by hand: %q would escape terminalSafe's escapes again.
		fmt.Fprintf(a.IO.Err, "livedict: error: lease on \"%s\" lost while the command ran (%s); stopping it\n", strings.ReplaceAll(terminalSafe(r.Name, false), `"`, `\"`), terminalSafe(why, false))
	}, 5*time.Second)
	stopKeeping()
	if wasLost {
		// Nothing to give back, and a store that stopped answering
		// would hold this exit until it answered again.
		return exitStatus(status)
	}
	if _, err := l.Release(r, h); err != nil {
		a.warn(fmt.Sprintf("releasing %q: %v (it frees itself when its TTL ends)", r.Name, err))
	}
	return exitStatus(status)
}

// lockStatus prints the holders' fencing tokens, one a line.
func (a *App) lockStatus(r lease.Ref) error {
	var st lease.State
	if err := a.View(func(tx store.Tx) (err error) {
		st, err = lease.Status(tx, r)
		return err
	}); err != nil {
		return err
	}
	if len(st.Holders) == 0 {
		return errNotFound
	}
	for _, h := range st.Holders {
		if a.JSON {
			a.jsonLine(append(keyFields(r.Bucket, r.Name), field{"token", h.Token}, field{"deadline_ms", h.Deadline}))
		} else {
			a.printf("%d\n", h.Token)
		}
	}
	return nil
}
