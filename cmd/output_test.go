package cmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// terminalSafe is what keeps keys and values from rewriting a user's
// screen: no ESC, no other C0/C1 control, no invalid UTF-8, no bidi
// override may reach a terminal raw.
func TestTerminalSafe(t *testing.T) {
	cases := []struct {
		in         string
		keepLayout bool
		want       string
	}{
		{"plain ключ", false, "plain ключ"},
		{"a\x1b[31mred", false, `a\x1b[31mred`},
		{"tab\there\nnl", false, `tab\there\nnl`},
		{"tab\there\nnl", true, "tab\there\nnl"},
		{"cr\rx", true, `cr\rx`},
		{"bad\xffutf8", false, `bad\xffutf8`},
		{"c1\u009bx", false, `c1\x9bx`},
		{"bidi\u202eevil", false, `bidi\u202eevil`},
		{"back\\slash", false, `back\\slash`},
		{"del\x7f", false, `del\x7f`},
	}
	for _, c := range cases {
		if got := terminalSafe(c.in, c.keepLayout); got != c.want {
			t.Errorf("terminalSafe(%q, %v) = %q, want %q", c.in, c.keepLayout, got, c.want)
		}
	}
}

// plainKey keeps each piped list line one record.
func TestPlainKey(t *testing.T) {
	for in, want := range map[string]string{
		"user:1":   "user:1",
		"a\tb":     `a\tb`,
		"a\nb":     `a\nb`,
		`a\b`:      `a\\b`,
		"\x01\x7f": `\x01\x7f`,
		"ключ":     "ключ",
	} {
		if got := plainKey(in); got != want {
			t.Errorf("plainKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// plainText, for a hook's output in piped hook log, escapes what plainKey
// escapes and every byte that is not UTF-8, so the line reads as UTF-8;
// plainKey leaves those bytes as they are.
func TestPlainText(t *testing.T) {
	for in, want := range map[string]string{
		"ok":                "ok",
		"ключ é":            "ключ é",
		"a\tb\n":            `a\tb\n`,
		`a\xffb`:            `a\\xffb`,
		"\xff\xfe":          `\xff\xfe`,
		"one\xff é\x01\x7f": `one\xff é\x01\x7f`,
		"cut\xe2\x82":       `cut\xe2\x82`,
		"\ufffd":            "\ufffd",
	} {
		if got := plainText(in); got != want {
			t.Errorf("plainText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := plainKey("k\xff\t"); got != "k\xff\\t" {
		t.Errorf("plainKey(%q) = %q, want the byte kept and the tab escaped", "k\xff\t", got)
	}
}

// lastLine cuts a long line by runes but keeps the bytes that are not
// UTF-8, for terminalSafe to escape, rather than turning them into U+FFFD.
func TestLastLine(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"first\nlast\n\n", 60, "last"},
		{"a\xffb", 60, "a\xffb"},
		{"abcdé\xffxyz", 5, "…\xffxyz"},
		{"ééééé", 3, "…éé"},
		{"\xff\xfe\xfd", 3, "\xff\xfe\xfd"},
	}
	for _, c := range cases {
		if got := lastLine(c.in, c.n); got != c.want {
			t.Errorf("lastLine(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestProtectNegativeNumbers(t *testing.T) {
	root := NewRootCmd(&App{IO: &IOStreams{}})
	cases := []struct{ in, want []string }{
		{[]string{"set", "n", "-5"}, []string{"set", "n", negMark + "-5"}},
		{[]string{"set", "k", "--nx", "-5"}, []string{"set", "k", "--nx", negMark + "-5"}},
		{[]string{"set", "k", "v", "--ttl", "-5"}, []string{"set", "k", "v", "--ttl", "-5"}},
		{[]string{"set", "k", "v", "--ttl=1s", "-5"}, []string{"set", "k", "v", "--ttl=1s", negMark + "-5"}},
		{[]string{"-b", "x", "incr", "n", "-3"}, []string{"-b", "x", "incr", "n", negMark + "-3"}},
		{[]string{"keys", "-0", "k*"}, []string{"keys", "-0", "k*"}},
		{[]string{"set", "z", "-0"}, []string{"set", "z", negMark + "-0"}},
		{[]string{"decr", "n", "--", "-1"}, []string{"decr", "n", "--", "-1"}},
		{[]string{"set", "k", "-x"}, []string{"set", "k", "-x"}},
		{[]string{"incrbyfloat", "f", "-Inf"}, []string{"incrbyfloat", "f", negMark + "-Inf"}},
		{[]string{"incrbyfloat", "f", "-nan"}, []string{"incrbyfloat", "f", negMark + "-nan"}},
		{[]string{"set", "k", "-info"}, []string{"set", "k", "-info"}},
	}
	for _, c := range cases {
		if got := protectNegativeNumbers(root, c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("protectNegativeNumbers(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// An error's hint names paths and keys too (the identity file's path, a
// chmod command): it is escaped like the error line, and its JSON form
// carries no raw control character either.
func TestPrintErrorEscapesTheHint(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		var errOut bytes.Buffer
		a := &App{IO: &IOStreams{Err: &errOut}, JSON: asJSON}
		a.printError(errors.New("no identity at /x\x1b]0;pwned\a"), 3, "copy it to /x\x1b]0;pwned\a\u009b\u202e")
		if s := errOut.String(); strings.ContainsAny(s, "\x1b\a\u009b\u202e") {
			t.Errorf("json %v: raw control characters in %q", asJSON, s)
		}
	}
}

// JSON output carries C1 controls and bidi overrides as \u escapes, and
// still decodes to the same characters.
func TestJSONSafe(t *testing.T) {
	in := map[string]string{"k": "a\u009b[2J\u202eb\u2066é\u00a0"}
	var out bytes.Buffer
	if err := jsonLineTo(&out, in); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\u009b\u202e\u2066") {
		t.Fatalf("raw controls in %q", out.String())
	}
	if !strings.Contains(out.String(), `a\u009b[2J\u202eb\u2066é`) {
		t.Fatalf("escapes missing in %q", out.String())
	}
	var back map[string]string
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || !reflect.DeepEqual(back, in) {
		t.Fatalf("decodes to %q (%v), want %q", back, err, in)
	}
	line, _ := keyFields("b", "k\u009b").MarshalJSON()
	if string(line) != `{"bucket":"b","key":"k\u009b"}` {
		t.Fatalf("object: %s", line)
	}
}

// A string field is written a piece at a time; the pieces must give the
// bytes marshalling the whole did (json.Marshal, then jsonSafe), wherever
// a piece ends: inside runs of multi-byte characters, C1 controls and
// bidi marks (which jsonSafe escapes), invalid UTF-8 and HTML characters.
func TestObjectJSONInPieces(t *testing.T) {
	var b strings.Builder
	for b.Len() < 3*jsonChunk+7 {
		b.WriteString("é\u202e\u0085€\x00\"\\<&\n\xff\xe2\x82𝄞a")
	}
	for _, s := range []string{"", "plain", b.String(), b.String()[1:], b.String()[2:]} {
		o := object{{"key", "k\u009b"}, {"value", s}, {"ttl_ms", int64(-1)}, {"expires_at", nil}}
		whole, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"key":"k\u009b","value":` + string(jsonSafe(whole)) + `,"ttl_ms":-1,"expires_at":null}`
		got, err := o.MarshalJSON()
		if err != nil || string(got) != want {
			t.Fatalf("MarshalJSON of a %d-byte value differs from the whole-value encoding (err %v)", len(s), err)
		}
		var line bytes.Buffer
		if err := jsonLineTo(&line, o); err != nil || line.String() != want+"\n" {
			t.Fatalf("jsonLineTo of a %d-byte value differs (err %v)", len(s), err)
		}
	}
}

// `get --json` of a big value full of control bytes (six bytes of JSON
// each) must not hold copies of its JSON: it took 2.6 GB for a 64 MiB value.
func TestJSONLineOfABigValueIsStreamed(t *testing.T) {
	value := string(make([]byte, 8<<20)) // 8 MiB of NULs: 48 MiB of JSON
	o := object{{"key", "k"}, {"value", value}}
	var w largestWrite
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := jsonLineTo(&w, o); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	// Written in pieces, never as one buffer holding the whole line.
	if w.n != 48<<20+len(`{"key":"k","value":""}`)+1 || w.max > 8*jsonChunk {
		t.Errorf("jsonLineTo wrote %d bytes, %d at most at once", w.n, w.max)
	}
	// The old way allocated about eleven times the JSON's size. Pieces
	// need a fraction of it (up to about twice with -race, whose sync.Pool
	// drops encoding/json's buffers now and then).
	got := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d MiB", got>>20)
	if got > 5*48<<20 {
		t.Errorf("jsonLineTo allocated %d MiB for an 8 MiB value (48 MiB of JSON)", got>>20)
	}
}

// largestWrite counts what is written to it and the largest single write.
type largestWrite struct{ n, max int }

func (w *largestWrite) Write(p []byte) (int, error) {
	w.n += len(p)
	w.max = max(w.max, len(p))
	return len(p), nil
}
