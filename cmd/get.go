package cmd

import (
	"errors"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/spf13/cobra"
)

func newGetCmd(a *App) *cobra.Command {
	var def string
	c := &cobra.Command{
		Use:   "get KEY",
		Short: "Print a value (exit 1 when missing)",
		Long: `Print the value's bytes exactly. On a terminal a newline is added when the value
does not end in one, control characters are escaped, and binary values are
refused (exit 2): redirect to a file or pipe instead.

Exit 1, printing nothing, when the key is missing or expired, unless --default
is given.`,
		Example: `  token=$(livedict get token) || token=$(refresh-token)
  livedict get config --default '{}'`,
		Args:              args(1, 1),
		ValidArgsFunction: completeKeys(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, err := a.target(args[0])
			if err != nil {
				return err
			}
			err = a.printLive(bucket, args[0])
			if errors.Is(err, errNotFound) && cmd.Flags().Changed("default") {
				if a.JSON {
					// The key is still missing: ttl_ms says so
					// (-2, as mget's), not -1 (no TTL).
					o := bytesField(keyFields(bucket, args[0]), "value", []byte(def))
					return a.jsonLine(append(o, field{"ttl_ms", int64(-2)}, field{"expires_at", nil}))
				}
				return a.writeValue(store.Entry{Bucket: bucket, Key: args[0], Value: []byte(def)}, 0)
			}
			return err
		},
	}
	c.Flags().StringVar(&def, "default", "", "print `V` and exit 0 when the key is missing")
	return c
}

// printLive prints a live value, or returns errNotFound.
func (a *App) printLive(bucket, key string) error {
	var e store.Entry
	var ok, hooked bool
	var now int64
	err := a.View(func(tx store.Tx) error {
		var err error
		now = tx.Now()
		if e, ok, err = tx.Get(bucket, key); err != nil || !ok {
			return err
		}
		hooked, err = a.session.WantsGet(tx, bucket, key)
		return err
	})
	if err != nil {
		return err
	}
	if !ok {
		return errNotFound
	}
	if hooked {
		// A hook wants this read: read again in a write transaction that
		// records the event, so the value printed is the one recorded.
		err = a.recordRead(func(tx *hooks.Tx) error {
			now = tx.Now()
			if e, ok, err = tx.Get(bucket, key); err != nil || !ok {
				return err
			}
			// A read refused on a terminal shows nothing: no event,
			// as mget, getdel and getex record none then.
			if err := a.checkPrintable(e.Value); err != nil {
				return err
			}
			return tx.RecordGet(e)
		})
		if err != nil {
			return err
		}
		if !ok {
			return errNotFound
		}
	}
	return a.writeValue(e, now)
}
