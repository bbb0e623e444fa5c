package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/livedict/livedict/pkg/lease"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newWaitCmd(a *App) *cobra.Command {
	var o struct {
		timeout string
		gone    bool
	}
	c := &cobra.Command{
		Use:   "wait KEY [--timeout D] [--gone]",
		Short: "Block until a key exists (or, --gone, does not)",
		Long: `Block until KEY exists (with --gone: until it is missing or expired), then
exit 0, printing nothing. Exit 1 when --timeout passes first; without
--timeout wait forever (^C exits 130).

wait sleeps on the store's files with inotify and wakes when another
process commits; it re-checks at the key's deadline (an expiry writes
nothing) and at most once a second as a fallback, never busier.

A store that becomes busy or unreachable after the first read (a Redis
server restarting) is waited out with one warning; exit 3 only when that
outlasts --timeout.`,
		Example: `  livedict wait ready --timeout 30s && ./next-step
  livedict wait lock:deploy --gone`,
		Args:              args(1, 1),
		ValidArgsFunction: completeKeys(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, err := a.target(args[0])
			if err != nil {
				return err
			}
			var until time.Time
			if cmd.Flags().Changed("timeout") {
				d, err := durationFlag("timeout", o.timeout, true)
				if err != nil {
					return err
				}
				until = a.Clock.Now().Add(d)
			}
			l, err := a.locker(bucket)
			if err != nil {
				return err
			}
			defer l.Close()
			return waitKey(a, l, bucket, args[0], o.gone, until)
		},
	}
	c.Flags().StringVar(&o.timeout, "timeout", "", "give up (exit 1) after `D`; default: wait forever")
	c.Flags().BoolVar(&o.gone, "gone", false, "wait until the key is missing or expired")
	return c
}

// waitKey re-reads key after every wake-up until it is there (or gone).
// The Waker is armed after the first read fails and before the second,
// so a key already there costs no watch, and a write between a read and
// the sleep still wakes it.
//
// Once a read has worked, a store that is busy or unreachable (a Redis
// server restarting, failing over) is waited out, with one warning, until
// the deadline: then its error is the answer (exit 3). A first read that
// fails fails at once, so a wrong store is not waited on.
func waitKey(a *App, l *lease.Locker, bucket, key string, gone bool, until time.Time) error {
	first := true
	var retry time.Duration // between reads while the store fails
	for {
		var e store.Entry
		var ok bool
		if err := a.View(func(tx store.Tx) (err error) {
			// Stat, not Get: whether the key exists and when it expires
			// need no value, so an encrypted bucket is waited on
			// without this host's identity, as exists works.
			e, ok, err = store.Stat(tx, bucket, key)
			return err
		}); err != nil {
			if first || !store.Transient(err) || !until.IsZero() && !a.Clock.Now().Before(until) {
				return err
			}
			if retry == 0 {
				a.warn(fmt.Sprintf("%v; still waiting", err))
			}
			retry = min(max(2*retry, 100*time.Millisecond), 2*time.Second)
			next := a.Clock.Now().Add(retry)
			if !until.IsZero() && until.Before(next) {
				next = until
			}
			if _, err := l.Wait(context.Background(), next); err != nil {
				return err
			}
			continue
		}
		first, retry = false, 0
		if ok != gone {
			return nil
		}
		if !until.IsZero() && !a.Clock.Now().Before(until) {
			return errNotFound
		}
		next := until
		if ok && e.ExpiresAt != 0 {
			if exp := time.UnixMilli(e.ExpiresAt); next.IsZero() || exp.Before(next) {
				next = exp
			}
		}
		if _, err := l.Wait(context.Background(), next); err != nil {
			return err
		}
	}
}
