package cmd

import (
	"github.com/livedict/livedict/pkg/sandbox"
	"github.com/spf13/cobra"
)

func newHookSandboxCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:     "sandbox",
		Example: "  livedict hook sandbox\n  livedict hook sandbox --no-network",
		Short:   "Show which sandbox layers hooks get on this machine, and why any is off",
		Long: `Show each layer of the sandbox hook commands run in, as this machine and
kernel allow it: on, or off and why. Piped: name<TAB>on|off<TAB>why lines.
--json: one object per line.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rows [][]string
			for _, l := range sandbox.Probe() {
				state := "off"
				if l.On {
					state = "on"
				}
				switch {
				case a.JSON:
					a.jsonLine(object{{"layer", l.Name}, {"on", l.On}, {"why", l.Why}})
				case a.IO.OutTTY:
					rows = append(rows, []string{l.Name, state, terminalSafe(l.Why, false)})
				default:
					a.printf("%s\t%s\t%s\n", l.Name, state, l.Why)
				}
			}
			if rows != nil {
				a.printf("%s\n", a.table([]string{"LAYER", "STATE", "WHY"}, rows))
			}
			return nil
		},
	}
}
