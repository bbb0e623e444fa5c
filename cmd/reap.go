package cmd

import (
	"github.com/livedict/livedict/pkg/hooks"
	"github.com/spf13/cobra"
)

func newReapCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:     "reap",
		Example: "  livedict reap -v     # from cron, when no daemon runs",
		Short:   "Delete every expired entry now",
		Long: `Delete every expired entry now, in all buckets. Expired entries are never
visible anyway; reap reclaims their space. With -v, print how many it deleted.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.changesOnly = true // a missing store stays missing (store.NoCreate)
			// Straight to the store: App.Update's own bounded reap would
			// take its batch out of the count.
			if _, err := a.Store(); err != nil {
				return err
			}
			// Its own events are expire events: --no-hooks records
			// none (other commands' lazy reaps record them anyway).
			a.session.NoExpireEvents = a.NoHooks
			var n int
			ctx, stop := interruptible() // reaping a million rows takes seconds
			defer stop()
			if err := interrupted(ctx, a.update(ctx, func(tx *hooks.Tx) error {
				var err error
				n, err = tx.Reap(0, nil)
				return err
			})); err != nil {
				return err
			}
			a.printCount(n)
			return nil
		},
	}
}
