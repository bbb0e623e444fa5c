package cmd

import (
	"fmt"

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
--json: one object per line.`,
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
			var rows [][]string
			for _, h := range hs {
				state, bucket := "enabled", h.Bucket
				if !h.Enabled {
					state = "disabled"
				}
				if bucket == "" {
					bucket = "*"
				}
				switch {
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
