package store_test

import (
	"context"
	"testing"

	"filippo.io/age"

	"github.com/livedict/livedict/pkg/seal"
	"github.com/livedict/livedict/pkg/store"
)

// The conformance suite runs on encrypted buckets too (see SealWrap).
func init() {
	store.SealWrap = func(t *testing.T, s store.Store) store.Store {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		ss := seal.Wrap(s, seal.StaticKeys{IDs: []age.Identity{id}, Recs: []age.Recipient{id.Recipient()}})
		err = ss.Update(context.Background(), func(tx store.Tx) error {
			for _, b := range []string{"main", "a", "b", "b1", "b2", "c", "capped", "other", "big", "empty", "x"} {
				if _, err := ss.Tx(tx).EnableEncryption(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return ss
	}
}
