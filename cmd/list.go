package cmd

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/lipgloss"

	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
	"github.com/spf13/cobra"
)

func newListCmd(a *App) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:     "list [GLOB]",
		Example: "  livedict list 'user:*'\n  livedict list --all-buckets --json | jq -r 'select(.ttl_ms == -1) | .key'",
		Short:   "Show keys with their TTL, size and a preview of the value",
		Long: `Show the bucket's live keys matching GLOB with their TTL, size and value.

On a terminal: a table. Piped: one line per key, key<TAB>ttl_ms<TAB>bytes,
where ttl_ms is -1 for no TTL and a key's tabs, newlines, backslashes and
control bytes are backslash-escaped. --json: one object per line with bucket,
key, value (or value_b64 when not UTF-8), ttl_ms, expires_at and bytes.

--all-buckets: every bucket's keys, bucket by bucket in name order; piped
lines then start with the bucket and a tab, and the table gets a BUCKET column.`,
		Args: args(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			buckets, err := a.buckets(all)
			if err != nil {
				return err
			}
			glob := ""
			if len(args) == 1 {
				glob = args[0]
			}
			withValues := a.JSON || a.IO.OutTTY
			var entries []store.Entry
			var lines heldLines
			var now int64
			// Print after the transaction: a reader blocked on a full
			// pipe must not hold the store. Piped, the lines are made
			// during the scan and held as bytes: a million keys held as
			// entries took 345 MB.
			if err := a.View(func(tx store.Tx) error {
				entries, lines = entries[:0], heldLines{} // a Redis transaction that met a commit runs again
				now = tx.Now()
				return scanBuckets(tx, buckets, glob, withValues, func(e store.Entry) error {
					if withValues {
						entries = append(entries, e)
						return nil
					}
					c := lines.next()
					if all {
						*c = append(append(*c, e.Bucket...), '\t')
					}
					ttlMs := int64(-1)
					if e.ExpiresAt != 0 {
						ttlMs = e.ExpiresAt - now
					}
					*c = append(append(*c, plainKey(e.Key)...), '\t')
					*c = append(strconv.AppendInt(*c, ttlMs, 10), '\t')
					*c = append(strconv.AppendInt(*c, e.Size, 10), '\n')
					return nil
				})
			}); err != nil {
				return err
			}
			if err := lines.writeTo(a.IO.Out); err != nil {
				return err
			}
			var rows [][]string
			out := bufio.NewWriter(a.IO.Out)
			for _, e := range entries {
				ttlMs, expiresAt := ttlFields(e, now)
				switch {
				case a.JSON:
					o := bytesField(keyFields(e.Bucket, e.Key), "value", e.Value)
					append(o, field{"ttl_ms", ttlMs}, field{"expires_at", expiresAt}, field{"bytes", e.Size}).writeJSONLine(out)
				case a.IO.OutTTY:
					human := "-"
					if ttlMs >= 0 {
						human = ttl.FormatMs(ttlMs)
					}
					row := []string{terminalSafe(e.Key, false), human, humanBytes(e.Size), preview(e.Value)}
					if all {
						row = append([]string{e.Bucket}, row...)
					}
					rows = append(rows, row)
				}
			}
			if err := out.Flush(); err != nil || !a.IO.OutTTY || a.JSON {
				return err
			}
			if len(rows) == 0 {
				fmt.Fprintln(a.IO.Err, "(no keys)")
				return nil
			}
			headers := []string{"KEY", "TTL", "SIZE", "VALUE"}
			if all {
				headers = append([]string{"BUCKET"}, headers...)
			}
			a.printf("%s\n", a.table(headers, rows))
			return nil
		},
	}
	c.Flags().BoolVar(&all, "all-buckets", false, "list the keys of every bucket")
	return c
}

// preview shows the start of a value on one terminal line: at most 40
// columns, escaped as terminalSafe escapes. It escapes and measures only
// what it shows: escaping the whole value first and cutting its []rune
// copy took list on a terminal ~11 bytes of memory per value byte (a
// 30 MB value: 320 MB), could cut an escape in two ("\x1…") and let 40
// wide characters take 80 columns.
func preview(v []byte) string {
	const max = 40
	if !utf8.Valid(v) {
		return "(binary)"
	}
	var b strings.Builder
	width, cut := 0, -1
	for i := 0; i < len(v); {
		_, size := utf8.DecodeRune(v[i:])
		piece := terminalSafe(string(v[i:i+size]), false)
		w := lipgloss.Width(piece)
		if cut < 0 && width+w > max-1 {
			cut = b.Len() // where "…" goes if the rest does not fit
		}
		if width+w > max {
			return b.String()[:cut] + "…"
		}
		b.WriteString(piece)
		width += w
		i += size
	}
	return b.String()
}

func humanBytes(n int64) string {
	switch {
	case n < 1024:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1024*1024))
}
