package cmd

import (
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

// newHookDeliverCmd is the detached dispatcher that writers start when no
// daemon runs. Hidden: it is livedict's own plumbing, though running it by
// hand is harmless (it delivers what waits and exits).
func newHookDeliverCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:    "deliver",
		Short:  "Deliver waiting hook events and exit",
		Hidden: true,
		Args:   args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			_ = hooks.Detach() // nothing of the command that started it stays open
			d, dir, err := a.deliverer(nil)
			if err != nil {
				return err
			}
			// SIGTERM: start nothing new, let running hooks finish.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = hooks.Dispatch(ctx, d, dir)
			if errors.Is(err, store.ErrStoreReplaced) {
				// The events a writer left to this process are in the
				// store now at the path, which it cannot see: hand
				// them to a dispatcher that opens it.
				_, err = a.spawnDispatcher()
			}
			return err
		},
	}
}
