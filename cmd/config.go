package cmd

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

func newConfigCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:     "config",
		Example: "  livedict config\n  livedict config --json | jq -r 'select(.key == \"store\") | .value'",
		Short:   "Show the effective configuration and where each value came from",
		Long: `Show every setting, its effective value and where it came from: a flag, a
LIVEDICT_* environment variable, the configuration file, or the default.
Precedence: flags > environment > file > defaults.

The file is --config, LIVEDICT_CONFIG, or $XDG_CONFIG_HOME/livedict/config.toml
(config.yaml, config.yml and config.json are also read).`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := a.Config
			if a.JSON {
				for _, s := range settings {
					// value_b64 for a value that is not UTF-8 (a store
					// path): JSON output never replaces bytes.
					o := bytesField(object{{"key", s.key}}, "value", []byte(cfg.values[s.key]))
					a.jsonLine(append(o, field{"source", cfg.sources[s.key]}))
				}
				return nil
			}
			if cfg.File != "" {
				a.printf("# file: %s\n", terminalSafe(cfg.File, false))
			}
			for _, s := range settings {
				a.printf("%s = %s  # %s\n", s.key, tomlQuote(cfg.values[s.key]), terminalSafe(cfg.sources[s.key], false))
			}
			return nil
		},
	}
}

// tomlQuote quotes s as a TOML basic string, so config's lines can be
// pasted into a config.toml: strconv.Quote's \x01, \a and \v are no TOML
// escapes. A byte that is not UTF-8, which no TOML string can hold, is
// shown as \xNN all the same.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '"', r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case !strconv.IsPrint(r) && r <= 0xffff:
			fmt.Fprintf(&b, `\u%04X`, r)
		case !strconv.IsPrint(r):
			fmt.Fprintf(&b, `\U%08X`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	b.WriteByte('"')
	return b.String()
}
