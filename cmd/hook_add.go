package cmd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/sandbox"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
	"github.com/spf13/cobra"
)

// maxHookTimeout bounds --timeout: a hook is a reaction to an event, not a
// service, and the daemon waits for running hooks when it stops.
const maxHookTimeout = time.Hour

func newHookAddCmd(a *App) *cobra.Command {
	var o struct {
		on, key, timeout, name, run string
		batchWait                   string
		env, write                  []string
		noNetwork, decrypt          bool
		retries, batch              int
	}
	c := &cobra.Command{
		Use:   "add --on EVENTS [flags] -- COMMAND [ARGS...]",
		Short: "Add a hook and print its id",
		Long: `Add a hook: run COMMAND when an event in EVENTS (a comma list of set, get,
delete, expire, or all) happens to a key matching --key (a glob as in
'keys'; default *) in the bucket given with -b/--bucket (default: every
bucket).

The command is given after -- as separate words, or with --run as one line
split the way a shell splits words (quotes and backslashes work; it is never
passed to a shell, so $VARS, globs, pipes and redirections are not
expanded; use --run 'sh -c "..."' to get a shell). It must exist and be
executable now; a bare name is looked up on PATH and stored as its full
path, since hooks run with a fixed PATH.

The hook reads the event as one JSON object on stdin and runs in a sandbox:
a clean environment (add variables with --env NAME), a private work dir as
HOME and TMPDIR, a read-only filesystem where Landlock works (add writable
folders with --write DIR), resource limits, and --timeout (default 5s).

Without --no-network a hook can use the network as you can: TCP and UDP
(loopback included), netlink, and Unix sockets by path (a local database or
daemon socket, /dev/log); abstract Unix sockets too, unless Landlock (ABI 6
or later) confines them to the sandbox. --no-network blocks all of those:
the hook gets its own network namespace (no interface but a loopback that
is down, so no TCP, UDP, netlink or abstract Unix socket outside it) and
seccomp denies socket(2), so no socket file can be connected to either. It
does not block socketpair(2) stream pairs, pipes, or files the hook may
read or write. A hook with --no-network is not run where the kernel cannot
give both; see 'livedict hook sandbox --no-network'.

With --batch N one run gets up to N events, as JSON Lines on stdin (one
object per line, oldest first) with LIVEDICT_EVENTS set to the count; at
most one event per key, so a key's events still arrive in order. A batch
starts at once while fewer of the hook's runs are going than half of
hook_concurrency (fewer than 2 by default), otherwise when it is full or
its oldest event has waited --batch-wait (default 100ms). A failed run is
retried as a batch; the log has one entry per run.`,
		Example: `  livedict hook add --on expire --key 'session:*' -- logger -t livedict "session expired"
  livedict hook add --on set -b config --run 'systemctl reload myapp'
  livedict hook add --on set,delete --key 'cache:*' --write /var/cache/app --no-network -- /usr/local/bin/sync-cache`,
		Args: args(0, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			if !fs.Changed("on") {
				return usageErr(errors.New("--on EVENTS is required"), "e.g. --on set,delete or --on all")
			}
			events, err := hooks.ParseEvents(o.on)
			if err != nil {
				return usageErr(err, "")
			}
			if o.key == "" {
				return usageErr(errors.New("--key: empty glob"), "to match every key, leave --key out or give --key '*'")
			}
			argv := args
			switch {
			case fs.Changed("run") && len(args) > 0:
				return usageErr(errors.New("give the command either after -- or with --run, not both"), "")
			case fs.Changed("run"):
				if argv, err = splitRun(o.run); err != nil {
					return err
				}
			}
			if len(argv) == 0 || argv[0] == "" {
				return usageErr(errors.New("no hook command"), "give it after --: livedict hook add --on set -- COMMAND [ARGS...]")
			}
			if argv[0], err = resolveCommand(argv[0]); err != nil {
				return usageErr(err, "")
			}
			if err := sandbox.CheckCommand(argv[0]); err != nil {
				// Delivery would refuse every run: say so now (exit 4).
				return store.WithKind(store.KindPolicy, fmt.Errorf("hook command %s refused: %w", argv[0], err))
			}
			h := hooks.Hook{Name: o.name, Events: events, Key: o.key, Argv: argv, NoNetwork: o.noNetwork, Decrypt: o.decrypt}
			if cmd.Flags().Changed("bucket") {
				if h.Bucket, err = a.Bucket(); err != nil {
					return err
				}
			}
			if fs.Changed("timeout") {
				d, err := ttl.ParseDuration(o.timeout)
				if err != nil {
					return usageErr(err, "")
				}
				if d <= 0 || d > maxHookTimeout {
					return usageErr(fmt.Errorf("--timeout %q: must be more than 0 and at most %s", o.timeout, ttl.FormatDuration(maxHookTimeout.Milliseconds())), "")
				}
				h.TimeoutMs = d.Milliseconds()
			}
			if fs.Changed("batch") {
				if o.batch < 1 || o.batch > hooks.MaxBatch {
					return usageErr(fmt.Errorf("--batch %d: must be 1 to %d", o.batch, hooks.MaxBatch), "")
				}
				h.Batch = o.batch
			}
			if fs.Changed("batch-wait") {
				if !fs.Changed("batch") {
					return usageErr(errors.New("--batch-wait needs --batch N"), "")
				}
				d, err := ttl.ParseDuration(o.batchWait)
				if err != nil {
					return usageErr(fmt.Errorf("--batch-wait: %w", err), "")
				}
				if d <= 0 || d > maxHookTimeout {
					return usageErr(fmt.Errorf("--batch-wait %q: must be more than 0 and at most %s", o.batchWait, ttl.FormatDuration(maxHookTimeout.Milliseconds())), "")
				}
				h.BatchWaitMs = max(1, d.Milliseconds())
			}
			if fs.Changed("retries") {
				if o.retries < 0 || o.retries > 100 {
					return usageErr(fmt.Errorf("--retries %d: must be 0 to 100", o.retries), "")
				}
				h.Retries = &o.retries
			}
			for _, name := range o.env {
				if !isEnvName(name) {
					return usageErr(fmt.Errorf("--env %q: not a variable name", name), "give the name only; the value is read from the environment when the hook runs")
				}
				if hooks.EventVar(name) {
					return usageErr(fmt.Errorf("--env %s: livedict sets it for each run, to describe the event", name), "")
				}
				if name == "HOME" || name == "TMPDIR" {
					// The sandbox sets both to the hook's private work
					// dir whatever --env says: the name was accepted
					// and then silently had no effect.
					return usageErr(fmt.Errorf("--env %s: a hook's HOME and TMPDIR are its private work dir", name),
						"pass the folder under another name (--env NAME), and --write it if the hook writes there")
				}
			}
			h.Env = o.env
			for _, dir := range o.write {
				abs, err := writableDir(dir)
				if err != nil {
					return usageErr(err, "")
				}
				h.Write = append(h.Write, abs)
			}
			_, info, err := a.StoreLocation()
			if err != nil {
				return err
			}
			if err := hooks.CheckSafe(info); err != nil {
				return store.WithKind(store.KindPolicy, err)
			}
			s, err := a.Store()
			if err != nil {
				return err
			}
			key, err := a.hookKey(s)
			if err != nil {
				return err
			}
			err = a.updateHooks(func(tx store.Tx) error {
				h, err = hooks.Add(tx, h, key)
				return err
			})
			if err != nil {
				return err
			}
			if a.JSON {
				return a.jsonLine(hookObject(h))
			}
			a.printf("%d\n", h.ID)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.on, "on", "", "`EVENTS` that run the hook: a comma list of set, get, delete, expire, or all")
	_ = c.RegisterFlagCompletionFunc("on", completeEvents)
	f.StringVar(&o.key, "key", "*", "run only for keys matching `GLOB`")
	f.StringVar(&o.timeout, "timeout", "5s", "stop the hook after `D` (SIGTERM, then SIGKILL)")
	f.StringArrayVar(&o.env, "env", nil, "pass the environment variable `NAME` through (repeatable)")
	f.StringArrayVar(&o.write, "write", nil, "let the hook write in `DIR` (repeatable)")
	f.BoolVar(&o.decrypt, "decrypt", false, "give the hook the plaintext of encrypted buckets' values (events carry them encrypted otherwise)")
	f.BoolVar(&o.noNetwork, "no-network", false, "no TCP, UDP, netlink or Unix sockets, by path or abstract name (refused where it cannot be had)")
	f.StringVar(&o.name, "name", "", "the hook's name `N`, shown in lists and logs")
	f.StringVar(&o.run, "run", "", "the command as one `LINE`, split like a shell splits words")
	f.IntVar(&o.retries, "retries", 0, "`N` retries after a failed run (default: the retries setting, 3)")
	f.IntVar(&o.batch, "batch", 0, "give one run up to `N` events, as JSON Lines")
	f.StringVar(&o.batchWait, "batch-wait", "100ms", "with --batch: a partial batch waits up to `D` to fill while the hook runs")
	return c
}

// isEnvName reports whether name is a portable environment variable name:
// [A-Za-z_][A-Za-z0-9_]*. (A loop, not a regexp: a package-level regexp is
// compiled at every livedict start, hook add or not.)
func isEnvName(name string) bool {
	for i, c := range []byte(name) {
		if c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return name != ""
}

// resolveCommand checks that the hook command exists and is executable, and
// returns its absolute path: hooks run with a fixed PATH and another
// working directory, so what was checked is what runs.
func resolveCommand(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			err = ee.Err
		}
		return "", fmt.Errorf("hook command %q: %v", name, err)
	}
	return filepath.Abs(p)
}

func writableDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("--write %s: %w", dir, unwrapPathErr(err))
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("--write %s: not a directory", dir)
	}
	return abs, nil
}

// hookObject is a hook as --json shows it.
func hookObject(h hooks.Hook) object {
	o := object{{"id", h.ID}, {"name", h.Name}, {"events", h.Events.String()}, {"bucket", h.Bucket},
		{"key", h.Key}, {"argv", h.Argv}, {"enabled", h.Enabled}, {"timeout_ms", h.TimeoutMs},
		{"env", nonNil(h.Env)}, {"write", nonNil(h.Write)}, {"no_network", h.NoNetwork}}
	if h.Retries != nil {
		o = append(o, field{"retries", *h.Retries})
	}
	if h.Decrypt {
		o = append(o, field{"decrypt", true})
	}
	if h.Batch > 0 {
		o = append(o, field{"batch", h.Batch}, field{"batch_wait_ms", h.BatchWait().Milliseconds()})
	}
	return append(o, field{"created", formatDeadline(h.Created)})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// hookTimeout shows a hook's timeout ("5s", "1.5s").
func hookTimeout(h hooks.Hook) string {
	if h.TimeoutMs == 0 {
		return sandbox.DefaultTimeout.String()
	}
	return h.Timeout().String()
}
