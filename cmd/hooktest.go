package cmd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/sandbox"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newHookTestCmd(a *App) *cobra.Command {
	var o struct{ key, value, event string }
	c := &cobra.Command{
		Use:     "test ID [--key K] [--value V] [--event E]",
		Example: "  livedict hook test 1\n  livedict hook test 1 --event delete --key config:db --value '{\"host\":\"db1\"}'",
		Short:   "Run a hook once now, in its sandbox, and show what happened",
		Long: `Run a hook once, now, with a made-up event, exactly as it would run for a real
one (same sandbox, environment, timeout), and show its status, duration and
output. The event is the hook's first event kind unless --event is given,
on key K (default: the hook's key pattern when it has no wildcards, else
"livedict-test") in the -b bucket (default: the hook's bucket, else main),
with value V (default empty). Nothing is recorded in the store or the log.

Exit 0 when the hook succeeded (exited 0 in time), 1 when it did not.`,
		Args:              args(1, 1),
		ValidArgsFunction: completeHookIDs(a),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := hookID(args[0])
			if err != nil {
				return err
			}
			var h hooks.Hook
			var now int64
			err = a.View(func(tx store.Tx) error {
				now = tx.Now()
				h, err = hooks.Lookup(tx, id)
				return err
			})
			if errors.Is(err, hooks.ErrNoHook) {
				return errNotFound // as hook rm: exit 1, quietly
			}
			if err != nil {
				return err
			}
			ev := h.Events & -h.Events // the first kind it asks for
			if cmd.Flags().Changed("event") {
				if ev, err = hooks.ParseEvents(o.event); err != nil || ev&(ev-1) != 0 {
					return usageErr(fmt.Errorf("--event %q: give one of set, get, delete, expire", o.event), "")
				}
			}
			e := store.Entry{Bucket: h.Bucket, Key: o.key, Value: []byte(o.value)}
			if cmd.Flags().Changed("bucket") || e.Bucket == "" {
				if e.Bucket, err = a.Bucket(); err != nil {
					return err
				}
			}
			if !cmd.Flags().Changed("key") {
				e.Key = "livedict-test"
				if !strings.ContainsAny(h.Key, `*?[\`) {
					e.Key = h.Key
				}
			}
			if err := store.ValidateKey(e.Key); err != nil {
				return usageErr(err, "")
			}
			d, _, err := a.deliverer(nil)
			if err != nil {
				return err
			}
			res, runErr := d.Test(cmd.Context(), h, ev, e, now, a.Config.MaxEventValueBytes)
			ok := hooks.Succeeded(res, runErr)
			a.printRun(res, runErr, ok)
			if !ok {
				return errNotFound
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.key, "key", "", "the event's key `K`")
	f.StringVar(&o.value, "value", "", "the event's value `V`")
	f.StringVar(&o.event, "event", "", "the event kind `E`: set, get, delete or expire")
	return c
}

// printRun shows the result of 'hook test'.
func (a *App) printRun(res sandbox.Result, runErr error, ok bool) {
	status := "ok"
	switch {
	case runErr != nil:
		status = "error"
	case res.TimedOut:
		status = "timed out"
	case !ok:
		status = "failed"
	}
	if a.JSON {
		o := object{{"status", status}, {"exit_code", res.ExitCode}, {"signal", res.Signal},
			{"timed_out", res.TimedOut}, {"duration_ms", res.Duration.Milliseconds()}}
		o = bytesField(o, "output", res.Output)
		o = append(o, field{"output_cut", res.CutBytes})
		if runErr != nil {
			o = append(o, field{"error", runErr.Error()})
		}
		a.jsonLine(o)
		return
	}
	a.printf("status: %s\n", status)
	if runErr != nil {
		a.printf("error: %s\n", oneLine(runErr.Error()))
	} else if res.Signal != "" {
		a.printf("signal: %s\n", res.Signal)
	} else {
		a.printf("exit: %d\n", res.ExitCode)
	}
	a.printf("duration: %dms\n", res.Duration.Milliseconds())
	if len(res.Output) > 0 {
		a.printf("output:\n")
		if res.CutBytes > 0 {
			a.printf("[... %d bytes cut ...]\n", res.CutBytes)
		}
		out := string(res.Output)
		if a.IO.OutTTY {
			out = terminalSafe(out, true)
		}
		a.printf("%s", out)
		if !strings.HasSuffix(out, "\n") {
			a.printf("\n")
		}
	}
}
