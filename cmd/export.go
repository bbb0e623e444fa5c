package cmd

import (
	"encoding/base64"
	"io"
	"strconv"

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
ciphertext, marked "encrypted":true, unless --decrypt is given. 'livedict
import' reads this back. A progress bar is shown on stderr when it is a
terminal.`,
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
			// on a full pipe must not hold the store. The lines are made
			// during the scan and kept as bytes, not as entries: a million
			// keys held 500 MB as entries, their lines 100 MB.
			var lines heldLines
			err = a.View(func(tx store.Tx) error {
				lines = heldLines{} // a Redis transaction that met a commit runs again
				st, ok := tx.(*seal.Tx)
				if ok && !decrypt {
					tx = st.Raw() // values as stored: ciphertext stays ciphertext
				}
				return scanBuckets(tx, buckets, glob, true, func(e store.Entry) error {
					sealed := false
					if ok && !decrypt {
						var err error
						if sealed, err = st.Encrypted(e.Bucket); err != nil {
							return err
						}
					}
					c := lines.next()
					*c = appendExportLine(*c, e, sealed)
					return nil
				})
			})
			if err != nil {
				return err
			}
			progress := a.newProgress("exporting", "keys", int64(lines.n))
			defer progress.clear() // an error line must not land on the bar
			written := 0
			for i, c := range lines.chunks {
				if _, err := a.IO.Out.Write(c); err != nil {
					return err
				}
				written += lines.counts[i]
				progress.update(int64(written), int64(written))
			}
			progress.done("exported", lines.n)
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

// heldLines holds a command's output lines from its scan to the writing
// (export, piped list), in chunks of about 1 MiB (appending to one slice
// copied it at each doubling), with the number of lines in each.
type heldLines struct {
	chunks [][]byte
	counts []int
	n      int
}

const exportChunk = 1 << 20

// writeTo writes the lines to w.
func (l *heldLines) writeTo(w io.Writer) error {
	for _, c := range l.chunks {
		if _, err := w.Write(c); err != nil {
			return err
		}
	}
	return nil
}

// next returns the chunk the next line is to be appended to, and counts
// the line.
func (l *heldLines) next() *[]byte {
	last := len(l.chunks) - 1
	if last < 0 || len(l.chunks[last]) >= exportChunk {
		l.chunks = append(l.chunks, make([]byte, 0, exportChunk+4096))
		l.counts = append(l.counts, 0)
		last++
	}
	l.counts[last]++
	l.n++
	return &l.chunks[last]
}

// appendExportLine appends e's line of an export: the same bytes as the
// object of keyFields, value_b64, expires_at_ms and encrypted, written
// directly when bucket and key need no escaping (printable ASCII other
// than what JSON or its HTML-safe form escapes), which is almost always;
// the object's encoding took a third of a large export's time.
func appendExportLine(b []byte, e store.Entry, sealed bool) []byte {
	if !plainJSON(e.Bucket) || !plainJSON(e.Key) {
		return append(b, objectExportLine(e, sealed)...)
	}
	b = append(b, `{"bucket":"`...)
	b = append(b, e.Bucket...)
	b = append(b, `","key":"`...)
	b = append(b, e.Key...)
	b = append(b, `","value_b64":"`...)
	b = base64.StdEncoding.AppendEncode(b, e.Value)
	b = append(b, `","expires_at_ms":`...)
	if e.ExpiresAt != 0 {
		b = strconv.AppendInt(b, e.ExpiresAt, 10)
	} else {
		b = append(b, "null"...)
	}
	if sealed {
		b = append(b, `,"encrypted":true`...)
	}
	return append(b, "}\n"...)
}

// objectExportLine is e's line of an export as the general JSON object
// writes it, for what appendExportLine cannot write directly.
func objectExportLine(e store.Entry, sealed bool) []byte {
	var exp any
	if e.ExpiresAt != 0 {
		exp = e.ExpiresAt
	}
	o := keyFields(e.Bucket, e.Key)
	o = append(o, field{"value_b64", base64.StdEncoding.EncodeToString(e.Value)}, field{"expires_at_ms", exp})
	if sealed {
		o = append(o, field{"encrypted", true})
	}
	line, _ := o.MarshalJSON() // strings, numbers and bools: no error
	return append(line, '\n')
}

// plainJSON reports whether json.Marshal writes s as itself in quotes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
