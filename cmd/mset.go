package cmd

import (
	"fmt"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newMSetCmd(a *App) *cobra.Command {
	var nx bool
	c := &cobra.Command{
		Use:   "mset KEY VALUE [KEY VALUE]...",
		Short: "Store several keys at once, all or nothing",
		Long: `Store every KEY VALUE pair in one transaction: either all are stored or, on
any error, none. As with set, any TTL the keys had is cleared and the bucket's
default TTL applies. A key named twice keeps its last value (Redis MSET).

--nx stores nothing, and exits 1, when any of the keys exists (Redis MSETNX).`,
		Example: `  livedict mset host db.internal port 5432
  livedict mset --nx lock:a "$$" lock:b "$$" || echo "one is taken"`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 || len(args)%2 != 0 {
				return usageErr(fmt.Errorf("mset takes KEY VALUE pairs, got %s", plural(int64(len(args)), "argument")), "livedict mset KEY VALUE [KEY VALUE]...")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
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
				return store.MSet(tx, a.Limits(), bucket, pairs, nx)
			})
		},
	}
	c.Flags().BoolVar(&nx, "nx", false, "store nothing when any key exists (exit 1)")
	return c
}
