package cmd

import (
	"github.com/livedict/livedict/pkg/sandbox"
	"github.com/spf13/cobra"
)

func newHookSandboxCmd(a *App) *cobra.Command {
	var noNetwork bool
	c := &cobra.Command{
		Use:     "sandbox [--no-network]",
		Example: "  livedict hook sandbox\n  livedict hook sandbox --no-network",
		Short:   "Show which sandbox layers hooks get on this machine, and why any is off",
		Long: `Show each layer of the sandbox hook commands run in, as this machine and
kernel allow it for a hook with exactly the flags given (--no-network or
not): on, or off and why. The last line, network, says what the hook can
reach over sockets. Piped: name<TAB>on|off<TAB>why lines. --json: one
object per line.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rows [][]string
			for _, l := range sandbox.Probe(noNetwork) {
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
	c.Flags().BoolVar(&noNetwork, "no-network", false, "show what a hook added with --no-network gets")
	return c
}
