package hooks

import (
	"bytes"
	"context"
	"testing"

	"filippo.io/age"

	"github.com/livedict/livedict/pkg/seal"
	"github.com/livedict/livedict/pkg/store"
)

// TestSealedEvents: a write to an encrypted bucket records, for a hook
// added without --decrypt and for watchers, the value encrypted; a hook
// added with --decrypt gets the plaintext.
func TestSealedEvents(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	s := seal.Wrap(store.NewMemory(store.Options{}), seal.StaticKeys{IDs: []age.Identity{id}, Recs: []age.Recipient{id.Recipient()}})
	ctx := context.Background()
	var sealedHook, plainHook Hook
	err = s.Update(ctx, func(tx store.Tx) error {
		if _, err := s.Tx(tx).EnableEncryption("sec"); err != nil {
			return err
		}
		var err error
		if sealedHook, err = Add(tx, Hook{Events: Set, Key: "*", Argv: []string{"true"}, Enabled: true}, nil); err != nil {
			return err
		}
		plainHook, err = Add(tx, Hook{Events: Set, Key: "*", Argv: []string{"true"}, Enabled: true, Decrypt: true}, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("TOPSECRET-value")
	var watched [][]byte
	err = s.Update(ctx, func(raw store.Tx) error {
		rec, err := NewRecorder(raw, 0)
		if err != nil {
			return err
		}
		tx := Wrap(raw, rec)
		tx.watchMax = DefaultMaxEventValue
		if err := tx.Put(store.Entry{Bucket: "sec", Key: "k", Value: secret}); err != nil {
			return err
		}
		watched = tx.Watched
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(watched) != 1 || bytes.Contains(watched[0], secret) {
		t.Fatalf("watch lines %q carry the plaintext", watched)
	}
	got := map[int64][]byte{}
	s.View(ctx, func(tx store.Tx) error {
		return tx.Scan(outboxBucket, "", true, func(e store.Entry) error {
			r, err := decodeRecord(e)
			if err != nil {
				return err
			}
			got[r.HookID] = r.Value
			return nil
		})
	})
	if len(got) != 2 {
		t.Fatalf("%d events, want 2", len(got))
	}
	if v := got[sealedHook.ID]; bytes.Contains(v, secret) || len(v) != len(secret)+seal.Overhead {
		t.Errorf("hook without --decrypt got %q", v)
	}
	if v := got[plainHook.ID]; !bytes.Equal(v, secret) {
		t.Errorf("hook with --decrypt got %q", v)
	}
}
