package cmd

import (
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newPersistCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:               "persist KEY",
		Short:             "Remove a key's TTL (exit 1 when missing or without TTL)",
		Args:              args(1, 1),
		ValidArgsFunction: completeKeys(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validKeys(args[0]); err != nil {
				return err
			}
			bucket, err := a.Bucket()
			if err != nil {
				return err
			}
			var ok bool
			if err := a.Update(func(tx store.Tx) error {
				ok, err = store.Persist(tx, bucket, args[0])
				return err
			}); err != nil {
				return err
			}
			if !ok {
				return errNotFound
			}
			return nil
		},
	}
}
