package cmd

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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
	return fmt.Sprintf("unknown shell %q: use bash, zsh, fish or powershell", string(e))
}

// completeKeys completes the first n positional arguments (n < 0: all) from
// the keys in the store. Completion must never print errors into the
// user's command line, so failures complete nothing.
func completeKeys(a *App, n int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if n >= 0 && len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var keys []string
		a.completeView(cmd, func(tx store.Tx) error {
			keys = nil // a Redis transaction that met a commit runs again
			return tx.Scan(a.Config.Bucket, toComplete, false, func(e store.Entry) error {
				if shellSafe(e.Key) {
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

// completeView runs fn in a read transaction on the store cmd's flags
// name. Completion runs without the root's PersistentPreRunE, so it loads
// the configuration itself; any failure completes nothing.
func (a *App) completeView(cmd *cobra.Command, fn func(store.Tx) error) {
	cfg, err := loadConfig(cmd.Flags())
	if err != nil {
		return
	}
	a.Config = cfg
	s, err := a.Store()
	if err != nil {
		return
	}
	_ = s.View(context.Background(), fn)
}

// shellSafe leaves out words with spaces, control characters (C1
// included), bidi overrides or bytes that are not UTF-8, which cannot be
// offered safely to every shell: a completion is inserted raw into the
// command line.
func shellSafe(s string) bool {
	return terminalSafe(s, true) == s && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' })
}

// completeBuckets completes bucket names that exist in the store (for -b
// and for the NAME of bucket policy and bucket drop).
func completeBuckets(a *App, n int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if n >= 0 && len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		a.completeView(cmd, func(tx store.Tx) error {
			names = nil // a Redis transaction that met a commit runs again
			infos, err := tx.Buckets()
			for _, b := range infos {
				if strings.HasPrefix(b.Name, toComplete) {
					names = append(names, cobra.CompletionWithDesc(b.Name, plural(b.Keys, "key")))
				}
			}
			return err
		})
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeHookIDs completes the ID of hook rm, enable, disable and test,
// each described by its name or command.
func completeHookIDs(a *App) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var ids []string
		a.completeView(cmd, func(tx store.Tx) error {
			ids = nil // a Redis transaction that met a commit runs again
			all, err := hooks.List(tx)
			for _, h := range all {
				id := strconv.FormatInt(h.ID, 10)
				if !strings.HasPrefix(id, toComplete) {
					continue
				}
				desc := h.Name
				if desc == "" {
					desc = strings.Join(h.Argv, " ")
				}
				desc = h.Events.String() + ": " + desc
				if !h.Enabled {
					desc += " (disabled)"
				}
				ids = append(ids, cobra.CompletionWithDesc(id, oneLine(terminalSafe(desc, false))))
			}
			return err
		})
		return ids, cobra.ShellCompDirectiveNoFileComp
	}
}

// enumFlags are the flags with a fixed set of values, completed wherever
// a command has them.
var enumFlags = map[string][]string{
	"on-full":    {string(store.Reject), string(store.EvictSoonest)},
	"color":      {"auto", "always", "never"},
	"log-format": {"text", "json"},
}

// registerCompletions adds the flag completions of the whole tree: bucket
// names for -b, fixed values for enum flags, comma lists for --on.
func registerCompletions(a *App, root *cobra.Command) {
	_ = root.RegisterFlagCompletionFunc("bucket", completeBuckets(a, -1))
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if values, ok := enumFlags[f.Name]; ok {
				_ = c.RegisterFlagCompletionFunc(f.Name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	_ = root.RegisterFlagCompletionFunc("color", cobra.FixedCompletions(enumFlags["color"], cobra.ShellCompDirectiveNoFileComp))
}

// completeEvents completes --on's comma list: each event not yet in it,
// after what was typed up to the last comma.
func completeEvents(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	done := ""
	if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
		done = toComplete[:i+1]
	}
	have := map[string]bool{}
	for _, e := range strings.Split(done, ",") {
		have[e] = true
	}
	var out []string
	for _, e := range []string{"set", "get", "delete", "expire", "all"} {
		if !have[e] && !(e == "all" && done != "") {
			out = append(out, done+e)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}
