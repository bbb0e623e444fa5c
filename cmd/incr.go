package cmd

import (
	"fmt"
	"io"
	"strconv"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

// newIncrCmd builds incr and decr.
func newIncrCmd(a *App, name string) *cobra.Command {
	verb := "Add N (default 1) to"
	example := "  livedict incr hits\n  livedict incr quota 10 -b api"
	if name == "decr" {
		verb = "Subtract N (default 1) from"
		example = "  livedict decr stock\n  livedict decr quota 10 -b api"
	}
	return &cobra.Command{
		Use:   name + " KEY [N]",
		Short: verb + " an integer value and print the result",
		Long: verb + ` the integer stored at KEY, atomically,
and print the new value. A missing key counts as 0; the key's TTL is kept.
A value that is not a 64-bit decimal integer, or a result that would
overflow, is an error (exit 2). A negative N works as in redis-cli:
livedict ` + name + ` KEY -5.`,
		Example:           example,
		Args:              args(1, 2),
		ValidArgsFunction: completeKeys(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, err := a.target(args[0])
			if err != nil {
				return err
			}
			n := int64(1)
			if len(args) == 2 {
				if n, err = store.ParseRedisInt([]byte(args[1])); err != nil {
					return usageErr(err, "")
				}
			}
			if name == "decr" {
				if n == -n && n != 0 { // math.MinInt64 cannot be negated
					return usageErr(store.ErrOverflow, "")
				}
				n = -n
			}
			return a.updatePrinting(func(tx *hooks.Tx, out io.Writer) error {
				v, err := store.IncrBy(tx, a.Limits(), bucket, args[0], n)
				if err != nil {
					return err
				}
				return a.printResult(out, bucket, args[0], v, strconv.FormatInt(v, 10))
			})
		},
	}
}

func newIncrByFloatCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:     "incrbyfloat KEY F",
		Example: "  livedict incrbyfloat load 0.25\n  livedict incrbyfloat balance -- -1.5",
		Short:   "Add a float to a numeric value and print the result",
		Long: `Add F to the number stored at KEY, atomically, and print the new value (no
exponent, no trailing zeros, as Redis writes it). A missing key counts as 0;
the TTL is kept.`,
		Args:              args(2, 2),
		ValidArgsFunction: completeKeys(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, err := a.target(args[0])
			if err != nil {
				return err
			}
			f, err := store.ParseRedisFloat([]byte(args[1]))
			if err != nil {
				return usageErr(err, "")
			}
			return a.updatePrinting(func(tx *hooks.Tx, out io.Writer) error {
				v, err := store.IncrByFloat(tx, a.Limits(), bucket, args[0], f)
				if err != nil {
					return err
				}
				return a.printResult(out, bucket, args[0], v, v)
			})
		},
	}
}

// printResult prints an arithmetic result to out, through updatePrinting:
// if the new value cannot be delivered (a full disk, a closed pipe), the
// change is rolled back rather than made blind.
func (a *App) printResult(out io.Writer, bucket, key string, jsonValue any, text string) error {
	if a.JSON {
		return jsonLineTo(out, append(keyFields(bucket, key), field{"value", jsonValue}))
	}
	_, err := fmt.Fprintf(out, "%s\n", text)
	return err
}
