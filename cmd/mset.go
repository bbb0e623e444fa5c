package cmd

import (
	"fmt"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newMSetCmd(a *App) *cobra.Command {
	var nx, persist bool
	var ttlFlag, atFlag string
	c := &cobra.Command{
		Use:   "mset KEY VALUE [KEY VALUE]... [--ttl D | --at T | --persist]",
		Short: "Store several keys at once, all or nothing",
		Long: `Store every KEY VALUE pair in one transaction: either all are stored or, on
any error, none. As with set, any TTL the keys had is cleared and the bucket's
default TTL applies, unless --ttl or --at gives every key the same deadline,
or --persist stores them without one. A key named twice keeps its last value
(Redis MSET).

--nx stores nothing, and exits 1, when any of the keys exists (Redis MSETNX).`,
		Example: `  livedict mset host db.internal port 5432
  livedict mset --ttl 55m token "$t" token_expiry "$exp"
  livedict mset --nx lock:a "$$" lock:b "$$" || echo "one is taken"`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 || len(args)%2 != 0 {
				return usageErr(fmt.Errorf("mset takes KEY VALUE pairs, got %s", plural(int64(len(args)), "argument")), "livedict mset KEY VALUE [KEY VALUE]...")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			if err := exclusive(fs, "ttl", "at", "persist"); err != nil {
				return err
			}
			deadline, err := deadlineFlags(fs, ttlFlag, atFlag)
			if err != nil {
				return err
			}
			pairs := make([]store.KeyValue, 0, len(args)/2)
			keys := make([]string, 0, len(args)/2)
			for i := 0; i < len(args); i += 2 {
				pairs = append(pairs, store.KeyValue{Key: args[i], Value: []byte(args[i+1])})
				keys = append(keys, args[i])
			}
			bucket, err := a.target(keys...)
			if err != nil {
				return err
			}
			return a.updateOK(func(tx *hooks.Tx) (bool, error) {
				return store.MSet(tx, a.Limits(), bucket, pairs, store.MSetArgs{ExpiresAt: deadline.at(tx.Now()), Persist: persist, NX: nx})
			})
		},
	}
	f := c.Flags()
	f.StringVar(&ttlFlag, "ttl", "", "every key expires after `D` (1500ms, 90s, 5m, 2h, 1d, 1w, 1h30m; a bare number is seconds)")
	f.StringVar(&atFlag, "at", "", "every key expires at `T` (RFC 3339 or @UNIXSECONDS)")
	f.BoolVar(&persist, "persist", false, "store without a TTL, even in a bucket with a default TTL")
	f.BoolVar(&nx, "nx", false, "store nothing when any key exists (exit 1)")
	return c
}
