package cmd

import (
	"fmt"
	"io"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newAppendCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:   "append KEY [VALUE|-]",
		Short: "Add bytes to the end of a value and print its new length",
		Long: `Add VALUE (or stdin, when VALUE is omitted or -) to the end of the key's value
and print the new length in bytes, as Redis's APPEND. A missing key starts
empty (and gets the bucket's default TTL); an existing key keeps its TTL.`,
		Example: `  date +'%s started' | livedict append log
  dmesg | livedict append boot-log`,
		Args:              args(1, 2),
		ValidArgsFunction: completeKeys(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, err := a.target(args[0])
			if err != nil {
				return err
			}
			value, err := a.valueArg(args)
			if err != nil {
				return err
			}
			// The new length is what the change did, so it is printed
			// as incr prints its value: undelivered, the change rolls back.
			return a.updatePrinting(func(tx *hooks.Tx, out io.Writer) error {
				n, err := store.Append(tx, a.Limits(), bucket, args[0], value)
				if err != nil {
					return err
				}
				return a.printLength(out, bucket, args[0], n)
			})
		},
	}
}

func newStrlenCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:   "strlen KEY",
		Short: "Print the length of a value in bytes (exit 1 when missing)",
		Long: `Print the length of the key's value in bytes. Exit 1, printing nothing, when
the key is missing (Redis answers 0; livedict keeps its rule that a missing
key is exit 1, so scripts can tell an empty value from no value).`,
		Example:           `  n=$(livedict strlen page) && [ "$n" -gt 0 ] && livedict get page > page.html`,
		Args:              args(1, 1),
		ValidArgsFunction: completeKeys(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, err := a.target(args[0])
			if err != nil {
				return err
			}
			var e store.Entry
			var ok bool
			if err := a.View(func(tx store.Tx) error {
				e, ok, err = store.Stat(tx, bucket, args[0])
				return err
			}); err != nil {
				return err
			}
			if !ok {
				return errNotFound
			}
			return a.printLength(a.IO.Out, bucket, args[0], int(e.Size))
		},
	}
}

// printLength prints a value's length to w; --json:
// {"bucket","key","length"}.
func (a *App) printLength(w io.Writer, bucket, key string, n int) error {
	if a.JSON {
		return jsonLineTo(w, append(keyFields(bucket, key), field{"length", n}))
	}
	_, err := fmt.Fprintf(w, "%d\n", n)
	return err
}
