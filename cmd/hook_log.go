package cmd

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newHookLogCmd(a *App) *cobra.Command {
	var n int
	var failed bool
	c := &cobra.Command{
		Use:     "log [-n N] [--failed]",
		Example: "  livedict hook log -n 20\n  livedict hook log --failed --json",
		Short:   "Show past hook runs, oldest first",
		Long: `Show the last N hook runs (default 20; 0 for all the log keeps, the last 1000),
oldest first. --failed shows only events given up after their last retry.

Each run has its time, hook, event, bucket and key, status (ok; retry: failed,
will be retried; failed: given up; skipped: the hook was removed or disabled
first; refused: on a shared store, this host's hook key does not verify the
definition, logged once per version with no run and the reason as output),
exit status or signal, duration, whether it timed out, and the tail
of its output. Piped: one line per run,
time<TAB>hook<TAB>event<TAB>bucket<TAB>key<TAB>status<TAB>exit<TAB>duration_ms<TAB>timed_out<TAB>output
with the output's tabs, newlines, backslashes and control bytes backslash
escaped, and each byte that is not UTF-8 as \xNN.
--json: one object per line, with the output whole.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n < 0 {
				return usageErr(fmt.Errorf("-n %d: must be 0 or more", n), "")
			}
			var runs []hooks.Run
			if err := a.View(func(tx store.Tx) error {
				var err error
				runs, err = hooks.Log(tx, n, failed)
				return err
			}); err != nil {
				return err
			}
			var rows [][]string
			for _, r := range runs {
				exit := strconv.Itoa(r.ExitCode)
				if r.Signal != "" {
					exit = r.Signal
				} else if r.Status == hooks.StatusSkipped || r.Error != "" && r.ExitCode == -1 {
					exit = "-"
				}
				event := r.Event.String()
				if event == "" {
					event = "-"
				}
				out := string(r.Output)
				if r.Error != "" {
					out = r.Error
				}
				switch {
				case a.JSON:
					o := object{{"id", r.ID}, {"time", formatDeadline(r.Time)}, {"hook", r.HookID}, {"hook_name", r.HookName},
						{"event", event}}
					o = append(keyFields(r.Bucket, string(r.Key)), o...)
					o = append(o, field{"attempt", r.Attempt}, field{"status", r.Status}, field{"exit_code", r.ExitCode},
						field{"signal", r.Signal}, field{"timed_out", r.TimedOut}, field{"duration_ms", r.DurationMs})
					o = bytesField(o, "output", r.Output)
					o = append(o, field{"output_cut", r.OutputCut}, field{"error", r.Error})
					if r.Events > 0 { // a batch run: key and bucket are its first event's
						o = append(o, field{"events", r.Events})
					}
					a.jsonLine(o)
				case a.IO.OutTTY:
					rows = append(rows, []string{formatDeadline(r.Time), strconv.FormatInt(r.HookID, 10), event,
						r.Bucket, terminalSafe(string(r.Key), false), r.Status, exit, strconv.FormatInt(r.DurationMs, 10) + "ms",
						yesNo(r.TimedOut), terminalSafe(lastLine(out, 60), false)})
				default:
					a.printf("%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%t\t%s\n", formatDeadline(r.Time), r.HookID, event,
						r.Bucket, plainKey(string(r.Key)), r.Status, exit, r.DurationMs, r.TimedOut, plainText(out))
				}
			}
			if a.IO.OutTTY && !a.JSON {
				if len(rows) == 0 {
					fmt.Fprintln(a.IO.Err, "(no runs)")
					return nil
				}
				a.printf("%s\n", a.table([]string{"TIME", "HOOK", "EVENT", "BUCKET", "KEY", "STATUS", "EXIT", "TOOK", "TIMEOUT", "OUTPUT"}, rows))
			}
			return nil
		},
	}
	c.Flags().IntVarP(&n, "lines", "n", 20, "show the last `N` runs (0: all)")
	c.Flags().BoolVar(&failed, "failed", false, "only events given up after their last retry")
	return c
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// lastLine returns the last non-empty line of s, cut to at most n runes
// (a byte that is not UTF-8 counts as one). The bytes are kept as they are,
// for terminalSafe to escape: a cut through []rune would have turned them
// into U+FFFD.
func lastLine(s string, n int) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			s = s[i+1:]
			break
		}
	}
	if utf8.RuneCountInString(s) > n {
		i := len(s)
		for range n - 1 {
			_, size := utf8.DecodeLastRuneInString(s[:i])
			i -= size
		}
		s = "…" + s[i:]
	}
	return s
}
