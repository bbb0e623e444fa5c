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
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/seal"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
	"github.com/spf13/cobra"
)

// App is what every command shares: streams, clock, global flags, the
// effective configuration and, once opened, the store.
type App struct {
	IO    *IOStreams
	Clock ttl.Clock

	// Global flags.
	JSON      bool
	Verbose   bool
	Quiet     bool
	NoHooks   bool
	WaitHooks bool

	// Config is the effective configuration, set once when the command
	// line is parsed and never changed after (the daemon reloads into
	// its own copy).
	Config *Config
	store  store.Store
	// session records this command's hook events; made with the store.
	session *hooks.Session
	// started is set once the command line parsed and the command began:
	// an error before that is a usage error.
	started bool
	// changesOnly: the command only changes or removes what is there
	// (del, expire, rename…), so it creates no store (store.NoCreate).
	changesOnly bool
}

// Main runs livedict with the process's arguments and returns its exit code.
func Main() int {
	app := &App{IO: SystemIO(), Clock: ttl.System}
	return app.Run(os.Args[1:])
}

// Run executes one command line and returns its exit code, printing any
// error as one line (and maybe a hint) on stderr.
func (a *App) Run(args []string) int {
	out := &checkedWriter{w: a.IO.Out}
	a.IO.Out = out
	if len(args) == 1 && args[0] == "--version" {
		// What git, redis-cli and sqlite3 answer, and what a user of
		// any of them tries first.
		args = []string{"version"}
	}
	root := newRootCmd(a, args)
	if slices.ContainsFunc(args, func(s string) bool { return s == cobra.ShellCompRequestCmd || s == cobra.ShellCompNoDescRequestCmd }) {
		// Walking the tree for flag completions costs more than a
		// whole 'get' (cobra merges every command's flags): only a
		// shell asking for completions pays it.
		registerCompletions(a, root)
	}
	root.SetArgs(protectNegativeNumbers(root, args))
	err := unknownLeadingFlag(root, args)
	if err == nil {
		err = root.Execute()
	}
	if a.store != nil {
		a.session.Close() // whatever the outcome: committed events must go out
		a.store.Close()
	}
	if _, ok := quietStatus(err); ok && out.err != nil {
		// run replays CMD's output itself: when it could not be
		// delivered, CMD's status would claim it was.
		err = nil
	}
	if errors.Is(out.err, syscall.EPIPE) && (err == nil || errors.Is(err, syscall.EPIPE)) {
		// The reader of stdout went away (livedict keys | head -1):
		// not an error worth a line on stderr, as git and GNU tools
		// agree, but not success either.
		return ExitStore
	}
	if err == nil && out.err != nil {
		// An exitError, so that output which failed before a command
		// ran (get --help, a bare livedict) is exit 3, not a usage error.
		err = &exitError{kind: store.KindStore, err: fmt.Errorf("writing output: %w", out.err)}
	}
	if err == nil {
		return ExitOK
	}
	if code, ok := quietStatus(err); ok { // a child's status (lock, run)
		return code
	}
	if le := (*launchError)(nil); errors.As(err, &le) {
		a.printError(err, le.code, "")
		return le.code
	}
	if _, ok := err.(*exitError); !ok && !a.started {
		err = usageErr(err, "run 'livedict --help' for usage")
	}
	if !a.started {
		outputFlags(a, args)
	}
	code, hint := classify(err)
	if code == ExitNotFound || code == ExitInterrupted {
		return code
	}
	if h := a.defaultStoreHint(err); h != "" {
		hint = h
	}
	a.printError(err, code, hint)
	return code
}

// outputFlags applies --json and -q/--quiet from args when the command
// line failed before cobra parsed them (an unknown command or flag): the
// error must come out the way the script asked for.
func outputFlags(a *App, args []string) {
	for _, arg := range args {
		switch arg {
		case "--":
			return
		case "--json", "--json=true":
			a.JSON = true
		case "-q", "--quiet", "--quiet=true":
			a.Quiet = true
		}
	}
}

func (a *App) printError(err error, code int, hint string) {
	// The negative-number mark may appear raw or quoted (%q) in messages.
	msg := strings.NewReplacer(negMark, "", `\x00neg`, "").Replace(err.Error())
	msg = terminalSafe(oneLine(msg), true)
	hint = terminalSafe(oneLine(hint), true)
	if a.Quiet {
		hint = "" // -q silences hints (SPEC), the JSON object's too
	}
	if a.JSON {
		b, _ := json.Marshal(struct {
			Error string `json:"error"`
			Hint  string `json:"hint,omitempty"`
			Exit  int    `json:"exit"`
		}{msg, hint, code})
		fmt.Fprintf(a.IO.Err, "%s\n", b)
		return
	}
	fmt.Fprintf(a.IO.Err, "livedict: error: %s\n", msg)
	if hint != "" {
		fmt.Fprintf(a.IO.Err, "livedict: hint: %s\n", hint)
	}
}

// Store opens the configured store on first use.
func (a *App) Store() (store.Store, error) {
	if a.store != nil {
		return a.store, nil
	}
	if strings.HasPrefix(a.Config.Store, "memory:") {
		// Nothing written there would outlive this one command.
		return nil, usageErr(fmt.Errorf("store %q lives only inside one process", a.Config.Store), "memory: is for the Go API and tests; use sqlite:PATH or file:DIR")
	}
	ro, err := a.redisOptions()
	if err != nil {
		return nil, err
	}
	s, err := store.Open(a.Config.Store, store.Options{
		Clock:       a.Clock,
		BusyTimeout: a.Config.BusyTimeout,
		Durability:  a.Config.Durability,
		Redis:       ro,
	})
	if err != nil {
		return nil, storeErr(err)
	}
	s = seal.Wrap(s, &seal.FileKeys{IdentityFile: a.Config.IdentityFile, RecipientsFile: a.Config.RecipientsFile})
	a.store, a.session = s, a.newSession(s)
	return s, nil
}

// StoreLocation opens the store and says where it lives, for the
// commands that need its state folder (watch, hook add). Not Info: on
// Redis that reads every bucket's metadata and asks MEMORY USAGE, a whole
// pass over a million-key store, and a user the ACL denies MEMORY could
// not watch, add hooks or run a daemon.
func (a *App) StoreLocation() (store.Store, store.Info, error) {
	s, err := a.Store()
	if err != nil {
		return nil, store.Info{}, err
	}
	info, err := store.Locate(s)
	return s, info, storeErr(err)
}

// Limits returns the store-wide limits from the configuration.
func (a *App) Limits() store.Limits {
	return store.Limits{MaxValueBytes: a.Config.MaxValueBytes, MaxTotalKeys: a.Config.MaxTotalKeys}
}

// interruptible returns the context of a long-running command's
// transaction (import, reap): SIGINT or SIGTERM cancel it, so the command
// rolls back and exits 130. Other commands leave the signals alone: a ^C
// ends them at once (the shell sees 130), which loses nothing, since both
// backends survive a process dying mid-transaction, and catching signals
// costs every command a signal goroutine and about three extra threads at
// start-up.
//
// SIGINT is caught only when livedict was not started with it ignored (a
// background job of a script): Notify would undo that, and the ^C meant
// for the script's foreground would roll back its background import.
// Once a signal came, the default action is back, so a second one ends
// the command at once, as for any other command: past its commit point
// (a file store writing 100,000 files) the first cannot stop it, and a
// second ^C used to be swallowed too. One within repeatedStop of the first
// is the same stop delivered twice (timeout(1) signals its child, then its
// process group), as for the daemon.
func interruptible() (ctx context.Context, stop func()) {
	sigs := []os.Signal{syscall.SIGTERM}
	if !signal.Ignored(os.Interrupt) {
		sigs = append(sigs, os.Interrupt)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer signal.Stop(ch)
		select {
		case <-ch:
		case <-done:
			return
		}
		cancel()
		repeat := time.NewTimer(repeatedStop)
		defer repeat.Stop()
		for {
			select {
			case <-ch:
			case <-repeat.C:
				return
			case <-done:
				return
			}
		}
	}()
	return ctx, func() {
		select {
		case <-done:
		default:
			close(done)
		}
		<-ended
		cancel()
	}
}

// Update opens the store and runs fn in a read-write transaction, after
// reaping a bounded batch of expired entries in the same transaction, so a
// store that sat idle never stalls one command. The transaction fn gets
// records the events enabled hooks want (see hooks.Tx).
func (a *App) Update(fn func(*hooks.Tx) error) error {
	return a.UpdateContext(context.Background(), fn)
}

// UpdateContext is Update in a transaction that ends with ctx (see
// interruptible).
func (a *App) UpdateContext(ctx context.Context, fn func(*hooks.Tx) error) error {
	s, err := a.Store()
	if err != nil {
		return err
	}
	if store.IsShared(s) {
		// go-redis gives up waiting for a reply at its read deadline,
		// not when ctx ends: a server holding the commit (CLIENT PAUSE,
		// a busy script) kept an interrupted import waiting for it, and
		// then exiting 0. Closing the store's connections ends the wait;
		// the server drops a held EXEC whose client is gone, and one it
		// already ran stays whole (a transaction is all or nothing).
		defer context.AfterFunc(ctx, func() { s.Close() })()
	}
	reaped := false
	err = a.update(ctx, func(tx *hooks.Tx) error {
		reaped = false
		if due, err := tx.HasExpired(); err != nil || due {
			reaped = true
			if _, err := tx.Reap(store.LazyReapBatch, nil); err != nil {
				return err
			}
		}
		return fn(tx)
	})
	if reaped && errors.Is(err, store.ErrServerFull) {
		// A Redis server at its maxmemory refuses a commit that adds
		// data, and the lazy reap's expire events do: a del, which
		// only frees memory, was refused whenever an expire hook was
		// defined and an entry was due. Without the reap it commits;
		// the due entries wait for a reap with room for their events.
		err = a.update(ctx, fn)
	}
	return interrupted(ctx, err)
}

// recordRead runs fn, a read that a hook or a watcher wants told, in a
// write transaction that records its events, without Update's lazy reap:
// the View before it already reaped, best effort. A reap here made the
// read fail whenever the user may not write, though it records nothing:
// on Redis a user denied PUBSUB NUMSUB counts a watcher as listening, so
// a read-only user's get of a live key was exit 3 (NOPERM EVALSHA) while
// any expired entry awaited its reap.
func (a *App) recordRead(fn func(*hooks.Tx) error) error {
	if _, err := a.Store(); err != nil {
		return err
	}
	return a.update(context.Background(), fn)
}

// updatePrinting is Update for a command that prints what its change
// did or took (getdel, getex, set --get, incr, append): fn writes its
// output to out, which reaches stdout exactly once, for the attempt that
// committed. On a store that holds its write lock through the transaction
// (SQLite, file) the output is written before the commit, so output that
// cannot be delivered (a full disk, a closed pipe) rolls the change back.
// A shared store's transaction is optimistic: it may run fn again after
// another writer's commit, so its output waits for the commit, and an
// undelivered one exits 3 with the change made (README, Redis).
func (a *App) updatePrinting(fn func(tx *hooks.Tx, out io.Writer) error) error {
	s, err := a.Store()
	if err != nil {
		return err
	}
	shared := store.IsShared(s)
	var out bytes.Buffer
	err = a.Update(func(tx *hooks.Tx) error {
		out.Reset() // an earlier attempt's output was never delivered
		if err := fn(tx, &out); err != nil || shared {
			return err
		}
		_, err := a.IO.Out.Write(out.Bytes())
		out.Reset()
		return err
	})
	if err == nil && out.Len() > 0 {
		_, err = a.IO.Out.Write(out.Bytes())
	}
	return err
}

// update runs fn in a write transaction of the open store, recording hook
// events.
func (a *App) update(ctx context.Context, fn func(*hooks.Tx) error) error {
	return storeErr(a.session.Update(a.writeContext(ctx), fn))
}

// writeContext is ctx for a write transaction: marked store.NoCreate for
// commands that only change what exists (changesOnly).
func (a *App) writeContext(ctx context.Context) context.Context {
	if a.changesOnly {
		return store.NoCreate(ctx)
	}
	return ctx
}

// View opens the store and runs fn in a read-only transaction. When that
// transaction saw expired entries, a bounded batch is reaped after it; the
// common case, nothing expired, takes no write lock.
func (a *App) View(fn func(store.Tx) error) error {
	ctx := context.Background()
	s, err := a.Store()
	if err != nil {
		return err
	}
	due := false
	err = s.View(ctx, func(tx store.Tx) error {
		// fn reads first: on Redis the transaction's first read carries
		// what HasExpired asks, so a get is one round trip.
		if err := fn(tx); err != nil {
			return err
		}
		var err error
		due, err = tx.HasExpired()
		return err
	})
	if err == nil && due {
		// Best effort: the read already succeeded, so a store this user
		// cannot write, or another writer holding the lock, must neither
		// fail it nor make it wait. The next write reaps anyway. With
		// --wait-hooks the command waits for its hooks, so it also waits
		// for the reap whose expire events they are: within 20 ms, a
		// loaded machine (or a Redis server's round trips) sometimes
		// left them for the next command, and the wait had nothing to
		// wait for.
		budget := 20 * time.Millisecond
		if a.WaitHooks {
			budget = a.Config.BusyTimeout
		}
		rctx, cancel := context.WithTimeout(ctx, budget)
		a.update(rctx, func(tx *hooks.Tx) error {
			_, err := tx.Reap(store.LazyReapBatch, nil)
			return err
		})
		cancel()
	}
	return storeErr(err)
}

func interrupted(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return context.Canceled
	}
	return err
}

// Bucket returns the bucket this command works on, validated.
func (a *App) Bucket() (string, error) {
	b := a.Config.Bucket
	if err := store.ValidateBucket(b); err != nil {
		return "", usageErr(err, "")
	}
	return b, nil
}

// target checks key arguments before anything is touched and returns the
// bucket they live in.
func (a *App) target(keys ...string) (string, error) {
	for _, k := range keys {
		if err := store.ValidateKey(k); err != nil {
			return "", usageErr(err, "")
		}
	}
	return a.Bucket()
}

// updateOK runs fn in a read-write transaction; fn reporting false (key
// missing, condition not met) is exit 1.
func (a *App) updateOK(fn func(tx *hooks.Tx) (bool, error)) error {
	var ok bool
	err := a.Update(func(tx *hooks.Tx) error {
		var err error
		ok, err = fn(tx)
		return err
	})
	if err == nil && !ok {
		return errNotFound
	}
	return err
}

// --- output ---------------------------------------------------------------

// checkedWriter remembers the first failed write to stdout, so a command
// whose output was lost (a full disk, a closed pipe) cannot exit 0.
type checkedWriter struct {
	w   io.Writer
	err error
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	if err != nil {
		// The kind travels with the error, whichever command returns it.
		c.err = &store.Error{Kind: store.KindOutput, Err: err}
	}
	return n, c.err
}

// outputErr is the error of the first write to stdout that failed, if any.
func (a *App) outputErr() error {
	if c, ok := a.IO.Out.(*checkedWriter); ok {
		return c.err
	}
	return nil
}

// printf writes to stdout.
func (a *App) printf(format string, args ...any) { fmt.Fprintf(a.IO.Out, format, args...) }

// jsonLine writes one JSON object per line to stdout. A failed write is
// also remembered by the checkedWriter, so callers may ignore the error.
func (a *App) jsonLine(v any) error { return jsonLineTo(a.IO.Out, v) }

// jsonLineTo writes one JSON object and a newline to w.
func jsonLineTo(w io.Writer, v any) error {
	if o, ok := v.(object); ok {
		// Streamed: a value is not copied whole (see writeJSONLine).
		bw := bufio.NewWriterSize(w, jsonChunk)
		o.writeJSONLine(bw)
		return bw.Flush()
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own types are marshalled
	}
	_, err = w.Write(append(jsonSafe(b), '\n'))
	return err
}

// jsonSafe writes the C1 controls and the bidi overrides in JSON text as
// \u escapes: encoding/json escapes only what is below U+0020 (and U+2028,
// U+2029), so a key or value holding them reached a terminal raw through
// --json, watch or export. They can only stand inside strings, where the
// escape means the same character: the JSON is unchanged to a parser.
func jsonSafe(b []byte) []byte {
	if !bytes.ContainsFunc(b, needsJSONEscape) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for _, r := range string(b) {
		if needsJSONEscape(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = utf8.AppendRune(out, r)
		}
	}
	return out
}

func needsJSONEscape(r rune) bool {
	return r >= 0x80 && r < 0xa0 || bidiControl(r)
}

// bidiControl reports the characters that change the order text is shown
// in ("Trojan Source"): U+061C, U+200E/F, U+202A-E and U+2066-9.
func bidiControl(r rune) bool { return unicode.Is(unicode.Bidi_Control, r) }

// object is a JSON object that keeps its fields in the order they were added.
type object []field

type field struct {
	k string
	v any
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	if err := o.writeJSON(bw); err != nil {
		return nil, err
	}
	bw.Flush() // to a bytes.Buffer: cannot fail
	return b.Bytes(), nil
}

// jsonChunk is how much of a string field writeJSON encodes at a time.
const jsonChunk = 64 << 10

// writeJSONLine writes o and a newline to w; write errors stay in w (and
// in the checkedWriter under it) for the caller's Flush to report.
func (o object) writeJSONLine(w *bufio.Writer) {
	_ = o.writeJSON(w) // strings, numbers, bools and objects: no error
	w.WriteByte('\n')
}

// writeJSON writes o as MarshalJSON's bytes, encoding a string field a
// piece at a time. Marshalling a value whole cost about eight copies of
// its JSON: a 64 MiB value of NUL or control bytes (six bytes of JSON
// each) took 2.6 GB of memory and 12 s for `get --json`, where jq or a
// small machine's OOM killer would meet it. JSON escapes each character
// on its own, so pieces cut before a byte that starts a character (see
// utf8.RuneStart: never inside a sequence json.Marshal reads as one) give
// the same bytes as the whole, and so does jsonSafe.
func (o object) writeJSON(w *bufio.Writer) error {
	w.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			w.WriteByte(',')
		}
		k, _ := json.Marshal(f.k)
		w.Write(jsonSafe(k))
		w.WriteByte(':')
		s, ok := f.v.(string)
		if !ok {
			v, err := json.Marshal(f.v)
			if err != nil {
				return err
			}
			w.Write(jsonSafe(v))
			continue
		}
		w.WriteByte('"')
		var piece bytes.Buffer // reused: an Encoder allocates no result
		enc := json.NewEncoder(&piece)
		for s != "" {
			cut := min(jsonChunk, len(s))
			for cut < len(s) && !utf8.RuneStart(s[cut]) {
				cut++
			}
			piece.Reset()
			enc.Encode(s[:cut]) // a string: no error; it writes "…"\n
			q := piece.Bytes()
			w.Write(jsonSafe(q[1 : len(q)-2]))
			s = s[cut:]
		}
		w.WriteByte('"')
	}
	w.WriteByte('}')
	return nil
}

// bytesField adds name (valid UTF-8) or name_b64 (anything else), so JSON
// output never silently replaces bytes.
func bytesField(o object, name string, b []byte) object {
	if utf8.Valid(b) {
		return append(o, field{name, string(b)})
	}
	return append(o, field{name + "_b64", base64.StdEncoding.EncodeToString(b)})
}

// keyFields names an entry in JSON output.
func keyFields(bucket, key string) object {
	return bytesField(object{{"bucket", bucket}}, "key", []byte(key))
}

// terminalSafe escapes what must not reach a terminal raw: control
// characters (ESC sequences could rewrite the screen), invalid UTF-8 and
// Unicode direction overrides; without keepLayout also newlines, tabs and
// the line and paragraph separators U+2028/9, so a key or a table cell
// stays on one line. Newlines and tabs pass when keepLayout.
func terminalSafe(s string, keepLayout bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keepLayout && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r == '\\' && !keepLayout:
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			fmt.Fprintf(&b, `\x%02x`, r)
		case bidiControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		case (r == 0x2028 || r == 0x2029) && !keepLayout:
			// Line and paragraph separators: lipgloss breaks a table
			// cell at them as at a newline, splitting the row.
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// plainKey renders a key on one line of piped, tab-separated output:
// tabs, newlines, backslashes and other control bytes are backslash
// escaped so every line stays one record. `keys -0`, export and --json
// give keys byte for byte.
func plainKey(k string) string { return plainField(k, false) }

// plainText renders captured output (a hook's) on one line of piped,
// tab-separated output as plainKey renders a key, and also escapes each
// byte that is not UTF-8 as \xNN, so the line reads as UTF-8 text rather
// than as mojibake. --json gives the bytes whole (output_b64).
func plainText(s string) string { return plainField(s, true) }

func plainField(s string, escapeInvalid bool) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) &&
		(!escapeInvalid || utf8.ValidString(s)) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1 && escapeInvalid:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// errBinaryToTTY refuses to print non-text bytes to a terminal.
var errBinaryToTTY = &exitError{
	kind: store.KindInvalid,
	err:  errors.New("value is binary; not writing it to a terminal"),
	hint: "redirect stdout to a file or a pipe (livedict get KEY > file), or use --json",
}

// defaultStoreHint is the hint for an error making or writing the default
// store in a home the user cannot write (a container's uid with HOME=/, a
// service with a read-only home): the user named no store whose
// permissions they could check, so it says what to set instead.
func (a *App) defaultStoreHint(err error) string {
	if a.Config == nil || a.Config.sources["store"] != "default" ||
		!(errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)) {
		return ""
	}
	var pe *fs.PathError
	path := strings.TrimPrefix(a.Config.Store, "sqlite:")
	if !errors.As(err, &pe) || !(strings.HasPrefix(path, pe.Path) || strings.HasPrefix(pe.Path, filepath.Dir(path))) {
		return ""
	}
	return "the default store is under XDG_DATA_HOME (~/.local/share): set XDG_DATA_HOME or LIVEDICT_STORE to a folder you can write, or name a store with --store"
}
