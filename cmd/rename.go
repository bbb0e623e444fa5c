package cmd

import (
	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newRenameCmd(a *App) *cobra.Command {
	var nx bool
	c := &cobra.Command{
		Use:               "rename SRC DST",
		Example:           "  livedict rename draft published\n  livedict rename tmp:report report --nx",
		Short:             "Rename a key; its TTL moves with it",
		Long:              "Rename a key, replacing DST unless --nx; its TTL moves with it. Exit 1\nwhen SRC is missing, or with --nx when DST exists.",
		Args:              args(2, 2),
		ValidArgsFunction: completeKeys(a, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.changesOnly = true // a missing store stays missing (store.NoCreate)
			bucket, err := a.target(args...)
			if err != nil {
				return err
			}
			return a.updateOK(func(tx *hooks.Tx) (bool, error) {
				return store.Rename(tx, bucket, args[0], args[1], nx)
			})
		},
	}
	c.Flags().BoolVar(&nx, "nx", false, "only if DST does not exist")
	return c
}
