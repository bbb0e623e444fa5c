package cmd

import (
	"strconv"

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
				a.printf("%s = %s  # %s\n", s.key, strconv.Quote(cfg.values[s.key]), terminalSafe(cfg.sources[s.key], false))
			}
			return nil
		},
	}
}
