package cmd

import (
	"context"
	"errors"
	"syscall"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newWatchCmd(a *App) *cobra.Command {
	var o struct {
		events string
		all    bool
	}
	c := &cobra.Command{
		Use:   "watch [GLOB] [--events set,delete,expire,get] [--all-buckets]",
		Short: "Print events as they happen, one JSON line each",
		Long: `Print one JSON line per event on the bucket's keys matching GLOB (default
all) as it happens, in the hook event format (hook_id is 0), until ^C
(exit 130). --events picks the kinds (a comma list of set, get, delete,
expire, or all; default all). --all-buckets watches every bucket.

watch needs no hook and records nothing: events that happen while no
watcher runs are not kept for it (as with Redis pub/sub). Expire events
come from whoever reaps: a command's lazy reap or the daemon.`,
		Example: `  livedict watch 'session:*' --events set,expire
  livedict watch --all-buckets | jq -r .key`,
		Args: args(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			glob := "*"
			if len(args) == 1 {
				glob = args[0]
			}
			events, err := hooks.ParseEvents(o.events)
			if err != nil {
				return usageErr(err, "")
			}
			bucket, err := a.Bucket()
			if err != nil {
				return err
			}
			s, info, err := a.StoreLocation()
			if err != nil {
				return err
			}
			if err := hooks.CheckSafe(info); err != nil {
				return store.WithKind(store.KindPolicy, err)
			}
			w, err := hooks.WatchStore(s, info)
			if err != nil {
				// A state folder found unsafe only now is refused as
				// above; any other failure (a read-only or full
				// filesystem, no descriptor left) is the store's.
				if errors.Is(err, hooks.ErrUnsafe) {
					return store.WithKind(store.KindPolicy, err)
				}
				return storeErr(err)
			}
			defer w.Close()
			ctx, stop := interruptible()
			defer stop()
			gone, stopLooking := readerGone(a.IO.Out)
			defer stopLooking()
			for {
				select {
				case <-ctx.Done():
					return context.Canceled
				case <-gone:
					// As a write would have found it: exit 3, quietly.
					err := &store.Error{Kind: store.KindOutput, Err: syscall.EPIPE}
					if c, ok := a.IO.Out.(*checkedWriter); ok && c.err == nil {
						c.err = err
					}
					return err
				case line, ok := <-w.C:
					if !ok {
						// Only a subscription to a shared store's
						// server ends by itself (see store.EventBus).
						return &store.Error{Kind: store.KindStore, Err: errors.New("lost the store's event stream (the connection to the server broke); events from then on would be missed, so watch ends: start it again")}
					}
					ev, b, key, ok := hooks.ParseWatched(line)
					if !ok || ev&events == 0 || !o.all && b != bucket ||
						glob != "*" && (key == nil || !store.Match(glob, *key)) {
						continue
					}
					if _, err := a.IO.Out.Write(jsonSafe(line)); err != nil {
						return err
					}
				}
			}
		},
	}
	c.Flags().StringVar(&o.events, "events", "all", "print only `EVENTS`: a comma list of set, get, delete, expire, or all")
	c.Flags().BoolVar(&o.all, "all-buckets", false, "watch every bucket")
	return c
}
