package cmd

import (
	"bufio"
	"encoding/base64"

	"github.com/livedict/livedict/pkg/seal"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newExportCmd(a *App) *cobra.Command {
	var all, decrypt bool
	c := &cobra.Command{
		Use:   "export [GLOB]",
		Short: "Write live entries as JSON Lines, for backup or import",
		Long: `Write the bucket's live entries matching GLOB (or every bucket's, with
--all-buckets) as JSON Lines, one entry per line:

  {"bucket":"main","key":"k","value_b64":"dg==","expires_at_ms":1767225599000}

expires_at_ms is null for keys without a TTL. A key that is not valid UTF-8
is written as key_b64. Values of encrypted buckets are written as their
ciphertext, marked "encrypted":true, unless --decrypt is given. 'livedict import' reads this back. A progress bar is
shown on stderr when it is a terminal.`,
		Example: "  livedict export --all-buckets > backup.jsonl",
		Args:    args(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			glob := ""
			if len(args) == 1 {
				glob = args[0]
			}
			buckets, err := a.buckets(all)
			if err != nil {
				return err
			}
			// Collect, then write after the transaction: a reader blocked
			// on a full pipe must not hold the store.
			var entries []store.Entry
			sealed := map[string]bool{}
			err = a.View(func(tx store.Tx) error {
				entries = entries[:0] // a Redis transaction that met a commit runs again
				st, ok := tx.(*seal.Tx)
				if ok && !decrypt {
					tx = st.Raw() // values as stored: ciphertext stays ciphertext
				}
				return scanBuckets(tx, buckets, glob, true, func(e store.Entry) error {
					if ok && !decrypt {
						enc, err := st.Encrypted(e.Bucket)
						if err != nil {
							return err
						}
						sealed[e.Bucket] = enc
					}
					entries = append(entries, e)
					return nil
				})
			})
			if err != nil {
				return err
			}
			progress := a.newProgress("exporting", "keys", int64(len(entries)))
			defer progress.clear() // an error line must not land on the bar
			out := bufio.NewWriterSize(a.IO.Out, 1<<16)
			for i, e := range entries {
				if i%1024 == 0 {
					progress.update(int64(i), int64(i))
				}
				var exp any
				if e.ExpiresAt != 0 {
					exp = e.ExpiresAt
				}
				o := keyFields(e.Bucket, e.Key)
				o = append(o, field{"value_b64", base64.StdEncoding.EncodeToString(e.Value)}, field{"expires_at_ms", exp})
				if sealed[e.Bucket] {
					o = append(o, field{"encrypted", true})
				}
				line, err := o.MarshalJSON()
				if err != nil {
					return err
				}
				out.Write(append(line, '\n'))
			}
			if err := out.Flush(); err != nil {
				return err
			}
			progress.done("exported", len(entries))
			return nil
		},
	}
	c.Flags().BoolVar(&all, "all-buckets", false, "export every bucket")
	c.Flags().BoolVar(&decrypt, "decrypt", false, "write encrypted buckets' values in plaintext")
	return c
}

// buckets is the command's bucket, or nil for --all-buckets (every bucket,
// as scanBuckets reads them in its transaction).
func (a *App) buckets(all bool) ([]string, error) {
	if all {
		return nil, nil
	}
	b, err := a.Bucket()
	if err != nil {
		return nil, err
	}
	return []string{b}, nil
}

// scanBuckets calls fn for the live entries matching glob in each of
// buckets in turn (nil: every bucket of the store, in name order).
func scanBuckets(tx store.Tx, buckets []string, glob string, withValues bool, fn func(store.Entry) error) error {
	if buckets == nil {
		infos, err := tx.Buckets()
		if err != nil {
			return err
		}
		for _, b := range infos {
			buckets = append(buckets, b.Name)
		}
	}
	for _, b := range buckets {
		if err := store.ScanGlob(tx, b, glob, withValues, fn); err != nil {
			return err
		}
	}
	return nil
}
