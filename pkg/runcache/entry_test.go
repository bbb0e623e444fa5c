package runcache

import (
	"bytes"
	"errors"
	"testing"
)

func TestEncodeRoundTrip(t *testing.T) {
	for _, e := range []Entry{
		{},
		{Created: 1767225600000, Status: 3, Stdout: []byte("out\x00\n"), Stderr: []byte("err")},
		{Created: -1, Status: -1, Stdout: bytes.Repeat([]byte{0xff}, 300)},
	} {
		b := e.Encode()
		if len(b) != EncodedSize(len(e.Stdout), len(e.Stderr)) {
			t.Errorf("EncodedSize = %d, encoded %d bytes", EncodedSize(len(e.Stdout), len(e.Stderr)), len(b))
		}
		got, err := Decode(b)
		if err != nil || got.Created != e.Created || got.Status != e.Status || !bytes.Equal(got.Stdout, e.Stdout) || !bytes.Equal(got.Stderr, e.Stderr) {
			t.Errorf("Decode(Encode(%+v)) = %+v, %v", e, got, err)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := Entry{Stdout: []byte("ab"), Stderr: []byte("c")}.Encode()
	for name, b := range map[string][]byte{
		"empty":     nil,
		"plain":     []byte("hello world, not an entry"),
		"truncated": good[:len(good)-1],
		"trailing":  append(append([]byte(nil), good...), 'x'),
		"huge len":  append(append([]byte(nil), good[:len(magic)+12]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
	} {
		if _, err := Decode(b); !errors.Is(err, ErrNotEntry) {
			t.Errorf("%s: Decode = %v, want ErrNotEntry", name, err)
		}
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to
// the same bytes (one encoding per entry).
func FuzzDecode(f *testing.F) {
	f.Add(Entry{Created: 5, Status: 1, Stdout: []byte("x"), Stderr: []byte("y\x00")}.Encode())
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Encode(), b) {
			t.Fatalf("Decode accepted %x, which re-encodes as %x", b, e.Encode())
		}
	})
}

func TestKeyInputsMatter(t *testing.T) {
	env := func(v string) func(string) (string, bool) {
		return func(string) (string, bool) { return v, v != "" }
	}
	base := Key([]string{"echo", "a b"}, KeyInputs{})
	for name, k := range map[string]string{
		"argv split": Key([]string{"echo", "a", "b"}, KeyInputs{}),
		"cwd":        Key([]string{"echo", "a b"}, KeyInputs{Cwd: "/"}),
		"scope":      Key([]string{"echo", "a b"}, KeyInputs{Scope: "s"}),
		"env set":    Key([]string{"echo", "a b"}, KeyInputs{Env: []string{"X"}, Getenv: env("1")}),
		"env unset":  Key([]string{"echo", "a b"}, KeyInputs{Env: []string{"X"}, Getenv: env("")}),
		"modtime":    Key([]string{"echo", "a b"}, KeyInputs{Modtime: []string{"/nonexistent"}}),
	} {
		if k == base {
			t.Errorf("%s: same key as plain argv", name)
		}
	}
	if Key([]string{"echo", "a b"}, KeyInputs{}) != base {
		t.Error("Key is not deterministic")
	}
}
