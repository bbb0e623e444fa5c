package cmd

import (
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
	"github.com/spf13/cobra"
)

// newTTLCmd builds ttl (seconds, rounded as Redis does) and pttl (ms).
func newTTLCmd(a *App, name string) *cobra.Command {
	unit := "seconds, rounded to the nearest second as Redis does"
	if name == "pttl" {
		unit = "milliseconds"
	}
	return &cobra.Command{
		Use:     name + " KEY",
		Example: "  livedict " + name + " session",
		Short:   "Print the remaining time to live in " + unit,
		Long: `Print the remaining time to live in ` + unit + `.
-1 means the key has no TTL. A missing key prints -2 and exits 1, as Redis
answers -2.`,
		Args:              args(1, 1),
		ValidArgsFunction: completeKeys(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, err := a.target(args[0])
			if err != nil {
				return err
			}
			var ms int64
			if err := a.View(func(tx store.Tx) error {
				ms, err = store.RemainingMs(tx, bucket, args[0])
				return err
			}); err != nil {
				return err
			}
			out := ms
			if ms >= 0 && name == "ttl" {
				out = ttl.RemainingSeconds(ms)
			}
			if a.JSON {
				a.jsonLine(append(keyFields(bucket, args[0]), field{name, out}))
			} else {
				a.printf("%d\n", out)
			}
			if ms == store.TTLMissing {
				return errNotFound
			}
			return nil
		},
	}
}
