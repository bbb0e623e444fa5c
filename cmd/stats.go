package cmd

import (
	"strconv"

	"github.com/spf13/cobra"
)

func newStatsCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:     "stats",
		Example: "  livedict stats\n  livedict stats --json | jq .keys",
		Short:   "Show what the store holds and where it lives",
		Long: `Show the number of keys, buckets and keys with a TTL, the next deadline,
and the store's size, location and backend. A table on a terminal;
name<TAB>value lines when piped; one object with --json.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, now, ds, err := a.storeStatus()
			if err != nil {
				return err
			}
			info, err := a.store.Info()
			if err != nil {
				return err
			}
			next, nextText := nextDeadline(st.NextExpiry, now)
			if a.JSON {
				o := object{
					{"keys", st.Keys}, {"buckets", st.Buckets}, {"keys_with_ttl", st.KeysWithTTL},
					{"next_expiry", next}, {"size_bytes", info.SizeBytes},
				}
				// path_b64 for a path that is not UTF-8: JSON output
				// never replaces bytes.
				o = bytesField(o, "path", []byte(info.Location))
				o = append(o, field{"backend", info.Backend})
				o = append(o, ds.object()...)
				a.jsonLine(append(o, field{"events_pending", ds.pending}, field{"events_failed", ds.failed}))
				return nil
			}
			rows := [][]string{
				{"keys", strconv.FormatInt(st.Keys, 10)},
				{"buckets", strconv.FormatInt(st.Buckets, 10)},
				{"keys_with_ttl", strconv.FormatInt(st.KeysWithTTL, 10)},
				{"next_expiry", nextText},
				{"size_bytes", strconv.FormatInt(info.SizeBytes, 10)},
				{"path", info.Location},
				{"backend", info.Backend},
			}
			rows = append(rows, ds.rows()...)
			rows = append(rows, []string{"events_pending", strconv.FormatInt(ds.pending, 10)},
				[]string{"events_failed", strconv.FormatInt(ds.failed, 10)})
			a.printRows(rows)
			return nil
		},
	}
}
