package cmd

import (
	"strconv"
	"strings"
	"time"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
	"github.com/spf13/cobra"
)

func newDaemonStatusCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show whether a daemon runs for this store, and what waits for it",
		Long: `Show whether a daemon runs for this store (pid, uptime), how many keys have a
deadline and the next one, and how many hook events wait for delivery or
were given up. A table on a terminal; name<TAB>value lines when piped; one
object with --json. Exit 0 whether or not a daemon runs.`,
		Example: "  livedict daemon status\n  livedict daemon status --json",
		Args:    args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, now, ds, err := a.storeStatus()
			if err != nil {
				return err
			}
			next, nextText := nextDeadline(st.NextExpiry, now)
			if a.JSON {
				return a.jsonLine(append(ds.object(), field{"scheduled_keys", st.KeysWithTTL}, field{"next_deadline", next},
					field{"events_pending", ds.pending}, field{"events_failed", ds.failed}))
			}
			rows := append(ds.rows(), []string{"scheduled_keys", strconv.FormatInt(st.KeysWithTTL, 10)},
				[]string{"next_deadline", nextText},
				[]string{"events_pending", strconv.FormatInt(ds.pending, 10)},
				[]string{"events_failed", strconv.FormatInt(ds.failed, 10)})
			a.printRows(rows)
			return nil
		},
	}
}

// daemonInfo is what 'daemon status' and 'stats' say about the daemon and
// the hook outbox.
type daemonInfo struct {
	pid             int
	started         int64 // Unix ms, 0 when unknown
	pending, failed int64
}

// storeStatus reads, in one transaction, what the store holds and what
// waits in its outbox, and asks the daemon lock who holds it.
func (a *App) storeStatus() (st store.Stats, now int64, ds daemonInfo, err error) {
	err = a.View(func(tx store.Tx) error {
		now = tx.Now()
		if st, err = tx.Stats(); err != nil {
			return err
		}
		ds.pending, ds.failed, err = hooks.Counts(tx)
		return err
	})
	if err != nil {
		return
	}
	info, err := store.Locate(a.store)
	if err != nil {
		return
	}
	dir := hooks.StateDir(info)
	if ds.pid, err = hooks.Holder(dir, hooks.DaemonLock); err != nil || ds.pid == 0 {
		// The lock could not be read (a state folder that is not one,
		// no descriptor left): the store's failure.
		err = storeErr(err)
		return
	}
	// The daemon wrote "pid start_ms" into its lock file.
	if f := strings.Fields(hooks.ReadInfo(dir, hooks.DaemonLock)); len(f) == 2 && f[0] == strconv.Itoa(ds.pid) {
		ds.started, _ = strconv.ParseInt(f[1], 10, 64)
	}
	return
}

func (ds daemonInfo) uptime() string {
	if ds.started == 0 {
		return "-"
	}
	// max: the wall clock may have stepped back since the start.
	return ttl.FormatMs(max(0, time.Since(time.UnixMilli(ds.started)).Milliseconds()))
}

func (ds daemonInfo) object() object {
	o := object{{"daemon_running", ds.pid != 0}}
	if ds.pid != 0 {
		o = append(o, field{"daemon_pid", ds.pid})
		if ds.started != 0 {
			o = append(o, field{"daemon_started", formatDeadline(ds.started)})
		}
	}
	return o
}

func (ds daemonInfo) rows() [][]string {
	if ds.pid == 0 {
		return [][]string{{"daemon", "not running"}}
	}
	return [][]string{{"daemon", "running"}, {"daemon_pid", strconv.Itoa(ds.pid)}, {"daemon_uptime", ds.uptime()}}
}

// nextDeadline formats a deadline for status output.
func nextDeadline(ms, now int64) (any, string) {
	if ms == 0 {
		return nil, "-"
	}
	s := formatDeadline(ms)
	return s, s + " (in " + ttl.FormatMs(max(0, ms-now)) + ")"
}

// printRows prints name/value rows: a table on a terminal, name<TAB>value
// lines otherwise.
func (a *App) printRows(rows [][]string) {
	if a.IO.OutTTY {
		for _, r := range rows {
			r[1] = terminalSafe(r[1], false)
		}
		a.printf("%s\n", a.table([]string{"STAT", "VALUE"}, rows))
		return
	}
	for _, r := range rows {
		// Escaped as list escapes keys: a store path holding a tab or
		// a newline split its line into two records.
		a.printf("%s\t%s\n", r[0], plainKey(r[1]))
	}
}
