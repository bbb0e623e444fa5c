package cmd

import (
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version and Commit are set at build time with
// -ldflags "-X github.com/livedict/livedict/cmd.Version=...".
var (
	Version = "dev"
	Commit  = ""
)

func newVersionCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Example: "  livedict version",
		Short:   "Print the version, commit and Go version",
		Args:    args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			commit := Commit
			if bi, ok := debug.ReadBuildInfo(); ok && commit == "" {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						commit = s.Value
					}
				}
			}
			if commit == "" {
				commit = "unknown"
			}
			if a.JSON {
				a.jsonLine(object{{"version", Version}, {"commit", commit}, {"go", runtime.Version()}})
				return nil
			}
			a.printf("livedict %s (commit %s, %s)\n", Version, commit, runtime.Version())
			return nil
		},
	}
}
