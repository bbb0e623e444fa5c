package cmd

import (
	"fmt"
	"strings"

	"github.com/google/shlex"
	"github.com/livedict/livedict/pkg/hooks"
	"github.com/spf13/cobra"
)

func newHookCmd(a *App) *cobra.Command {
	c := &cobra.Command{
		Use:     "hook",
		Example: "  livedict hook add --on set --key 'config:*' -- /usr/bin/systemctl reload myapp\n  livedict hook list\n  livedict hook log --failed",
		Short:   "Run commands, in a sandbox, when keys are set, read, deleted or expire",
		Long: `Hooks run a command when a key matching them is set, read, deleted or expires.
Each matching event is recorded in the store in the same transaction as the
change, then delivered at least once, in order per key, by a detached
livedict process (or the daemon), in a sandbox. The command that caused it
does not wait (unless --wait-hooks) and its exit status never depends on it.

The hook reads the event as one JSON object on stdin. See 'livedict hook add
--help' and the README's Hooks section.`,
		Args: groupArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return nil },
	}
	c.AddCommand(newHookAddCmd(a), newHookListCmd(a), newHookRmCmd(a),
		newHookEnableCmd(a, true), newHookEnableCmd(a, false),
		newHookTestCmd(a), newHookLogCmd(a), newHookSandboxCmd(a), newHookDeliverCmd(a))
	return c
}

// hookID parses a hook id argument (exit 2 when malformed).
func hookID(s string) (int64, error) {
	id, err := hooks.ParseID(s)
	if err != nil {
		return 0, usageErr(err, "")
	}
	return id, nil
}

// shellJoin shows an argv as a shell would need it typed.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, w := range argv {
		out[i] = shellQuote(w)
	}
	return strings.Join(out, " ")
}

func shellQuote(w string) string {
	if w != "" && !strings.ContainsFunc(w, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// splitRun splits a --run command line as a shell would, without running a
// shell: quotes and backslashes work, but $VARS, globs, pipes and
// redirections are plain characters.
func splitRun(line string) ([]string, error) {
	argv, err := shlex.Split(line)
	if err != nil {
		// shlex says only "EOF found when expecting closing quote".
		return nil, usageErr(fmt.Errorf("--run %q: cannot split it into words: %v", line, err),
			`quote as a shell would, or give the command after --: hook add --on set -- CMD ARGS...`)
	}

	return argv, nil
}
