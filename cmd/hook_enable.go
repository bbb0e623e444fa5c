package cmd

import (
	"errors"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

// newHookEnableCmd builds 'hook enable' (on) or 'hook disable'.
func newHookEnableCmd(a *App, on bool) *cobra.Command {
	use, short := "enable ID", "Enable a hook (exit 1 when there is no such hook)"
	if !on {
		use, short = "disable ID", "Disable a hook: it records no events until enabled (exit 1 when there is no such hook)"
	}
	return &cobra.Command{
		Use:     use,
		Example: "  livedict hook " + use[:len(use)-3] + " 3",
		Short:   short,
		Long: short + `.

A disabled hook records no new events; its events already waiting are
dropped when their turn comes, and logged as skipped. Enabling or disabling
a hook that already is is not an error. With -v, print 1 if the state
changed and 0 if not. On a store shared between hosts, enable signs the
definition anew with this host's hook key (see README, Hooks), also when
it is already enabled.`,
		Args:              args(1, 1),
		ValidArgsFunction: completeHookIDs(a),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.changesOnly = true // a missing store stays missing (store.NoCreate)
			id, err := hookID(args[0])
			if err != nil {
				return err
			}
			s, err := a.Store()
			if err != nil {
				return err
			}
			key, err := a.hookKey(s)
			if err != nil {
				return err
			}
			changed := false
			err = a.updateHooks(func(tx store.Tx) error {
				var err error
				changed, err = hooks.SetEnabled(tx, id, on, key)
				return err
			})
			if errors.Is(err, hooks.ErrNoHook) {
				return errNotFound
			}
			if err == nil {
				n := 0
				if changed {
					n = 1
				}
				a.printCount(n)
			}
			return err
		},
	}
}
