package cmd

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/ttl"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newDaemonCmd(a *App) *cobra.Command {
	var o struct {
		once      bool
		duration  string
		logFormat string
	}
	c := &cobra.Command{
		Use:   "daemon [--once | --duration D]",
		Short: "Expire keys on time and deliver hook events (one per store)",
		Long: `Run in the foreground: delete keys at their deadline, and deliver hook events
(at most hook_concurrency hooks at once, default 4). It keeps the earliest
deadlines in memory, sleeps until the next one, and hears about keys set by
other livedict commands at once, without polling.

One daemon per store: a second one exits 0 at once, saying which pid holds
the store, so cron may start it as often as it likes (cron's PATH is
/usr/bin:/bin, so name livedict by its path; every run logs on stderr, so
send that to a file, not to cron's mail):

  * * * * *    $HOME/.local/bin/livedict daemon --once 2>>~/.livedict-daemon.log
  */10 * * * * $HOME/.local/bin/livedict daemon --duration 10m 2>>~/.livedict-daemon.log

--once reaps everything due, delivers the events waiting (and the retries
that are due), and exits. --duration D runs for D, then exits cleanly.
SIGTERM or SIGINT: start nothing new, let running hooks finish (within their
timeouts), exit 0; a second one (a second or more after the first; one
sooner is taken as the same stop, as timeout(1) sends it twice) stops it
at once (exit 130), killing the running hooks, whose events run again
later. SIGHUP: reload the configuration. Logs go to stderr, as text or
(--log-format json) one JSON object per line.`,
		Example: "  livedict daemon &\n  livedict daemon --once        # from cron: reap and deliver, then exit",
		Args:    args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.once && cmd.Flags().Changed("duration") {
				return usageErr(errors.New("--once and --duration cannot be used together"), "")
			}
			var dur time.Duration
			if cmd.Flags().Changed("duration") {
				d, err := ttl.ParseDuration(o.duration)
				if err != nil {
					return usageErr(err, "")
				}
				if d <= 0 {
					return usageErr(fmt.Errorf("--duration %q: must be more than 0", o.duration), "")
				}
				dur = d
			}
			if o.logFormat != "text" && o.logFormat != "json" {
				return usageErr(fmt.Errorf("--log-format %q: must be text or json", o.logFormat), "")
			}
			return a.runDaemon(cmd.Context(), cmd.Flags(), newLogger(a, o.logFormat), o.once, dur)
		},
	}
	c.Flags().BoolVar(&o.once, "once", false, "reap what is due, deliver waiting events, and exit")
	c.Flags().StringVar(&o.duration, "duration", "", "run for `D`, then exit")
	c.Flags().StringVar(&o.logFormat, "log-format", "text", "log `FORMAT` on stderr: text or json")
	c.AddCommand(newDaemonStatusCmd(a))
	return c
}

func newLogger(a *App, format string) *slog.Logger {
	if format == "json" {
		// slog writes invalid UTF-8 as U+FFFD, so a key (or the
		// store's path) that is not UTF-8 could not be told from others
		// in the log: it becomes key_b64 (store_b64), as in every --json
		// output. And slog leaves C1 controls and bidi overrides raw,
		// where a terminal acts on them.
		opts := &slog.HandlerOptions{ReplaceAttr: func(groups []string, at slog.Attr) slog.Attr {
			if len(groups) == 0 && (at.Key == "key" || at.Key == "store") && at.Value.Kind() == slog.KindString && !utf8.ValidString(at.Value.String()) {
				return slog.String(at.Key+"_b64", base64.StdEncoding.EncodeToString([]byte(at.Value.String())))
			}
			return at
		}}
		return slog.New(slog.NewJSONHandler(jsonSafeWriter{a.IO.Err}, opts))
	}
	return slog.New(slog.NewTextHandler(a.IO.Err, nil))
}

// jsonSafeWriter applies jsonSafe to each JSON log line (slog writes a
// record in one Write).
type jsonSafeWriter struct{ w io.Writer }

func (j jsonSafeWriter) Write(p []byte) (int, error) {
	if _, err := j.w.Write(jsonSafe(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// repeatedStop is how soon after the first SIGTERM or SIGINT another one
// counts as the same request delivered twice (timeout(1), or a supervisor
// that signals both the pid and its process group) rather than a second
// "stop now". A person who reads "stopping" and presses ^C again takes
// longer; a third signal after it stops the daemon at once anyway.
const repeatedStop = time.Second

// runDaemon runs the store's daemon (see hooks.Daemon) until a signal or
// the end of dur (0: no end). It turns signals into the daemon's stop and
// reload: SIGTERM and SIGINT stop it, SIGHUP reloads the configuration
// named by flags into the daemon's own settings.
func (a *App) runDaemon(parent context.Context, flags *pflag.FlagSet, log *slog.Logger, once bool, dur time.Duration) error {
	s, err := a.Store()
	if err != nil {
		return err
	}
	d := hooks.NewDaemon(s, hookSettings(a.Config))
	d.Clock, d.Log, d.Once, d.NoHooks = a.Clock, log, once, a.NoHooks
	if !once {
		// --once leaves what is not due yet to the next run, as cron
		// expects; a daemon that stops hands its waiting events over.
		d.Spawn = a.spawnDispatcher
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	if dur > 0 {
		ctx, cancel = context.WithTimeout(ctx, dur)
		defer cancel()
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP)
	if !signal.Ignored(syscall.SIGINT) {
		// Started with SIGINT ignored ('livedict daemon &' in a
		// script), it stays so, as README says of every command: the
		// ^C meant for the script's foreground must not stop it.
		signal.Notify(sigs, syscall.SIGINT)
	}
	defer signal.Stop(sigs)
	go func() {
		var stopAt time.Time // when the first SIGTERM or SIGINT came
		for sig := range sigs {
			now := time.Now()
			switch {
			case sig == syscall.SIGHUP && stopAt.IsZero():
				if cfg, ok := a.reloadConfig(flags, log); ok {
					d.Reload(hookSettings(cfg))
				}
			case sig == syscall.SIGHUP:
			case stopAt.IsZero():
				stopAt = now
				cancel()
				log.Info("stopping", "signal", sig.String())
			case now.Sub(stopAt) < repeatedStop:
				// The same stop delivered twice, not a second one:
				// timeout(1) signals its child and then its whole
				// process group, so 'timeout 10m livedict daemon'
				// sent two SIGTERMs microseconds apart, and the
				// daemon exited 130 killing the hooks it had just
				// promised to let finish.
				log.Info("stop signal repeated at once: taken as the same stop (send another to stop now)", "signal", sig.String())
			default:
				// A second SIGTERM or SIGINT while running hooks
				// finish (each may take its whole timeout, up to an
				// hour): stop now, as a second ^C does elsewhere. The
				// hooks die with the daemon (see "The sandbox"); their
				// runs are not logged, so their events stay in the
				// outbox and run again: at least once, as after kill -9.
				log.Warn("stopping now: running hooks killed, their events run again later", "signal", sig.String())
				os.Exit(ExitInterrupted)
			}
		}
	}()
	var running *hooks.RunningError
	if err := d.Run(ctx); errors.As(err, &running) {
		a.warnRunning(running)
		return nil
	} else if err != nil {
		return storeErr(err)
	}
	return nil
}

// warnRunning says which daemon holds the store: not an error, since cron
// may start one as often as it likes.
func (a *App) warnRunning(e *hooks.RunningError) {
	if !a.Quiet {
		// Escaped as every message is: the path may hold anything.
		fmt.Fprintf(a.IO.Err, "livedict: %s\n", terminalSafe(oneLine(e.Error()), true))
	}
}

// reloadConfig reads the configuration again for the daemon. The store
// cannot change; a.Config stays as it was (the delivery loop never reads
// it).
func (a *App) reloadConfig(flags *pflag.FlagSet, log *slog.Logger) (*Config, bool) {
	cfg, err := loadConfig(flags)
	if err != nil {
		log.Error("configuration not reloaded", "error", oneLine(err.Error()))
		return nil, false
	}
	if cfg.Store != a.Config.Store {
		log.Warn("the store cannot change on reload; restart the daemon to use it", "store", cfg.Store)
		cfg.Store = a.Config.Store
	}
	log.Info("configuration reloaded", "file", cfg.File)
	return cfg, true
}
