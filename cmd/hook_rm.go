package cmd

import (
	"errors"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newHookRmCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:     "rm ID",
		Example: "  livedict hook rm 3",
		Short:   "Remove a hook (exit 1 when there is no such hook)",
		Long: `Remove a hook. Its events still waiting for delivery are dropped when their
turn comes, and logged as skipped. Exit 1, printing nothing, when there is
no hook ID.`,
		Args:              args(1, 1),
		ValidArgsFunction: completeHookIDs(a),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.changesOnly = true // a missing store stays missing (store.NoCreate)
			id, err := hookID(args[0])
			if err != nil {
				return err
			}
			err = a.updateHooks(func(tx store.Tx) error { return hooks.Remove(tx, id) })
			if errors.Is(err, hooks.ErrNoHook) {
				return errNotFound
			}
			return err
		},
	}
}
