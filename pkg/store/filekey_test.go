package store

import (
	"strings"
	"testing"
)

// checkFileName asserts the properties every encoded name must have.
func checkFileName(t *testing.T, key, name string) {
	t.Helper()
	switch {
	case name == "" || name == "." || name == "..":
		t.Fatalf("encode(%q) = %q: not a usable file name", key, name)
	case strings.ContainsAny(name, "/\x00"):
		t.Fatalf("encode(%q) = %q: contains '/' or NUL", key, name)
	case name[0] == '.':
		t.Fatalf("encode(%q) = %q: starts with '.'", key, name)
	case len(name) > 255:
		t.Fatalf("encode(%q): %d bytes, over NAME_MAX", key, len(name))
	}
	if fileKeyIsHashed(name) {
		if _, ok := fileKeyDecode(name); ok {
			t.Fatalf("decode(%q) accepted a hashed name", name)
		}
		return
	}
	got, ok := fileKeyDecode(name)
	if !ok || got != key {
		t.Fatalf("decode(encode(%q)) = %q, %v", key, got, ok)
	}
}

func TestFileKeyEncoding(t *testing.T) {
	for _, tc := range []struct{ key, name string }{
		{"a", "a"},
		{"main", "main"},
		{"user_1-x", "user_1-x"},
		{"A", "%41"},
		{".", "%2E"},
		{"..", "%2E%2E"},
		{".hidden", "%2Ehidden"},
		{"a/b", "a%2Fb"},
		{"%", "%25"},
		{"~", "%7E"},
		{"a b", "a%20b"},
		{"\xff\xfe", "%FF%FE"},
		{"é", "%C3%A9"},
		{"\n", "%0A"},
	} {
		name := fileKeyEncode(tc.key)
		if name != tc.name {
			t.Errorf("encode(%q) = %q, want %q", tc.key, name, tc.name)
		}
		checkFileName(t, tc.key, name)
	}
}

func TestFileKeyNoCaseCollision(t *testing.T) {
	keys := []string{"a", "A", "ab", "aB", "Ab", "AB", "%41", "%61", "\xc3", "\xe3"}
	for i, a := range keys {
		for _, b := range keys[i+1:] {
			if ea, eb := fileKeyEncode(a), fileKeyEncode(b); strings.EqualFold(ea, eb) {
				t.Errorf("%q and %q encode to %q and %q, equal ignoring case", a, b, ea, eb)
			}
		}
	}
}

func TestFileKeyLong(t *testing.T) {
	// 66 escaped bytes fit (198), 67 do not (201).
	fits := strings.Repeat(".", 66)
	if name := fileKeyEncode(fits); fileKeyIsHashed(name) || len(name) != 198 {
		t.Errorf("66 escaped bytes: %q", name)
	}
	over := strings.Repeat(".", 67)
	if name := fileKeyEncode(over); !fileKeyIsHashed(name) {
		t.Errorf("67 escaped bytes not hashed: %q", name)
	}
	literal := strings.Repeat("x", 200)
	if name := fileKeyEncode(literal); name != literal {
		t.Errorf("200 literal bytes were changed")
	}
	for _, key := range []string{strings.Repeat("x", 201), strings.Repeat("X", MaxKeyBytes), strings.Repeat("\xff", MaxKeyBytes)} {
		name := fileKeyEncode(key)
		if !fileKeyIsHashed(name) || len(name) != 65 {
			t.Errorf("long key: name %q", name)
		}
		checkFileName(t, key, name)
	}
	if fileKeyEncode(strings.Repeat("X", MaxKeyBytes)) == fileKeyEncode(strings.Repeat("x", MaxKeyBytes)) {
		t.Error("hashed names collide")
	}
}

func TestFileKeyDecodeRejects(t *testing.T) {
	for _, name := range []string{
		"", ".", "..", ".lock", "A", "%2e", "%61", "%", "a%", "a%4", "%G1", "a/b", "a~", "é",
		strings.Repeat("a", fileKeyMaxLiteral+1),
		fileKeyEncode(strings.Repeat("x", 300)), // hashed
	} {
		if key, ok := fileKeyDecode(name); ok {
			t.Errorf("decode(%q) = %q, want rejection", name, key)
		}
	}
}

func FuzzFileKeyEncoding(f *testing.F) {
	f.Add("a", "A")
	f.Add(".", "..")
	f.Add("a/b", "a%2Fb")
	f.Add("\xff", "%FF")
	f.Add(strings.Repeat("x", 300), strings.Repeat("X", 300))
	f.Add(strings.Repeat(".", 66), strings.Repeat(".", 67))
	f.Fuzz(func(t *testing.T, a, b string) {
		if a == "" || b == "" {
			return
		}
		ea, eb := fileKeyEncode(a), fileKeyEncode(b)
		checkFileName(t, a, ea)
		checkFileName(t, b, eb)
		if a != b && strings.EqualFold(ea, eb) {
			t.Fatalf("%q and %q encode to %q and %q, equal ignoring case", a, b, ea, eb)
		}
		// Whatever decode accepts must be canonical: it re-encodes to itself.
		if key, ok := fileKeyDecode(a); ok && fileKeyEncode(key) != a {
			t.Fatalf("decode accepted non-canonical %q (key %q)", a, key)
		}
	})
}
