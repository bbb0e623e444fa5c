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
	recs := map[int64]*record{}
	s.View(ctx, func(tx store.Tx) error {
		return tx.Scan(outboxBucket, "", true, func(e store.Entry) error {
			r, err := decodeRecord(e)
			if err != nil {
				return err
			}
			got[r.HookID], recs[r.HookID] = r.Value, r
			return nil
		})
	})
	if len(got) != 2 {
		t.Fatalf("%d events, want 2", len(got))
	}
	if v := got[sealedHook.ID]; bytes.Contains(v, secret) || len(v) != len(secret)+seal.Overhead {
		t.Errorf("hook without --decrypt got %q", v)
	}
	// The outbox is in the store's files: the plaintext a hook added
	// with --decrypt gets is kept there sealed (it was kept plain, as
	// base64 in the record's JSON, which a grep for the value missed),
	// and opened only for the run.
	if v := got[plainHook.ID]; bytes.Contains(v, secret) || !recs[plainHook.ID].Sealed {
		t.Errorf("outbox holds the plaintext for the hook with --decrypt: %q", v)
	}
	o, err := openRecord(ctx, s, 0, recs[plainHook.ID])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(o.Value, secret) || o.Sealed || !recs[plainHook.ID].Sealed {
		t.Errorf("hook with --decrypt got %q", o.Value)
	}
	if p := o.payload(); !bytes.Contains(p, secret) {
		t.Errorf("payload %s", p)
	}
	// A sealed event does not open as the bucket's value (another
	// associated data domain).
	s.View(ctx, func(tx store.Tx) error {
		if _, err := s.Tx(tx).OpenEvent("sec", "k2", recs[plainHook.ID].Value); err == nil {
			t.Error("an event sealed for sec/k opened for sec/k2")
		}
		return nil
	})
}

// TestSealedEventsRekey: an event sealed for a hook added with --decrypt
// still opens after a rekey (ResealEvents seals it under the new data
// key), also from the copy a deliverer loaded before the rekey, and a
// deliverer's write-back of that stale copy keeps the resealed value;
// after rekey --decrypt it is plain.
func TestSealedEventsRekey(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	s := seal.Wrap(store.NewMemory(store.Options{}), seal.StaticKeys{IDs: []age.Identity{id}, Recs: []age.Recipient{id.Recipient()}})
	ctx := context.Background()
	secret := []byte("TOPSECRET-rekeyed")
	err = s.Update(ctx, func(raw store.Tx) error {
		if _, err := s.Tx(raw).EnableEncryption("sec"); err != nil {
			return err
		}
		if _, err := Add(raw, Hook{Events: Set, Key: "*", Argv: []string{"true"}, Enabled: true, Decrypt: true}, nil); err != nil {
			return err
		}
		rec, err := NewRecorder(raw, 0)
		if err != nil {
			return err
		}
		return Wrap(raw, rec).Put(store.Entry{Bucket: "sec", Key: "k", Value: secret})
	})
	if err != nil {
		t.Fatal(err)
	}
	load := func() (uint64, *record) {
		var seq uint64
		var r *record
		s.View(ctx, func(tx store.Tx) error {
			return tx.Scan(outboxBucket, "", true, func(e store.Entry) error {
				seq, _ = parseSeqKey(e.Key)
				r, err = decodeRecord(e)
				return err
			})
		})
		if r == nil {
			t.Fatal("no event")
		}
		return seq, r
	}
	seq, stale := load()
	rekey := func(decrypt bool) {
		t.Helper()
		err := s.Update(ctx, func(raw store.Tx) error {
			st := s.Tx(raw)
			reseal, err := ResealEvents(st, "sec")
			if err != nil {
				return err
			}
			if decrypt {
				_, err = st.DisableEncryption("sec", true)
			} else {
				_, err = st.Rekey("sec")
			}
			if err != nil {
				return err
			}
			return reseal()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	rekey(false)
	if o, err := openRecord(ctx, s, seq, stale); err != nil || !bytes.Equal(o.Value, secret) {
		t.Fatalf("after rekey: %v", err)
	}
	// A retry's write-back of the stale copy keeps the resealed value.
	s.Update(ctx, func(tx store.Tx) error {
		e, _, err := tx.Get(outboxBucket, seqKey(seq))
		next := *stale
		next.Attempts++
		keepValue(e, &next)
		if err == nil {
			err = putRecord(tx, seq, &next)
		}
		return err
	})
	if o, err := openRecord(ctx, s, seq, stale); err != nil || !bytes.Equal(o.Value, secret) {
		t.Fatalf("after a write-back: %v", err)
	}
	rekey(true)
	_, r := load()
	if r.Sealed || !bytes.Equal(r.Value, secret) {
		t.Fatalf("after rekey --decrypt: sealed %v, %q", r.Sealed, r.Value)
	}
	if o, err := openRecord(ctx, s, seq, stale); err != nil || !bytes.Equal(o.Value, secret) {
		t.Fatalf("stale copy after rekey --decrypt: %v", err)
	}
}

// TestSealPlainEvents: events recorded while a bucket was plain hold its
// plaintext; encrypting the bucket seals them (they stayed plain in the
// outbox until delivered), and each still opens, for its run, to the
// bytes recorded, for a hook with --decrypt or without, after a rekey too.
func TestSealPlainEvents(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	s := seal.Wrap(store.NewMemory(store.Options{}), seal.StaticKeys{IDs: []age.Identity{id}, Recs: []age.Recipient{id.Recipient()}})
	ctx := context.Background()
	secret := []byte("TOPSECRET-before")
	err = s.Update(ctx, func(raw store.Tx) error {
		for _, dec := range []bool{false, true} {
			if _, err := Add(raw, Hook{Events: Set, Key: "*", Argv: []string{"true"}, Enabled: true, Decrypt: dec}, nil); err != nil {
				return err
			}
		}
		rec, err := NewRecorder(raw, 0)
		if err != nil {
			return err
		}
		w := Wrap(raw, rec)
		if err := w.Put(store.Entry{Bucket: "sec", Key: "k", Value: secret}); err != nil {
			return err
		}
		// Another bucket's events are not this bucket's to seal.
		return w.Put(store.Entry{Bucket: "other", Key: "k", Value: secret})
	})
	if err != nil {
		t.Fatal(err)
	}
	update := func(fn func(*seal.Tx) error) {
		t.Helper()
		if err := s.Update(ctx, func(raw store.Tx) error { return fn(s.Tx(raw)) }); err != nil {
			t.Fatal(err)
		}
	}
	update(func(st *seal.Tx) error {
		if _, err := st.EnableEncryption("sec"); err != nil {
			return err
		}
		return SealPlainEvents(st, "sec")
	})
	check := func(when string) {
		t.Helper()
		n := 0
		s.View(ctx, func(tx store.Tx) error {
			return tx.Scan(outboxBucket, "", true, func(e store.Entry) error {
				r, err := decodeRecord(e)
				if err != nil {
					return err
				}
				seq, _ := parseSeqKey(e.Key)
				if r.Bucket == "other" {
					if r.Sealed || !bytes.Equal(r.Value, secret) {
						t.Errorf("%s: other bucket's event changed: %q", when, r.Value)
					}
					return nil
				}
				n++
				if bytes.Contains(e.Value, secret) || !r.Sealed {
					t.Errorf("%s: outbox holds the plaintext of hook %d's event", when, r.HookID)
				}
				o, err := openRecord(ctx, s, seq, r)
				if err != nil || !bytes.Equal(o.Value, secret) {
					t.Errorf("%s: hook %d gets %q, %v", when, r.HookID, o.Value, err)
				}
				return nil
			})
		})
		if n != 2 {
			t.Errorf("%s: %d events of sec, want 2", when, n)
		}
	}
	check("encrypted")
	update(func(st *seal.Tx) error {
		reseal, err := ResealEvents(st, "sec")
		if err != nil {
			return err
		}
		if _, err := st.Rekey("sec"); err != nil {
			return err
		}
		return reseal()
	})
	check("rekeyed")
}
