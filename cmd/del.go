package cmd

import (
	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newDelCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:               "del KEY...",
		Example:           "  livedict del token\n  livedict del -v a b c     # prints how many existed",
		Short:             "Delete keys (exit 1 when none existed)",
		Long:              "Delete keys. With -v, print how many existed. Exit 1 when none of them existed.",
		Args:              args(1, -1),
		ValidArgsFunction: completeKeys(a, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.changesOnly = true // a missing store stays missing (store.NoCreate)
			bucket, err := a.target(args...)
			if err != nil {
				return err
			}
			var n int
			if err := a.Update(func(tx *hooks.Tx) error {
				n, err = store.Delete(tx, bucket, args)
				return err
			}); err != nil {
				return err
			}
			if n == 0 {
				return errNotFound // exit 1 prints nothing, not even -v's count
			}
			a.printCount(n)
			return nil
		},
	}
}

// printCount prints an action command's count when asked to (-v or --json).
func (a *App) printCount(n int) {
	switch {
	case a.JSON:
		a.jsonLine(object{{"count", n}})
	case a.Verbose:
		a.printf("%d\n", n)
	}
}
