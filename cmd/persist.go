package cmd

import (
	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newPersistCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:               "persist KEY",
		Example:           "  livedict persist session   # keep it for good",
		Short:             "Remove a key's TTL (exit 1 when missing or without TTL)",
		Args:              args(1, 1),
		ValidArgsFunction: completeKeys(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.changesOnly = true // a missing store stays missing (store.NoCreate)
			bucket, err := a.target(args[0])
			if err != nil {
				return err
			}
			return a.updateOK(func(tx *hooks.Tx) (bool, error) {
				tx.TTLOnly = true // a removed deadline is not a set event
				return store.Persist(tx, bucket, args[0])
			})
		},
	}
}
