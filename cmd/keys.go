package cmd

import (
	"bufio"

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
		Example: "  livedict keys 'user:*'\n  livedict keys -0 | xargs -0 -n1 livedict get",
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
			// Kept bucket by bucket: 16 bytes a key beside its bytes,
			// where whole entries took 80.
			type bucketKeys struct {
				bucket string
				keys   []string
			}
			var found []bucketKeys
			if err := a.View(func(tx store.Tx) error {
				found = found[:0] // a Redis transaction that met a commit runs again
				return scanBuckets(tx, buckets, glob, false, func(e store.Entry) error {
					if len(found) == 0 || found[len(found)-1].bucket != e.Bucket {
						found = append(found, bucketKeys{bucket: e.Bucket})
					}
					last := &found[len(found)-1]
					last.keys = append(last.keys, e.Key)
					return nil
				})
			}); err != nil {
				return err
			}
			out := bufio.NewWriter(a.IO.Out)
			for _, b := range found {
				a.printKeys(out, b.bucket, b.keys, all, nul)
			}
			return out.Flush()
		},
	}
	c.Flags().BoolVarP(&nul, "null", "0", false, "end each key with a NUL byte instead of a newline")
	c.Flags().BoolVar(&all, "all-buckets", false, "list the keys of every bucket, as BUCKET<TAB>KEY")
	return c
}

// printKeys writes one bucket's keys as keys prints them.
func (a *App) printKeys(out *bufio.Writer, bucket string, keys []string, all, nul bool) {
	for _, k := range keys {
		if all && !a.JSON {
			out.WriteString(bucket)
			out.WriteByte('\t')
		}
		switch {
		case a.JSON:
			keyFields(bucket, k).writeJSONLine(out)
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
}
