package cmd

import (
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
			var e store.Entry
			var ok bool
			var now int64
			err = a.Update(func(tx store.Tx) error {
				now = tx.Now()
				if e, ok, err = tx.Get(bucket, args[0]); err != nil || !ok {
					return err
				}
				if err := a.checkPrintable(e.Value); err != nil {
					return err
				}
				switch {
				case d.isSet():
					e, ok, err = store.GetEx(tx, bucket, args[0], d.at(now))
				case persist:
					e, ok, err = store.GetEx(tx, bucket, args[0], 0)
				default:
					e, ok, err = tx.Get(bucket, args[0])
				}
				return err
			})
			if err != nil {
				return err
			}
			if !ok {
				return errNotFound
			}
			return a.writeValue(e, now)
		},
	}
	f := c.Flags()
	f.StringVar(&ttlFlag, "ttl", "", "new TTL `D`")
	f.StringVar(&atFlag, "at", "", "new deadline `T` (RFC 3339 or @UNIXSECONDS)")
	f.BoolVar(&persist, "persist", false, "remove the TTL")
	return c
}
