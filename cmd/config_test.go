package cmd

import (
	"testing"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2"
)

// FuzzTOMLQuote: what config prints for a value reads back, as TOML, as
// that value (strconv.Quote's \x01 was no TOML escape, so a store path
// with a control byte could not be pasted into config.toml).
func FuzzTOMLQuote(f *testing.F) {
	for _, s := range []string{"", "/tmp/a\x01b.db", `C:\store`, "q\"", "tab\there", "\x7f", "é", "\u202e", "\U0001F600", "\u2028", "\a\v\b\f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // no TOML string holds it
		}
		var m map[string]string
		if err := toml.Unmarshal([]byte("k = "+tomlQuote(s)), &m); err != nil {
			t.Fatalf("%q quoted as %s: %v", s, tomlQuote(s), err)
		}
		if m["k"] != s {
			t.Fatalf("%q quoted as %s read back as %q", s, tomlQuote(s), m["k"])
		}
	})
}
