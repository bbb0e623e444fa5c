package cmd

import (
	"io"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newGetExCmd(a *App) *cobra.Command {
	var ttlFlag, atFlag string
	var persist bool
	c := &cobra.Command{
		Use:   "getex KEY [--ttl D | --at T | --persist]",
		Short: "Print a value and change its TTL (exit 1 when missing)",
		Long: `Print a value and, in the same step, give it a new TTL (--ttl, --at) or
remove its TTL (--persist). Without a flag it reads like get.`,
		Example:           `  livedict getex session --ttl 30m   # read and extend`,
		Args:              args(1, 1),
		ValidArgsFunction: completeKeys(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.changesOnly = true // a missing store stays missing (store.NoCreate)
			if err := exclusive(cmd.Flags(), "ttl", "at", "persist"); err != nil {
				return err
			}
			bucket, err := a.target(args[0])
			if err != nil {
				return err
			}
			d, err := deadlineFlags(cmd.Flags(), ttlFlag, atFlag)
			if err != nil {
				return err
			}
			if !d.isSet() && !persist {
				return a.printLive(bucket, args[0]) // a plain read takes no write lock
			}
			ok := false
			err = a.updatePrinting(func(tx *hooks.Tx, out io.Writer) error {
				tx.TTLOnly = true // a new deadline is not a set event
				e, found, err := tx.Get(bucket, args[0])
				if err != nil || !found {
					return err
				}
				if err := a.checkPrintable(e.Value); err != nil {
					return err
				}
				at := int64(0) // --persist
				if d.isSet() {
					at = d.at(tx.Now())
				}
				if e, ok, err = store.GetEx(tx, bucket, args[0], at); err != nil {
					return err
				}
				if err := tx.RecordGet(e); err != nil {
					return err
				}
				// Through updatePrinting: a value that cannot be
				// delivered keeps its old TTL.
				return a.writeValueTo(out, e, tx.Now())
			})
			if err == nil && !ok {
				return errNotFound
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&ttlFlag, "ttl", "", "new TTL `D`")
	f.StringVar(&atFlag, "at", "", "new deadline `T` (RFC 3339 or @UNIXSECONDS)")
	f.BoolVar(&persist, "persist", false, "remove the TTL")
	return c
}
