package cmd

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newHookListCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Example: "  livedict hook list\n  livedict hook list --json | jq -r 'select(.enabled | not) | .id'",
		Short:   "List hooks",
		Long: `List every hook. On a terminal: a table. Piped: one line per hook,
id<TAB>name<TAB>events<TAB>bucket<TAB>key<TAB>enabled|disabled<TAB>command,
where bucket is * for every bucket and the command is shell-quoted.
--json: one object per line.

On a store shared between hosts (Redis), a hook whose definition this
host's hook_key_file did not sign shows as refused (--json: "refused":
true): this host's daemon does not run it. 'hook enable ID' here signs it.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			var hs []hooks.Hook
			if err := a.View(func(tx store.Tx) error {
				var err error
				hs, err = hooks.List(tx)
				return err
			}); err != nil {
				return err
			}
			// On a shared store, a definition this host's key does not
			// verify is not run here: say so rather than "enabled".
			s, err := a.Store()
			if err != nil {
				return err
			}
			shared := store.IsShared(s)
			var key []byte
			if shared {
				if key, err = hooks.ReadHookKey(a.Config.HookKeyFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			// And one this host saw removed or changed since, put back
			// by someone who can write the store (hooks/seen.go).
			var replayed map[int64]bool
			if shared {
				info, err := store.Locate(s)
				if err != nil {
					return err
				}
				replayed = hooks.Replayed(hooks.StateDir(info), hs, key)
			}
			var rows [][]string
			for _, h := range hs {
				state, bucket := "enabled", h.Bucket
				refused := shared && (!h.Verified(key) || replayed[h.ID])
				switch {
				case !h.Enabled:
					state = "disabled"
				case refused:
					state = hooks.StatusRefused
				}
				if bucket == "" {
					bucket = "*"
				}
				switch {
				case a.JSON && shared:
					a.jsonLine(append(hookObject(h), field{"refused", refused}))
				case a.JSON:
					a.jsonLine(hookObject(h))
				case a.IO.OutTTY:
					rows = append(rows, []string{fmt.Sprint(h.ID), terminalSafe(h.Name, false), h.Events.String(), bucket,
						terminalSafe(h.Key, false), state, hookTimeout(h), terminalSafe(shellJoin(h.Argv), false)})
				default:
					a.printf("%d\t%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, plainKey(h.Name), h.Events, bucket, plainKey(h.Key), state, plainKey(shellJoin(h.Argv)))
				}
			}
			if a.IO.OutTTY && !a.JSON {
				if len(rows) == 0 {
					fmt.Fprintln(a.IO.Err, "(no hooks)")
					return nil
				}
				a.printf("%s\n", a.table([]string{"ID", "NAME", "EVENTS", "BUCKET", "KEY", "STATE", "TIMEOUT", "COMMAND"}, rows))
			}
			return nil
		},
	}
}
