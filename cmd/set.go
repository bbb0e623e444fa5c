package cmd

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newSetCmd(a *App) *cobra.Command {
	var o struct {
		ttl, at         string
		keepTTL, nx, xx bool
		persist         bool
		get             bool
	}
	c := &cobra.Command{
		Use:   "set KEY [VALUE|-]",
		Short: "Store a value (from the argument, or stdin when omitted or -)",
		Long: `Store a value. Without VALUE, or with VALUE "-", the value is read from stdin
to end of file, every byte kept (a trailing newline included).

As in Redis, set clears any TTL the key had unless --keep-ttl is given; a
bucket's default TTL applies when no TTL is given, unless --persist. Exit 1
(nothing stored) when --nx and the key exists, or --xx and it does not.
With --get the old value is printed, also by --nx --get when the key
exists (exit 1), as in Redis 7.`,
		Example: `  livedict set token "$t" --ttl 55m
  curl -s https://example.com/data | livedict set page --ttl 1h
  livedict set lock "$$" --nx --ttl 30s || echo "someone else holds it"`,
		Args:              args(1, 2),
		ValidArgsFunction: completeKeys(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			if err := exclusive(fs, "ttl", "at", "keep-ttl", "persist"); err != nil {
				return err
			}
			a.changesOnly = o.xx // --xx only replaces: a missing store stays missing (store.NoCreate)
			if err := exclusive(fs, "nx", "xx"); err != nil {
				return err
			}
			key := args[0]
			bucket, err := a.target(key)
			if err != nil {
				return err
			}
			deadline, err := deadlineFlags(fs, o.ttl, o.at)
			if err != nil {
				return err
			}
			value, err := a.valueArg(args)
			if err != nil {
				return err
			}
			if err := a.Limits().CheckValue(len(value)); err != nil {
				return err
			}
			var res store.SetResult
			var now int64
			err = a.updatePrinting(func(tx *hooks.Tx, out io.Writer) error {
				now = tx.Now()
				res, err = store.Set(tx, a.Limits(), store.SetArgs{
					Bucket: bucket, Key: key, Value: value,
					ExpiresAt: deadline.at(now), KeepTTL: o.keepTTL, Persist: o.persist, NX: o.nx, XX: o.xx,
				})
				// Redis 7: --nx --get on an existing key prints the old
				// value though nothing is stored (exit 1, SPEC's one
				// exception besides ttl). Through updatePrinting: an old
				// value that cannot be delivered is not overwritten.
				if err == nil && o.get && res.HadOld && (res.Stored || o.nx) {
					err = a.writeValueTo(out, res.Old, now)
				} else if err == nil && o.get && a.JSON {
					// No old value: --json still gives its one object,
					// the value null, as mget --json does for a miss.
					err = jsonLineTo(out, missingObject(bucket, key))
				}
				return err
			})
			if err != nil {
				return err
			}
			if !res.Stored {
				return errNotFound
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.ttl, "ttl", "", "expire after `D` (1500ms, 90s, 5m, 2h, 1d, 1w, 1h30m; a bare number is seconds)")
	f.StringVar(&o.at, "at", "", "expire at `T` (RFC 3339 or @UNIXSECONDS)")
	f.BoolVar(&o.keepTTL, "keep-ttl", false, "keep the key's current TTL")
	f.BoolVar(&o.persist, "persist", false, "store without a TTL, even in a bucket with a default TTL")
	f.BoolVar(&o.nx, "nx", false, "only store if the key does not exist")
	f.BoolVar(&o.xx, "xx", false, "only store if the key exists")
	f.BoolVar(&o.get, "get", false, "print the old value")
	return c
}

// deadline is a TTL or an absolute time from flags, resolved against the
// transaction's clock so a slow lock wait does not shorten the TTL.
type deadline struct {
	ttlMs int64 // relative, > 0
	atMs  int64 // absolute
}

func (d deadline) at(now int64) int64 {
	if d.ttlMs > 0 {
		return now + d.ttlMs
	}
	return d.atMs
}

func (d deadline) isSet() bool { return d.ttlMs != 0 || d.atMs != 0 }

// deadlineFlags parses --ttl D (which must be positive) or --at T. An
// empty value given explicitly is an error, not "no TTL".
func deadlineFlags(fs *pflag.FlagSet, ttlFlag, atFlag string) (deadline, error) {
	switch {
	case fs.Changed("ttl"):
		d, err := ttl.ParseDuration(ttlFlag)
		if err != nil {
			return deadline{}, usageErr(err, "")
		}
		if d.Milliseconds() <= 0 {
			return deadline{}, usageErr(fmt.Errorf("%w %q: a TTL must be at least 1ms", ttl.ErrDuration, ttlFlag), "to delete a key use 'livedict del KEY'")
		}
		return deadline{ttlMs: d.Milliseconds()}, nil
	case fs.Changed("at"):
		ms, err := parseAt(atFlag)
		return deadline{atMs: ms}, err
	}
	return deadline{}, nil
}

// parseAt reads an absolute deadline: after the Unix epoch (Redis refuses
// EXAT 0, and 0 means "no expiry" here) and not more than ttl.MaxDuration
// ahead (the limit a TTL has). Any other time in the past is kept: it
// deletes the key, as in Redis.
func parseAt(s string) (int64, error) {
	t, err := ttl.ParseTime(s)
	if err != nil {
		hint := ""
		if s != "" && strings.Trim(s, "0123456789") == "" {
			// Redis's EXPIREAT takes bare Unix seconds.
			hint = "Unix seconds start with @: @" + s
		}
		return 0, usageErr(err, hint)
	}
	if t.UnixMilli() <= 0 {
		return 0, usageErr(fmt.Errorf("%w %q: must be after the Unix epoch (1970-01-01T00:00:00Z), as in Redis", ttl.ErrTime, s), "to delete a key use 'livedict del KEY'")
	}
	if time.Until(t) > ttl.MaxDuration {
		return 0, usageErr(fmt.Errorf("%w %q: more than 100 years away", ttl.ErrTime, s), "")
	}
	return t.UnixMilli(), nil
}

// valueArg is the VALUE of `CMD KEY [VALUE|-]`: the argument, or stdin
// when it is omitted or "-".
func (a *App) valueArg(args []string) ([]byte, error) {
	if len(args) == 2 && args[1] != "-" {
		return []byte(args[1]), nil
	}
	return a.readValue()
}

// readValue reads a value from stdin to EOF, refusing more than
// max_value_bytes without reading it all.
func (a *App) readValue() ([]byte, error) {
	if a.IO.InTTY && !a.Quiet {
		fmt.Fprintln(a.IO.Err, "livedict: reading the value from the terminal; end it with Ctrl-D")
	}
	r := a.IO.In
	limit := a.Config.MaxValueBytes
	if limit > 0 {
		r = io.LimitReader(r, limit+1)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, usageErr(fmt.Errorf("reading stdin: %w", err), "")
	}
	if limit > 0 && int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes on stdin, max_value_bytes is %d", store.ErrValueTooLarge, limit, limit)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}
