package cmd

import (
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newReapCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:   "reap",
		Short: "Delete every expired entry now",
		Long: `Delete every expired entry now, in all buckets. Expired entries are never
visible anyway; reap reclaims their space. With -v, print how many it deleted.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			var n int
			if err := a.Update(func(tx store.Tx) error {
				var err error
				n, err = tx.Reap(0, nil)
				return err
			}); err != nil {
				return err
			}
			a.printCount(n)
			return nil
		},
	}
}
