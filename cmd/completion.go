package cmd

import (
	"context"
	"strings"

	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newCompletionCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:     "completion bash|zsh|fish|powershell",
		Example: "  source <(livedict completion bash)\n  livedict completion fish > ~/.config/fish/completions/livedict.fish",
		Short:   "Print a shell completion script",
		Long: `Print a completion script for the shell. Key arguments complete from the store.

  bash:  source <(livedict completion bash)
  zsh:   livedict completion zsh > "${fpath[1]}/_livedict"
  fish:  livedict completion fish > ~/.config/fish/completions/livedict.fish`,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, out := cmd.Root(), a.IO.Out
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(out)
			}
			return usageErr(errUnknownShell(args[0]), "")
		},
	}
}

type errUnknownShell string

func (e errUnknownShell) Error() string {
	return "unknown shell " + strings.TrimSpace(string(e)) + ": use bash, zsh, fish or powershell"
}

// completeKeys completes the first n positional arguments (n < 0: all) from
// the keys in the store. Completion must never print errors into the
// user's command line, so failures complete nothing.
func completeKeys(a *App, n int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if n >= 0 && len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		cfg, err := loadConfig(cmd.Flags())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		a.Config = cfg
		var keys []string
		ctx := context.Background()
		s, err := a.Store()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		_ = s.View(ctx, func(tx store.Tx) error {
			return tx.Scan(cfg.Bucket, toComplete, false, func(e store.Entry) error {
				// A key with spaces or control bytes cannot be offered
				// safely to every shell; it is left out.
				if !strings.ContainsFunc(e.Key, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
					keys = append(keys, e.Key)
				}
				if len(keys) >= 1000 {
					return store.ErrStopScan
				}
				return nil
			})
		})
		return keys, cobra.ShellCompDirectiveNoFileComp
	}
}
