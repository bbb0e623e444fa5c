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
turn comes, and logged as skipped. With -v, print 1. Exit 1, printing
nothing, when there is no hook ID.`,
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
			if err == nil {
				// A hook that was not there is exit 1, so the count is
				// always 1; printed as enable, disable and del print theirs.
				a.printCount(1)
			}
			return err
		},
	}
}
