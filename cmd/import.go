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
	"runtime"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/livedict/livedict/pkg/hooks"
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
			a.longRunning = true
			// Every entry is held until the one transaction commits;
			// collecting less often trades memory for a third of the
			// time a million-line import spent in the collector.
			debug.SetGCPercent(400)
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
				defer progress.clear() // an error line must not land on the bar
			}
			entries, err := readImport(in, defBucket, a.Limits(), progress)
			if err != nil {
				err = fmt.Errorf("import %s: %w", name, err)
				if errors.Is(err, store.ErrValueTooLarge) {
					return &exitError{code: ExitPolicy, err: err, hint: "nothing was imported"}
				}
				return usageErr(err, "nothing was imported")
			}
			mode := store.FailOnExisting
			switch {
			case skipExisting:
				mode = store.SkipExisting
			case replace:
				mode = store.ReplaceExisting
			}
			var n int
			if err := a.Update(func(tx store.Tx) error {
				h := tx.(*hooks.Tx)
				if h.Recording(hooks.Set) {
					n, err = store.Import(tx, a.Limits(), entries, mode)
					return err
				}
				// No hook wants set events: load in bulk, past the
				// wrapper, and tell it what a daemon needs to know.
				n, err = store.Import(h.Tx, a.Limits(), entries, mode)
				h.Wrote = n > 0
				for _, e := range entries {
					if e.ExpiresAt != 0 && (h.MinDeadline == 0 || e.ExpiresAt < h.MinDeadline) {
						h.MinDeadline = e.ExpiresAt
					}
				}
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
	Bucket      *string     `json:"bucket"`
	Key         *utf8String `json:"key"`
	KeyB64      *string     `json:"key_b64"`
	ValueB64    *string     `json:"value_b64"`
	Value       *string     `json:"value"`
	ExpiresAtMs *int64      `json:"expires_at_ms"`
}

// utf8String is a JSON string that must be valid UTF-8 as written:
// encoding/json turns invalid bytes into U+FFFD, which would silently
// import a different key than the one exported.
type utf8String string

var errKeyUTF8 = errors.New(`"key" is not valid UTF-8 (use "key_b64" for such keys)`)

func (u *utf8String) UnmarshalJSON(b []byte) error {
	if !utf8.Valid(b) {
		return errKeyUTF8
	}
	if len(b) >= 2 && b[0] == '"' && bytes.IndexByte(b, '\\') < 0 {
		// The common key, no escapes: the decoder has checked the
		// syntax already, so the bytes between the quotes are the key.
		*u = utf8String(b[1 : len(b)-1])
		return nil
	}
	var s string
	err := json.Unmarshal(b, &s)
	*u = utf8String(s)
	return err
}

// readImport parses and checks every line before anything is written, so a
// bad line anywhere means nothing is imported. Lines are parsed in chunks on
// every core: JSON decoding, not the store, is most of an import's time.
func readImport(r io.Reader, defBucket string, lim store.Limits, progress *progressBar) ([]store.Entry, error) {
	type chunk struct {
		firstLine int
		lines     [][]byte
		entries   []store.Entry
		err       error
		done      chan struct{}
	}
	parse := func(c *chunk) {
		defer close(c.done)
		c.entries = make([]store.Entry, 0, len(c.lines))
		// One decoder reads the whole chunk: a decoder per line costs
		// more than the decoding. Any problem is reported by parsing
		// that line alone, which gives the exact message.
		buf := bytes.Join(c.lines, nil)
		dec := json.NewDecoder(bytes.NewReader(buf))
		dec.DisallowUnknownFields()
		end := 0
		for i, line := range c.lines {
			start := end
			end += len(line)
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var l importLine
			err := dec.Decode(&l)
			var e store.Entry
			if off := int(dec.InputOffset()); err != nil || off < start || off > end || len(bytes.TrimSpace(buf[off:end])) > 0 {
				if e, err = parseImportLine(line, defBucket); err == nil {
					err = errors.New("not one JSON object on the line")
				}
			} else {
				e, err = l.entry(defBucket)
			}
			if err == nil {
				err = lim.CheckValue(len(e.Value))
			}
			if err != nil {
				c.err = fmt.Errorf("line %d: %w", c.firstLine+i, err)
				return
			}
			c.entries = append(c.entries, e)
		}
	}
	const chunkLines = 4096
	workers := runtime.GOMAXPROCS(0)
	pending := make(chan *chunk, 2*workers) // in input order
	work := make(chan *chunk, 2*workers)
	for w := 0; w < workers; w++ {
		go func() {
			for c := range work {
				parse(c)
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(work)
		defer close(pending)
		br := bufio.NewReaderSize(r, 1<<16)
		c := &chunk{firstLine: 1, done: make(chan struct{})}
		var read int64
		for lineNo := 1; ; lineNo++ {
			line, err := br.ReadBytes('\n')
			read += int64(len(line))
			if len(line) > 0 {
				c.lines = append(c.lines, line)
			}
			if len(c.lines) == chunkLines || err != nil {
				pending <- c
				work <- c
				lines := lineNo
				if len(line) == 0 {
					lines-- // the read that met end of file had no line
				}
				progress.update(read, lines)
				c = &chunk{firstLine: lineNo + 1, done: make(chan struct{})}
			}
			if err == io.EOF {
				readErr <- nil
				return
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	var entries []store.Entry
	var firstErr error
	for c := range pending {
		<-c.done
		if firstErr == nil {
			firstErr = c.err
		}
		if firstErr == nil {
			entries = append(entries, c.entries...)
		}
		c.lines, c.entries = nil, nil
	}
	if err := <-readErr; err != nil {
		return nil, err
	}
	return entries, firstErr
}

func parseImportLine(line []byte, defBucket string) (store.Entry, error) {
	var l importLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); errors.Is(err, errKeyUTF8) {
		return store.Entry{}, err
	} else if err != nil {
		return store.Entry{}, fmt.Errorf("not a JSON object of an export: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return store.Entry{}, errors.New("more than one JSON value on the line")
	}
	return l.entry(defBucket)
}

// entry checks a decoded line and makes it an entry.
func (l importLine) entry(defBucket string) (store.Entry, error) {
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
		e.Key = string(*l.Key)
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
	p.last = time.Time{}
}

// clear erases a bar that is still drawn.
func (p *progressBar) clear() {
	if p != nil && !p.last.IsZero() {
		fmt.Fprint(p.w, "\r\033[K")
		p.last = time.Time{}
	}
}
