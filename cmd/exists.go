package cmd

import (
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newExistsCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:   "exists KEY...",
		Short: "Test that keys exist (exit 1 when any is missing)",
		Long: `Exit 0 when every key exists, 1 when any is missing. With -v, print how many
exist (a key named twice counts twice, as in Redis).`,
		Example:           `  livedict exists token && echo cached`,
		Args:              args(1, -1),
		ValidArgsFunction: completeKeys(a, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, err := a.target(args...)
			if err != nil {
				return err
			}
			var n int
			if err := a.View(func(tx store.Tx) error {
				n, err = store.Exists(tx, bucket, args)
				return err
			}); err != nil {
				return err
			}
			if n < len(args) {
				return errNotFound // exit 1 prints nothing, not even -v's count
			}
			a.printCount(n)
			return nil
		},
	}
}
