package cmd

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newImportCmd(a *App) *cobra.Command {
	var skipExisting, replace bool
	c := &cobra.Command{
		Use:   "import [FILE|-]",
		Short: "Load an export in one transaction (all or nothing)",
		Long: `Load JSON Lines as written by 'livedict export' (from FILE, or stdin when
omitted or -) in one transaction: either every line is loaded or, on any error,
nothing is. Lines whose deadline has passed are skipped; a line without a
bucket goes to the -b bucket; value (UTF-8 text) may stand for value_b64.

A key that already exists stops the import (exit 2) unless --skip-existing
(keep the existing key) or --replace (overwrite it). A progress bar is shown on
stderr when it is a terminal. With -v, print how many keys were written.`,
		Example: "  livedict import backup.jsonl --replace\n  ssh host livedict export | livedict import --skip-existing",
		Args:    args(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := exclusive(cmd.Flags(), "skip-existing", "replace"); err != nil {
				return err
			}
			defBucket, err := a.Bucket()
			if err != nil {
				return err
			}
			in, size, name := a.IO.In, int64(-1), "stdin"
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return usageErr(fmt.Errorf("import: %w", err), "")
				}
				defer f.Close()
				if fi, err := f.Stat(); err == nil {
					size = fi.Size()
				}
				in, name = f, args[0]
			}
			var progress *progressBar
			if a.IO.ErrTTY && !a.JSON {
				progress = &progressBar{w: a.IO.Err, total: size}
			}
			entries, err := readImport(in, defBucket, a.Limits(), progress)
			if err != nil {
				return usageErr(fmt.Errorf("import %s: %w", name, err), "nothing was imported")
			}
			var n int
			if err := a.Update(func(tx store.Tx) error {
				n, err = store.Import(tx, a.Limits(), entries, skipExisting, replace)
				return err
			}); err != nil {
				return err
			}
			progress.done(n)
			a.printCount(n)
			return nil
		},
	}
	c.Flags().BoolVar(&skipExisting, "skip-existing", false, "keep keys that already exist")
	c.Flags().BoolVar(&replace, "replace", false, "overwrite keys that already exist")
	return c
}

// importLine is one line of an export. Pointers tell a missing field from
// an empty one.
type importLine struct {
	Bucket      *string `json:"bucket"`
	Key         *string `json:"key"`
	KeyB64      *string `json:"key_b64"`
	ValueB64    *string `json:"value_b64"`
	Value       *string `json:"value"`
	ExpiresAtMs *int64  `json:"expires_at_ms"`
}

// readImport parses and checks every line before anything is written, so a
// bad line anywhere means nothing is imported.
func readImport(r io.Reader, defBucket string, lim store.Limits, progress *progressBar) ([]store.Entry, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var entries []store.Entry
	var read int64
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		read += int64(len(line))
		if len(bytes.TrimSpace(line)) > 0 {
			e, perr := parseImportLine(line, defBucket)
			if perr == nil {
				perr = lim.CheckValue(len(e.Value))
			}
			if perr != nil {
				return nil, fmt.Errorf("line %d: %w", lineNo, perr)
			}
			entries = append(entries, e)
			progress.update(read, len(entries))
		}
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func parseImportLine(line []byte, defBucket string) (store.Entry, error) {
	var l importLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return store.Entry{}, fmt.Errorf("not a JSON object of an export: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return store.Entry{}, errors.New("more than one JSON value on the line")
	}
	e := store.Entry{Bucket: defBucket}
	if l.Bucket != nil {
		e.Bucket = *l.Bucket
	}
	if err := store.ValidateBucket(e.Bucket); err != nil {
		return e, err
	}
	switch {
	case l.Key != nil && l.KeyB64 != nil:
		return e, errors.New("both key and key_b64")
	case l.Key != nil:
		e.Key = *l.Key
	case l.KeyB64 != nil:
		k, err := base64.StdEncoding.DecodeString(*l.KeyB64)
		if err != nil {
			return e, fmt.Errorf("key_b64: %v", err)
		}
		e.Key = string(k)
	default:
		return e, errors.New("no key")
	}
	if err := store.ValidateKey(e.Key); err != nil {
		return e, err
	}
	switch {
	case l.Value != nil && l.ValueB64 != nil:
		return e, errors.New("both value and value_b64")
	case l.Value != nil:
		e.Value = []byte(*l.Value)
	case l.ValueB64 != nil:
		v, err := base64.StdEncoding.DecodeString(*l.ValueB64)
		if err != nil {
			return e, fmt.Errorf("value_b64: %v", err)
		}
		e.Value = v
	default:
		return e, errors.New("no value_b64")
	}
	if l.ExpiresAtMs != nil {
		if *l.ExpiresAtMs <= 0 {
			return e, fmt.Errorf("expires_at_ms %d: must be a positive Unix time in ms, or null", *l.ExpiresAtMs)
		}
		e.ExpiresAt = *l.ExpiresAtMs
	}
	return e, nil
}

// progressBar draws import progress on a terminal's stderr, at most ten
// times a second. A nil *progressBar draws nothing.
type progressBar struct {
	w     io.Writer
	total int64
	last  time.Time
}

func (p *progressBar) update(read int64, lines int) {
	if p == nil || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	if p.total <= 0 {
		fmt.Fprintf(p.w, "\rreading… %d lines", lines)
		return
	}
	const width = 30
	done := int(float64(width) * float64(read) / float64(p.total))
	fmt.Fprintf(p.w, "\r[%s%s] %3d%% %d lines", strings.Repeat("#", done), strings.Repeat(".", width-done), 100*read/p.total, lines)
}

func (p *progressBar) done(n int) {
	if p == nil || p.last.IsZero() {
		return
	}
	fmt.Fprintf(p.w, "\r\033[Kimported %d keys\n", n)
}
