package cmd

import (
	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
	"github.com/spf13/cobra"
)

// newExpireCmd builds expire (relative) and expireat (absolute).
func newExpireCmd(a *App, name string) *cobra.Command {
	var nx, xx, gt, lt bool
	use, short := name+" KEY D", "Set a key's TTL (D ≤ 0 deletes the key)"
	if name == "expireat" {
		use, short = name+" KEY T", "Set a key's deadline (RFC 3339 or @UNIXSECONDS; past deletes the key)"
	}
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.

Conditions, as in Redis: --nx only when the key has no TTL, --xx only when it
has one, --gt only when the new deadline is later, --lt only when it is
earlier (a key without a TTL counts as never expiring). Exit 1 when the key
is missing or the condition is not met.`,
		Example:           "  livedict expire session 30m\n  livedict expireat report 2030-12-31T23:59:59Z\n  livedict expire cache -1        # negative: delete now",
		Args:              args(2, 2),
		ValidArgsFunction: completeKeys(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.changesOnly = true // a missing store stays missing (store.NoCreate)
			// Redis 7: NX excludes the others, GT excludes LT; XX goes
			// with GT or LT ("has a TTL, and the new one is later").
			for _, pair := range [][2]string{{"nx", "xx"}, {"nx", "gt"}, {"nx", "lt"}, {"gt", "lt"}} {
				if err := exclusive(cmd.Flags(), pair[0], pair[1]); err != nil {
					return err
				}
			}
			bucket, err := a.target(args[0])
			if err != nil {
				return err
			}
			var d deadline
			if name == "expire" {
				dur, err := ttl.ParseDuration(args[1])
				if err != nil {
					return usageErr(err, "")
				}
				if d.ttlMs = dur.Milliseconds(); d.ttlMs <= 0 {
					d = deadline{atMs: 1} // in the past: delete
				}
			} else if d.atMs, err = parseAt(args[1]); err != nil {
				return err
			}
			cond := store.Always
			switch {
			case nx:
				cond = store.IfNoTTL
			case xx && gt:
				cond = store.IfHasTTLGreater
			case xx && lt:
				cond = store.IfHasTTLLess
			case xx:
				cond = store.IfHasTTL
			case gt:
				cond = store.IfGreater
			case lt:
				cond = store.IfLess
			}
			return a.updateOK(func(tx *hooks.Tx) (bool, error) {
				tx.TTLOnly = true // a new deadline is not a set event
				return store.Expire(tx, bucket, args[0], d.at(tx.Now()), cond)
			})
		},
	}
	f := c.Flags()
	f.BoolVar(&nx, "nx", false, "only when the key has no TTL")
	f.BoolVar(&xx, "xx", false, "only when the key has a TTL")
	f.BoolVar(&gt, "gt", false, "only when the new deadline is later")
	f.BoolVar(&lt, "lt", false, "only when the new deadline is earlier")
	return c
}
