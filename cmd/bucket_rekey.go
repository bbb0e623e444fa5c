package cmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/seal"
	"github.com/livedict/livedict/pkg/store"
)

func newBucketRekeyCmd(a *App) *cobra.Command {
	var decrypt bool
	c := &cobra.Command{
		Use:   "rekey NAME [--decrypt]",
		Short: "Re-encrypt an encrypted bucket to the current recipients",
		Long: `Give encrypted bucket NAME a new data key, wrapped to this host's identity and
the recipients_file's keys as they are now, and re-encrypt every value with it,
in one transaction: all or nothing. Run it after removing a host from
recipients_file so that host can no longer read new or old values from the
store (it may have kept copies of what it read before).

With --decrypt, decrypt every value and turn encryption off for NAME.`,
		Example:           "  livedict bucket rekey secrets\n  livedict bucket rekey secrets --decrypt",
		Args:              args(1, 1),
		ValidArgsFunction: completeBuckets(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.changesOnly = true // a missing store stays missing (store.NoCreate)
			name := args[0]
			if err := store.ValidateBucket(name); err != nil {
				return usageErr(err, "")
			}
			ss, err := a.sealed()
			if err != nil {
				return err
			}
			n := 0
			err = a.Update(func(tx *hooks.Tx) error {
				// Expired values reaped below go zeroed too.
				if err := ss.Tx(tx.Tx).EraseFreed(); err != nil {
					return err
				}
				// Expired values still stored would stay sealed under
				// the old key (or, after --decrypt, be handed to expire
				// hooks as ciphertext): reap them all first, recording
				// their expire events while the old key still opens them.
				if err := reapAll(tx); err != nil {
					return err
				}
				t := ss.Tx(tx.Tx)
				// Events waiting for hooks added with --decrypt hold the
				// value sealed under the data key this changes: opened
				// now, written back under the new one (or plain) after.
				resealEvents := func() error { return nil }
				if enc, err := t.Encrypted(name); err != nil {
					return err
				} else if enc {
					if resealEvents, err = hooks.ResealEvents(t, name); err != nil {
						return err
					}
				}
				if decrypt {
					c, err := t.Raw().Count(name)
					n = int(c)
					if err != nil {
						return err
					}
					ok, err := t.DisableEncryption(name, true)
					if err == nil && !ok {
						return usageErr(fmt.Errorf("bucket %q is not encrypted", name), "")
					}
					if err != nil {
						return err
					}
					return resealEvents()
				}
				if n, err = t.Rekey(name); err != nil {
					return err
				}
				return resealEvents()
			})
			if err != nil {
				if errors.Is(err, store.ErrInvalidBucket) {
					return usageErr(err, "")
				}
				return storeErr(err)
			}
			if !decrypt && n > 0 {
				a.compactAfterSealing(ss)
			}
			a.printCount(n)
			return nil
		},
	}
	c.Flags().BoolVar(&decrypt, "decrypt", false, "decrypt every value and turn encryption off")
	return c
}

// compactAfterSealing rewrites the store's file when its backend keeps
// old bytes where no erasing reaches (SQLite, see store.Compacter): the
// values just sealed, or sealed under the old key, would otherwise stay
// readable there. The sealing is committed: a compaction that fails is a
// warning saying how to do it by hand, not the command's failure.
func (a *App) compactAfterSealing(s store.Store) {
	did, err := store.Compact(context.Background(), s)
	if did && err != nil {
		info, _ := store.Locate(s)
		a.warn(fmt.Sprintf("the values are sealed, but copies of the old ones may remain in the store file's unused space: compacting it failed (%v); 'sqlite3 %s VACUUM' removes them", err, shellQuote(info.Location)))
	}
}

// sealed returns the open store's sealing layer.
func (a *App) sealed() (*seal.Store, error) {
	s, err := a.Store()
	if err != nil {
		return nil, err
	}
	return s.(*seal.Store), nil
}
