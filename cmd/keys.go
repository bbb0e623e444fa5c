package cmd

import (
	"bufio"

	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newKeysCmd(a *App) *cobra.Command {
	var nul bool
	c := &cobra.Command{
		Use:   "keys [GLOB]",
		Short: "Print the keys matching a glob, bytewise sorted",
		Long: `Print the live keys of the bucket that match GLOB (default *), bytewise
sorted, each followed by a newline, or with -0 by a NUL byte. Keys are
printed byte for byte: use -0 when keys may hold newlines.

GLOB is Redis's: * any run, ? one byte, [ae] [^e] [a-z] a class, \x a literal x.`,
		Example: "  livedict keys 'user:*'\n  livedict keys -0 | xargs -0 -n1 livedict get",
		Args:    args(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, err := a.Bucket()
			if err != nil {
				return err
			}
			glob := ""
			if len(args) == 1 {
				glob = args[0]
			}
			// Print after the transaction: a reader blocked on a full
			// pipe (keys | xargs livedict del) must not hold the store.
			var keys []string
			if err := a.View(func(tx store.Tx) error {
				keys, err = store.Keys(tx, bucket, glob)
				return err
			}); err != nil {
				return err
			}
			out := bufio.NewWriter(a.IO.Out)
			for _, k := range keys {
				switch {
				case a.JSON:
					line, _ := keyFields(bucket, k).MarshalJSON()
					out.Write(append(line, '\n'))
				case a.IO.OutTTY:
					out.WriteString(terminalSafe(k, false))
					out.WriteByte('\n')
				default:
					out.WriteString(k)
					if nul {
						out.WriteByte(0)
					} else {
						out.WriteByte('\n')
					}
				}
			}
			return out.Flush()
		},
	}
	c.Flags().BoolVarP(&nul, "null", "0", false, "end each key with a NUL byte instead of a newline")
	return c
}
