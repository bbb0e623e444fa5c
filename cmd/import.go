package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
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
			// Catch SIGINT and SIGTERM from the start: reading and
			// parsing a large export takes longer than its transaction,
			// and a signal then must exit 130 like one during the write.
			ctx, stop := interruptible()
			defer stop()
			// Every entry is held until the one transaction commits;
			// collecting less often trades memory for a third of the
			// time a million-line import spent in the collector.
			debug.SetGCPercent(400)
			in, size, name := a.IO.In, int64(-1), "stdin"
			if len(args) == 1 && args[0] != "-" {
				f, err := openInput(ctx, args[0])
				if err != nil && ctx.Err() != nil {
					return context.Canceled
				}
				if err != nil {
					return usageErr(fmt.Errorf("import: %w", err), "")
				}
				defer f.Close()
				if fi, err := f.Stat(); err == nil {
					size = fi.Size()
				}
				in, name = f, args[0]
			}
			progress := a.newProgress("reading", "lines", size)
			defer progress.clear() // an error line must not land on the bar
			maxAt := ttl.NowMs(a.Clock) + ttl.MaxDuration.Milliseconds()
			entries, err := readImport(ctx, in, defBucket, maxAt, a.Limits(), progress)
			if err != nil && ctx.Err() != nil {
				return context.Canceled
			}
			if err != nil {
				err = fmt.Errorf("import %s: %w", name, err)
				if errors.Is(err, store.ErrValueTooLarge) {
					return &exitError{kind: store.KindPolicy, err: err, hint: "nothing was imported"}
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
			if err := a.UpdateContext(ctx, func(tx *hooks.Tx) error {
				// Bulk loads when no hook wants set events (hooks.Tx.LoadMany).
				n, err = store.Import(tx, a.Limits(), entries, mode)
				return err
			}); err != nil {
				return err
			}
			progress.done("imported", n)
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
	// Encrypted marks a value exported as ciphertext (export without
	// --decrypt): it opens only with its store's data key, so it is
	// refused rather than imported as if it were the value.
	Encrypted *bool `json:"encrypted"`
}

// utf8Key and utf8Value are JSON strings that must be valid UTF-8 as
// written: encoding/json turns invalid bytes, and escaped lone surrogates
// ("\udcff", as Python writes surrogate-escaped bytes), into U+FFFD,
// which would silently import a different key or value than the one
// meant. Such bytes belong in key_b64/value_b64.
type (
	utf8Key   string
	utf8Value string
)

var (
	errKeyUTF8   = errors.New(`"key" is not valid UTF-8 (use "key_b64" for such keys)`)
	errValueUTF8 = errors.New(`"value" is not valid UTF-8 (use "value_b64" for such values)`)
)

func (u *utf8Key) UnmarshalJSON(b []byte) error {
	s, err := decodeUTF8(b, errKeyUTF8)
	*u = utf8Key(s)
	return err
}

func (u *utf8Value) UnmarshalJSON(b []byte) error {
	s, err := decodeUTF8(b, errValueUTF8)
	*u = utf8Value(s)
	return err
}

func decodeUTF8(b []byte, bad error) (string, error) {
	if !utf8.Valid(b) {
		return "", bad
	}
	if len(b) >= 2 && b[0] == '"' && bytes.IndexByte(b, '\\') < 0 {
		// The common string, no escapes: the decoder has checked the
		// syntax already, so the bytes between the quotes are it.
		return string(b[1 : len(b)-1]), nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", err
	}
	// Every U+FFFD in s must have been written as one, raw or escaped;
	// any other is the decoder's replacement of a lone surrogate.
	if n := strings.Count(s, "\uFFFD"); n > 0 && n > bytes.Count(b, []byte("\uFFFD"))+escapedFFFD(b) {
		return "", bad
	}
	return s, nil
}

// escapedFFFD counts the \uFFFD escapes in a JSON string.
func escapedFFFD(b []byte) (n int) {
	for i := 0; i+1 < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) && strings.EqualFold(string(b[i+2:i+6]), "fffd") {
			n++
		}
		i++ // the escaped character is not the start of another escape
	}
	return n
}

// readImport parses and checks every line before anything is written, so a
// bad line anywhere means nothing is imported. Lines are parsed in chunks on
// every core: JSON decoding, not the store, is most of an import's time.
func readImport(ctx context.Context, r io.Reader, defBucket string, maxAt int64, lim store.Limits, progress *progressBar) ([]store.Entry, error) {
	type chunk struct {
		firstLine int
		lines     [][]byte
		entries   []store.Entry
		err       error
		tail      error // what ended the input after lines: a line too long
		done      chan struct{}
	}
	parse := func(c *chunk) {
		defer close(c.done)
		defer func() {
			if c.err == nil {
				c.err = c.tail
			}
		}()
		c.entries = make([]store.Entry, 0, len(c.lines))
		// Lines as export writes them, nearly always all of them, are
		// read directly; a chunk with any other line is decoded whole
		// as below (the lines' meaning is the same either way).
		if fastImportChunk(c.lines, defBucket, maxAt, lim, &c.entries) {
			return
		}
		c.entries = c.entries[:0]
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
				if e, err = parseImportLine(line, defBucket, maxAt); err == nil {
					err = errors.New("not one JSON object on the line")
				}
			} else if err = l.checkUTF8(line); err == nil {
				e, err = l.entry(defBucket, maxAt)
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
		// A byte-order mark, which some editors put at the start of
		// a UTF-8 file, is no part of the first line: read on after it,
		// as jq does, rather than refuse the line.
		if bom, _ := br.Peek(3); string(bom) == "\xef\xbb\xbf" {
			br.Discard(3)
		}
		c := &chunk{firstLine: 1, done: make(chan struct{})}
		var read int64
		maxLine := importMaxLine(lim.MaxValueBytes)
		for lineNo := 1; ; lineNo++ {
			line, err := readLine(br, maxLine)
			read += int64(len(line))
			if len(line) > 0 {
				c.lines = append(c.lines, line)
			}
			if err == errLineTooLong {
				// Stop reading: /dev/zero or a disk image has no end
				// of line, and the line would grow until memory ran
				// out. Reported after the earlier lines' own errors.
				c.tail = fmt.Errorf("line %d: longer than %d bytes, more than a line of an export can take with max_value_bytes %d", lineNo, maxLine, lim.MaxValueBytes)
				err = io.EOF
			}
			if len(c.lines) == chunkLines || err != nil {
				pending <- c
				work <- c
				lines := lineNo
				if len(line) == 0 {
					lines-- // the read that met end of file had no line
				}
				progress.update(read, int64(lines))
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
	for {
		// Both waits watch ctx: the reader may be blocked on a pipe that
		// never ends (the next chunk never comes), and the process is
		// about to exit, which ends it.
		var c *chunk
		select {
		case next, ok := <-pending:
			if !ok {
				break
			}
			c = next
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if c == nil {
			break
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
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

var errLineTooLong = errors.New("line too long")

// importMaxLine is the longest line an export of values of at most
// maxValue bytes can hold (0: no limit, as for the values): a "value" whose
// every byte is escaped as \u00XX, a key escaped the same way, and room for
// the other fields and any spacing between them.
func importMaxLine(maxValue int64) int {
	if maxValue <= 0 || maxValue > math.MaxInt/8 {
		return 0
	}
	return int(6*maxValue) + 6*store.MaxKeyBytes + 64<<10
}

// readLine is br.ReadBytes('\n') that gives up with errLineTooLong once the
// line passes max bytes (0: no limit), without holding more than that.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if max > 0 && len(line)+len(frag) > max {
			return nil, errLineTooLong
		}
		line = append(line, frag...)
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

// fastImportChunk appends the entries of lines to entries and reports
// true when every line is in export's own form (appendExportLine's direct
// one: these fields in this order, no spacing, no escapes) and makes a
// valid entry. Reading that form directly took a third of the time
// encoding/json took; anything else returns false and is decoded.
func fastImportChunk(lines [][]byte, defBucket string, maxAt int64, lim store.Limits, entries *[]store.Entry) bool {
	bucket := defBucket
	for _, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue // as the decoder's path skips it
		}
		l, ok := fastImportLine(line, &bucket)
		if !ok {
			return false
		}
		e, err := l.entry(defBucket, maxAt)
		if err != nil || lim.CheckValue(len(e.Value)) != nil {
			return false // the decoder's path gives the exact message
		}
		*entries = append(*entries, e)
	}
	return true
}

// fastImportLine reads a line of the form
//
//	{"bucket":"B","key":"K","value_b64":"V","expires_at_ms":N}
//
// (N a number without sign, fraction or leading zero, or null; B, K and
// V printable ASCII without '"' or '\\'), ending in "\n" or nothing.
// *bucket is the last line's bucket, kept rather than copied again when
// this line's is the same.
func fastImportLine(line []byte, bucket *string) (importLine, bool) {
	var l importLine
	rest, ok := bytes.CutSuffix(line, []byte("\n"))
	if !ok {
		rest = line
	}
	var bb, kb, vb []byte
	if bb, rest, ok = fastField(rest, `{"bucket":"`); !ok {
		return l, false
	}
	if kb, rest, ok = fastField(rest, `,"key":"`); !ok {
		return l, false
	}
	if vb, rest, ok = fastField(rest, `,"value_b64":"`); !ok {
		return l, false
	}
	if string(bb) != *bucket {
		*bucket = string(bb)
	}
	b, k, v := *bucket, string(kb), string(vb)
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"expires_at_ms":`)); !ok {
		return l, false
	}
	num, ok := bytes.CutSuffix(rest, []byte("}"))
	if !ok {
		return l, false
	}
	l.Bucket, l.Key, l.ValueB64 = &b, &k, &v
	if string(num) == "null" {
		return l, true
	}
	if len(num) == 0 || len(num) > 18 || num[0] == '0' && len(num) > 1 {
		return l, false
	}
	var n int64
	for _, c := range num {
		if c < '0' || c > '9' {
			return l, false
		}
		n = n*10 + int64(c-'0')
	}
	l.ExpiresAtMs = &n
	return l, true
}

// fastField cuts prefix and then a plain string's bytes, up to its
// closing quote, from the front of b: it returns the string's bytes and
// what follows the quote.
func fastField(b []byte, prefix string) (s, rest []byte, ok bool) {
	b, ok = bytes.CutPrefix(b, []byte(prefix))
	if !ok {
		return nil, nil, false
	}
	for i, c := range b {
		switch {
		case c == '"':
			return b[:i], b[i+1:], true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, nil, false
		}
	}
	return nil, nil, false
}

func parseImportLine(line []byte, defBucket string, maxAt int64) (store.Entry, error) {
	var l importLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			// Go's own words named its struct ("Go struct field
			// importLine.expires_at_ms of type int64"): say what an
			// export holds there.
			return store.Entry{}, fmt.Errorf("not a JSON object of an export: %q is a JSON %s, where an export has %s", te.Field, te.Value, importFieldKind(te.Type))
		}
		return store.Entry{}, fmt.Errorf("not a JSON object of an export: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return store.Entry{}, errors.New("more than one JSON value on the line")
	}
	if err := l.checkUTF8(line); err != nil {
		return store.Entry{}, err
	}
	return l.entry(defBucket, maxAt)
}

// importFieldKind says in an export's terms what a field of type t holds.
func importFieldKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Uint64:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	}
	return "a string"
}

// checkUTF8 refuses a "key" or "value" that was not valid UTF-8 as
// written (see utf8Key). Only a line with invalid bytes or a decoded
// U+FFFD can hold one: only such a line is decoded again, strictly, so
// the common line costs one pass of utf8.Valid.
func (l importLine) checkUTF8(line []byte) error {
	if utf8.Valid(line) && (l.Key == nil || !strings.Contains(*l.Key, "\uFFFD")) &&
		(l.Value == nil || !strings.Contains(*l.Value, "\uFFFD")) {
		return nil
	}
	var strict struct {
		Key   *utf8Key   `json:"key"`
		Value *utf8Value `json:"value"`
	}
	if err := json.Unmarshal(line, &strict); errors.Is(err, errKeyUTF8) || errors.Is(err, errValueUTF8) {
		return err
	}
	return nil
}

// entry checks a decoded line and makes it an entry.
func (l importLine) entry(defBucket string, maxAt int64) (store.Entry, error) {
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
		return e, errors.New(`no key: each line needs "key" (or "key_b64")`)
	}
	if err := store.ValidateKey(e.Key); err != nil {
		return e, err
	}
	if l.Encrypted != nil && *l.Encrypted {
		return e, errors.New("the value is encrypted (exported without --decrypt): export it with --decrypt, then encrypt the bucket here with bucket policy --encrypt")
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
		return e, errors.New(`no value: each line needs "value_b64" (or "value" for UTF-8 text)`)
	}
	if l.ExpiresAtMs != nil {
		if *l.ExpiresAtMs <= 0 {
			return e, fmt.Errorf("expires_at_ms %d: must be a positive Unix time in ms, or null", *l.ExpiresAtMs)
		}
		if *l.ExpiresAtMs > maxAt {
			// The limit set --at has: a deadline centuries out is a
			// typo or a corrupt export, not a TTL.
			return e, fmt.Errorf("expires_at_ms %d: more than 100 years away", *l.ExpiresAtMs)
		}
		e.ExpiresAt = *l.ExpiresAtMs
	}
	return e, nil
}

// openInput opens name for reading, or gives up when ctx ends. Opening a
// FIFO waits in the system call until a writer comes, and no signal ends
// that wait: `livedict import pipe` with nobody writing ignored SIGTERM
// and SIGINT for good. The open goes on in a goroutine the exit ends.
func openInput(ctx context.Context, name string) (*os.File, error) {
	type opened struct {
		f   *os.File
		err error
	}
	done := make(chan opened, 1)
	go func() {
		f, err := os.Open(name)
		done <- opened{f, err}
	}()
	select {
	case o := <-done:
		return o.f, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
