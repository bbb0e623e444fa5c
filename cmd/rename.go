package cmd

import (
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newRenameCmd(a *App) *cobra.Command {
	var nx bool
	c := &cobra.Command{
		Use:               "rename SRC DST",
		Short:             "Rename a key; its TTL moves with it",
		Long:              "Rename a key, replacing DST unless --nx. Exit 1 when SRC is missing, or with --nx when DST exists.",
		Args:              args(2, 2),
		ValidArgsFunction: completeKeys(a, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validKeys(args...); err != nil {
				return err
			}
			bucket, err := a.Bucket()
			if err != nil {
				return err
			}
			var ok bool
			if err := a.Update(func(tx store.Tx) error {
				ok, err = store.Rename(tx, bucket, args[0], args[1], nx)
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
	c.Flags().BoolVar(&nx, "nx", false, "only if DST does not exist")
	return c
}
