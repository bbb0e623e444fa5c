package cmd

import (
	"fmt"
	"strconv"

	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
	"github.com/spf13/cobra"
)

func newBucketsCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:     "buckets",
		Example: "  livedict buckets\n  livedict buckets --json | jq -r 'select(.keys > 1000) | .name'",
		Short:   "List buckets with their key counts",
		Long: `List the buckets that hold keys or have a policy. On a terminal: a table with
their policies. Piped: name<TAB>count lines. --json: one object per line.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			var buckets []store.BucketInfo
			policies := map[string]store.Policy{}
			err := a.View(func(tx store.Tx) error {
				var err error
				if buckets, err = tx.Buckets(); err != nil {
					return err
				}
				for _, b := range buckets {
					if policies[b.Name], err = tx.Policy(b.Name); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			var rows [][]string
			for _, b := range buckets {
				p := policies[b.Name]
				switch {
				case a.JSON:
					a.jsonLine(append(object{{"name", b.Name}, {"keys", b.Keys}}, policyFields(p)...))
				case a.IO.OutTTY:
					rows = append(rows, []string{b.Name, strconv.FormatInt(b.Keys, 10), maxKeysText(p), defaultTTLText(p), string(onFull(p))})
				default:
					a.printf("%s\t%d\n", b.Name, b.Keys)
				}
			}
			if a.IO.OutTTY && !a.JSON {
				if len(rows) == 0 {
					fmt.Fprintln(a.IO.Err, "(no buckets)")
					return nil
				}
				a.printf("%s\n", a.table([]string{"BUCKET", "KEYS", "MAX KEYS", "DEFAULT TTL", "ON FULL"}, rows))
			}
			return nil
		},
	}
}

func policyFields(p store.Policy) object {
	return object{{"max_keys", p.MaxKeys}, {"default_ttl_ms", p.DefaultTTL}, {"on_full", onFull(p)}}
}

func onFull(p store.Policy) store.OnFull {
	if p.OnFull == "" {
		return store.Reject
	}
	return p.OnFull
}

func maxKeysText(p store.Policy) string {
	if p.MaxKeys == 0 {
		return "-"
	}
	return strconv.FormatInt(p.MaxKeys, 10)
}

func defaultTTLText(p store.Policy) string {
	if p.DefaultTTL == 0 {
		return "-"
	}
	return ttl.FormatDuration(p.DefaultTTL) // exact: it is a setting, copied back
}
