package cmd

import (
	"io"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newGetDelCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:               "getdel KEY",
		Example:           "  job=$(livedict getdel next-job) && run \"$job\"",
		Short:             "Print a value and delete the key (exit 1 when missing)",
		Args:              args(1, 1),
		ValidArgsFunction: completeKeys(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.changesOnly = true // a missing store stays missing (store.NoCreate)
			bucket, err := a.target(args[0])
			if err != nil {
				return err
			}
			var e store.Entry
			var ok bool
			var now int64
			err = a.updatePrinting(func(tx *hooks.Tx, out io.Writer) error {
				now = tx.Now()
				if e, ok, err = tx.Get(bucket, args[0]); err != nil || !ok {
					return err
				}
				if err := tx.RecordGet(e); err != nil {
					return err
				}
				if _, err := tx.Delete(bucket, args[0]); err != nil {
					return err
				}
				// Through updatePrinting: if the value cannot be
				// delivered (a full disk, a closed pipe) it is not deleted.
				e.ExpiresAt = 0
				return a.writeValueTo(out, e, now)
			})
			if err != nil {
				return err
			}
			if !ok {
				return errNotFound
			}
			return nil
		},
	}
}
