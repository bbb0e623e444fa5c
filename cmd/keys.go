package cmd

import (
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newKeysCmd(a *App) *cobra.Command {
	var nul, all bool
	c := &cobra.Command{
		Use:   "keys [GLOB]",
		Short: "Print the keys matching a glob, bytewise sorted",
		Long: `Print the live keys of the bucket that match GLOB (default *), bytewise
sorted, each followed by a newline, or with -0 by a NUL byte. Keys are
printed byte for byte: use -0 when keys may hold newlines.

GLOB is Redis's: * any run, ? one byte, [ae] [^e] [a-z] a class, \x a literal x.

--all-buckets: the matching keys of every bucket, bucket by bucket in name
order, each line BUCKET<TAB>KEY (bucket names never hold a tab).`,
		Example: "  livedict keys 'user:*'\n  livedict keys -0 | xargs -0 -n1 livedict get --",
		Args:    args(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			buckets, err := a.buckets(all)
			if err != nil {
				return err
			}
			glob := ""
			if len(args) == 1 {
				glob = args[0]
			}
			// Print after the transaction: a reader blocked on a full
			// pipe (keys | xargs livedict del) must not hold the store.
			// The lines are made during the scan and held as bytes: a
			// million keys held as entries took 470 MB.
			var lines heldLines
			if err := a.View(func(tx store.Tx) error {
				lines = heldLines{} // a Redis transaction that met a commit runs again
				return scanBuckets(tx, buckets, glob, false, func(e store.Entry) error {
					c := lines.next()
					*c = a.appendKeyLine(*c, e.Bucket, e.Key, all, nul)
					return nil
				})
			}); err != nil {
				return err
			}
			return lines.writeTo(a.IO.Out)
		},
	}
	c.Flags().BoolVarP(&nul, "null", "0", false, "end each key with a NUL byte instead of a newline")
	c.Flags().BoolVar(&all, "all-buckets", false, "list the keys of every bucket, as BUCKET<TAB>KEY")
	return c
}

// appendKeyLine appends the line keys prints for a key.
func (a *App) appendKeyLine(b []byte, bucket, k string, all, nul bool) []byte {
	if all && !a.JSON {
		b = append(append(b, bucket...), '\t')
	}
	switch {
	case a.JSON && plainJSON(bucket) && plainJSON(k): // almost always: as the object's bytes
		b = append(append(append(b, `{"bucket":"`...), bucket...), `","key":"`...)
		return append(append(b, k...), "\"}\n"...)
	case a.JSON:
		j, _ := keyFields(bucket, k).MarshalJSON() // strings: no error
		return append(append(b, j...), '\n')
	case a.IO.OutTTY:
		return append(append(b, terminalSafe(k, false)...), '\n')
	case nul:
		return append(append(b, k...), 0)
	default:
		return append(append(b, k...), '\n')
	}
}
