package cmd

import (
	"bufio"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newMGetCmd(a *App) *cobra.Command {
	var nul bool
	c := &cobra.Command{
		Use:   "mget KEY...",
		Short: "Print the values of several keys, one per line (exit 1 when any is missing)",
		Long: `Print the value of each KEY in order, each followed by a newline (with -0 by a
NUL byte), all read in one transaction. A missing key prints an empty line
and makes the exit status 1; the others are still printed, as Redis's MGET
answers nil for them. Values that may hold newlines need -0 or --json.

--json: one object per key; a missing key has "value": null, "ttl_ms": -2
and "expires_at": null.`,
		Example: `  livedict mget host port user
  { read -r host; read -r port; } < <(livedict mget host port)
  livedict mget -0 a b | xargs -0 printf '[%s]\n'`,
		Args:              args(1, -1),
		ValidArgsFunction: completeKeys(a, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, err := a.target(args...)
			if err != nil {
				return err
			}
			entries := make([]store.Entry, len(args))
			found := make([]bool, len(args))
			var now int64
			// rec records get events; nil in a read-only transaction.
			read := func(tx store.Tx, rec *hooks.Tx) error {
				now = tx.Now()
				for i, k := range args {
					if entries[i], found[i], err = tx.Get(bucket, k); err != nil {
						return err
					}
					if !found[i] {
						continue
					}
					if err := a.checkPrintable(entries[i].Value); err != nil {
						return err
					}
					if rec != nil {
						if err := rec.RecordGet(entries[i]); err != nil {
							return err
						}
					}
				}
				return nil
			}
			hooked := false
			if err := a.View(func(tx store.Tx) error {
				if err := read(tx, nil); err != nil {
					return err
				}
				for i, k := range args {
					if found[i] {
						if hooked, err = a.session.WantsGet(tx, bucket, k); err != nil || hooked {
							return err
						}
					}
				}
				return nil
			}); err != nil {
				return err
			}
			if hooked {
				// As get: read again where the events are recorded, so
				// what is printed is what the hooks are told.
				if err := a.recordRead(func(tx *hooks.Tx) error { return read(tx, tx) }); err != nil {
					return err
				}
			}
			return a.printValues(args, bucket, entries, found, now, nul)
		},
	}
	c.Flags().BoolVarP(&nul, "null", "0", false, "end each value with a NUL byte instead of a newline")
	return c
}

// printValues prints mget's answer; any missing key makes it errNotFound.
// missingObject is the --json object of a key that is not there: its
// value null, its TTL -2.
func missingObject(bucket, key string) object {
	return append(keyFields(bucket, key), field{"value", nil}, field{"ttl_ms", store.TTLMissing}, field{"expires_at", nil})
}

func (a *App) printValues(keys []string, bucket string, entries []store.Entry, found []bool, now int64, nul bool) error {
	out := bufio.NewWriter(a.IO.Out)
	end := byte('\n')
	if nul {
		end = 0
	}
	missing := false
	for i, e := range entries {
		switch {
		case !found[i]:
			missing = true
			switch {
			case a.JSON:
				missingObject(bucket, keys[i]).writeJSONLine(out)
			case a.IO.OutTTY:
				// A terminal shows lines, -0 or not, as for a found
				// value: a raw NUL would swallow the missing key's line.
				out.WriteByte('\n')
			default:
				out.WriteByte(end)
			}
		case a.JSON:
			ttlMs, expiresAt := ttlFields(e, now)
			o := bytesField(keyFields(bucket, e.Key), "value", e.Value)
			append(o, field{"ttl_ms", ttlMs}, field{"expires_at", expiresAt}).writeJSONLine(out)
		case a.IO.OutTTY:
			out.WriteString(terminalSafe(string(e.Value), false))
			out.WriteByte('\n')
		default:
			out.Write(e.Value)
			out.WriteByte(end)
		}
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if missing {
		return errNotFound
	}
	return nil
}
