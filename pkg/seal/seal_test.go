package seal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/livedict/livedict/pkg/store"
)

func newKeys(t *testing.T) StaticKeys {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return StaticKeys{IDs: []age.Identity{id}, Recs: []age.Recipient{id.Recipient()}}
}

func open(t *testing.T, url string) store.Store {
	t.Helper()
	s, err := store.Open(url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t *testing.T, s store.Store, bucket, key, value string) {
	t.Helper()
	err := s.Update(context.Background(), func(tx store.Tx) error {
		return tx.Put(store.Entry{Bucket: bucket, Key: key, Value: []byte(value)})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func get(s store.Store, bucket, key string) (string, error) {
	var v string
	err := s.View(context.Background(), func(tx store.Tx) error {
		e, ok, err := tx.Get(bucket, key)
		if err == nil && !ok {
			return errors.New("missing")
		}
		v = string(e.Value)
		return err
	})
	return v, err
}

func enable(t *testing.T, s *Store, bucket string) {
	t.Helper()
	err := s.Update(context.Background(), func(tx store.Tx) error {
		_, err := s.Tx(tx).EnableEncryption(bucket)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRoundTripNoPlaintext writes values to an encrypted bucket of a
// SQLite and a file store and checks that reads give them back and that
// no file of the store holds any of them.
func TestRoundTripNoPlaintext(t *testing.T) {
	for _, kind := range []string{"sqlite", "file"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			url := "sqlite:" + filepath.Join(dir, "s.db")
			if kind == "file" {
				url = "file:" + filepath.Join(dir, "fs")
			}
			raw := open(t, url)
			s := Wrap(raw, newKeys(t))
			put(t, s, "sec", "before", "PLAINTEXT-before-0000")
			enable(t, s, "sec")
			for i := 0; i < 50; i++ {
				put(t, s, "sec", "k"+string(rune('a'+i%26))+strings.Repeat("x", i), "PLAINTEXT-"+strings.Repeat("v", i))
			}
			put(t, s, "plain", "p", "visible-value")
			if v, err := get(s, "sec", "before"); err != nil || v != "PLAINTEXT-before-0000" {
				t.Fatalf("get before = %q, %v", v, err)
			}
			if v, err := get(s, "sec", "kb"+strings.Repeat("x", 1)); err != nil || v != "PLAINTEXT-v" {
				t.Fatalf("get = %q, %v", v, err)
			}
			if v, _ := get(raw, "sec", "before"); strings.Contains(v, "PLAINTEXT") {
				t.Fatalf("raw store holds plaintext %q", v)
			}
			raw.Close()
			found := false
			filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				if err != nil || fi.IsDir() {
					return err
				}
				b, _ := os.ReadFile(p)
				if bytes.Contains(b, []byte("PLAINTEXT")) {
					t.Errorf("%s holds plaintext", p)
				}
				if bytes.Contains(b, []byte("visible-value")) {
					found = true
				}
				return nil
			})
			if !found {
				t.Fatal("the check cannot fail: the plain bucket's value was not found either")
			}
		})
	}
}

func TestMovedCiphertextFails(t *testing.T) {
	s := Wrap(open(t, "memory:"), newKeys(t))
	enable(t, s, "sec")
	put(t, s, "sec", "a", "secret-a")
	var sealed []byte
	s.View(context.Background(), func(tx store.Tx) error {
		e, _, err := s.Tx(tx).Raw().Get("sec", "a")
		sealed = e.Value
		return err
	})
	s.Store.Update(context.Background(), func(tx store.Tx) error {
		return tx.Put(store.Entry{Bucket: "sec", Key: "b", Value: sealed})
	})
	_, err := get(s, "sec", "b")
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Key != "b" || oe.Bucket != "sec" || store.KindOf(err) != store.KindStore {
		t.Fatalf("moved ciphertext: %v", err)
	}
}

func TestOtherIdentityCannotOpen(t *testing.T) {
	raw := open(t, "memory:")
	s := Wrap(raw, newKeys(t))
	enable(t, s, "sec")
	put(t, s, "sec", "a", "secret-a")
	other := Wrap(raw, newKeys(t))
	if _, err := get(other, "sec", "a"); !errors.Is(err, ErrOpen) || !strings.Contains(err.Error(), `"sec"`) {
		t.Fatalf("other identity: %v", err)
	}
}

// TestOtherIdentityRetimes: a host that cannot open an encrypted bucket
// still changes its deadlines (expire, persist), on every local backend,
// and the owner reads the same value afterwards.
func TestOtherIdentityRetimes(t *testing.T) {
	for _, url := range []string{"memory:", "sqlite:" + t.TempDir() + "/s.db", "file:" + t.TempDir() + "/f"} {
		t.Run(url[:strings.Index(url, ":")], func(t *testing.T) {
			raw := open(t, url)
			s := Wrap(raw, newKeys(t))
			enable(t, s, "sec")
			put(t, s, "sec", "a", "secret-a")
			other := Wrap(raw, newKeys(t))
			var deadline int64
			err := other.Update(context.Background(), func(tx store.Tx) error {
				deadline = tx.Now() + 60_000
				if ok, err := store.Expire(tx, "sec", "a", deadline, store.Always); err != nil || !ok {
					return fmt.Errorf("expire: %v %v", ok, err)
				}
				if e, ok, err := store.Stat(tx, "sec", "a"); err != nil || !ok || e.ExpiresAt != deadline || e.Size != int64(len("secret-a")) {
					return fmt.Errorf("stat after expire: %+v %v %v", e, ok, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if v, err := get(s, "sec", "a"); err != nil || v != "secret-a" {
				t.Fatalf("owner after expire: %q %v", v, err)
			}
			err = other.Update(context.Background(), func(tx store.Tx) error {
				if ok, err := store.Persist(tx, "sec", "a"); err != nil || !ok {
					return fmt.Errorf("persist: %v %v", ok, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			err = s.View(context.Background(), func(tx store.Tx) error {
				e, ok, err := tx.Get("sec", "a")
				if err != nil || !ok || string(e.Value) != "secret-a" || e.ExpiresAt != 0 {
					return fmt.Errorf("owner after persist: %+v %v %v", e, ok, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRekeyToNewRecipients adds a second host, rekeys, and checks it
// reads every value; then drops the first host and checks it no longer can.
func TestRekeyToNewRecipients(t *testing.T) {
	raw := open(t, "memory:")
	a, b := newKeys(t), newKeys(t)
	sa := Wrap(raw, a)
	enable(t, sa, "sec")
	for _, k := range []string{"x", "y", "z"} {
		put(t, sa, "sec", k, "v-"+k)
	}
	both := StaticKeys{IDs: a.IDs, Recs: append(append([]age.Recipient{}, a.Recs...), b.Recs...)}
	sab := Wrap(raw, both)
	if err := sab.Update(context.Background(), func(tx store.Tx) error {
		n, err := sab.Tx(tx).Rekey("sec")
		if n != 3 {
			t.Errorf("rekeyed %d", n)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	sb := Wrap(raw, b)
	for _, k := range []string{"x", "y", "z"} {
		if v, err := get(sb, "sec", k); err != nil || v != "v-"+k {
			t.Fatalf("b reads %q, %v", v, err)
		}
	}
	if err := sb.Update(context.Background(), func(tx store.Tx) error {
		_, err := sb.Tx(tx).Rekey("sec")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := get(sa, "sec", "x"); !errors.Is(err, ErrOpen) {
		t.Fatalf("a still reads after being removed: %v", err)
	}
}

func TestDisableRefusedWhileValues(t *testing.T) {
	s := Wrap(open(t, "memory:"), newKeys(t))
	enable(t, s, "sec")
	put(t, s, "sec", "a", "secret-a")
	err := s.Update(context.Background(), func(tx store.Tx) error {
		_, err := s.Tx(tx).DisableEncryption("sec", false)
		return err
	})
	if !errors.Is(err, ErrSealed) || store.KindOf(err) != store.KindPolicy {
		t.Fatalf("disable: %v", err)
	}
	if err := s.Update(context.Background(), func(tx store.Tx) error {
		_, err := s.Tx(tx).DisableEncryption("sec", true)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if v, _ := get(s.Store, "sec", "a"); v != "secret-a" {
		t.Fatalf("after --decrypt the raw value is %q", v)
	}
}

func TestIdentityFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "livedict", "identity.txt")
	if _, err := LoadIdentity(path, false); !errors.Is(err, ErrNoIdentity) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing identity: %v", err)
	}
	// Racing first uses all get the one identity.
	keys := make([]string, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := PublicKey(path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for _, k := range keys {
		if k != keys[0] || !strings.HasPrefix(k, "age1") {
			t.Fatalf("racing first uses made different identities: %q", keys)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity mode %v, %v", fi.Mode(), err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(path, true); !errors.Is(err, store.ErrUntrusted) || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("0644 identity: %v", err)
	}
	link := filepath.Join(dir, "link.txt")
	os.Chmod(path, 0o600)
	os.Symlink(path, link)
	if _, err := LoadIdentity(link, true); !errors.Is(err, store.ErrUntrusted) {
		t.Fatalf("symlinked identity: %v", err)
	}
}

func TestParseRecipients(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	recs, err := ParseRecipients([]byte("# hosts\n\n  " + id.Recipient().String() + "  \n"))
	if err != nil || len(recs) != 1 {
		t.Fatalf("%d recipients, %v", len(recs), err)
	}
	if _, err := ParseRecipients([]byte("# ok\nage1notakey\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad recipient: %v", err)
	}
	// An SSH key (which age itself accepts) or an identity pasted by
	// mistake is named for what it is not; it was "malformed recipient
	// ...: mixed case", which sent users looking for a typo.
	for _, line := range []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHhJ7 me@host", id.String()} {
		_, err := ParseRecipients([]byte(line + "\n"))
		if err == nil || !strings.Contains(err.Error(), "line 1: not an age public key (age1") || strings.Contains(err.Error(), "mixed case") {
			t.Errorf("%.12s...: %v", line, err)
		}
		if strings.Contains(line, "AGE-SECRET") && err != nil && strings.Contains(err.Error(), line) {
			t.Errorf("the error repeats a secret key: %v", err)
		}
	}
	// A byte-order mark (Windows Notepad) and CRLF line ends.
	if recs, err := ParseRecipients([]byte("\ufeff" + id.Recipient().String() + "\r\n")); err != nil || len(recs) != 1 {
		t.Fatalf("with a BOM: %d recipients, %v", len(recs), err)
	}
}

func FuzzOpen(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	good, _ := Seal(key, "b", "k", []byte("value"))
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Open(key, "b", "k", data)
		if err == nil && !bytes.Equal(data, good) {
			// Forgery under an unknown nonce is infeasible; only re-sealed
			// inputs of Seal may open.
			if _, err2 := Open(key, "b", "other", data); err2 == nil {
				t.Fatalf("a value opened for two keys: %q", v)
			}
		}
		if err != nil && !errors.Is(err, ErrOpen) {
			t.Fatalf("error without ErrOpen: %v", err)
		}
	})
}

func FuzzParseRecipients(f *testing.F) {
	id, _ := age.GenerateX25519Identity()
	f.Add([]byte(id.Recipient().String() + "\n# c\n"))
	f.Add([]byte("age1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseRecipients(data)
		if err == nil {
			for _, r := range recs {
				if r == nil {
					t.Fatal("nil recipient")
				}
			}
		}
	})
}

// BenchmarkFirstGet is what encryption adds to a one-shot get: the data
// key's unwrap (one X25519) and opening a 100-byte value, on a memory
// store. Compare with BenchmarkPlainGet.
func BenchmarkFirstGet(b *testing.B) {
	keys := StaticKeys{}
	id, _ := age.GenerateX25519Identity()
	keys.IDs, keys.Recs = []age.Identity{id}, []age.Recipient{id.Recipient()}
	raw, _ := store.Open("memory:", store.Options{})
	s := Wrap(raw, keys)
	s.Update(context.Background(), func(tx store.Tx) error {
		t := s.Tx(tx)
		t.EnableEncryption("sec")
		return t.Put(store.Entry{Bucket: "sec", Key: "k", Value: bytes.Repeat([]byte("v"), 100)})
	})
	for b.Loop() {
		fresh := Wrap(raw, keys) // a new command: nothing cached
		if _, err := get(fresh, "sec", "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlainGet(b *testing.B) {
	raw, _ := store.Open("memory:", store.Options{})
	raw.Update(context.Background(), func(tx store.Tx) error {
		return tx.Put(store.Entry{Bucket: "plain", Key: "k", Value: bytes.Repeat([]byte("v"), 100)})
	})
	for b.Loop() {
		if _, err := get(raw, "plain", "k"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPassphraseIdentity: an identity file encrypted with a passphrase
// (age -p, binary or armored) is refused by name: livedict never prompts.
// It was "unknown identity type", which sent users looking for a typo.
func TestPassphraseIdentity(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r, err := age.NewScryptRecipient("pass phrase")
	if err != nil {
		t.Fatal(err)
	}
	r.SetWorkFactor(10)
	var bin bytes.Buffer
	w, err := age.Encrypt(&bin, r)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, id)
	w.Close()
	var arm bytes.Buffer
	aw := armor.NewWriter(&arm)
	aw.Write(bin.Bytes())
	aw.Close()
	for name, data := range map[string][]byte{"binary": bin.Bytes(), "armored": arm.Bytes()} {
		path := filepath.Join(t.TempDir(), "identity.txt")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadIdentity(path, false)
		if !errors.Is(err, ErrNoIdentity) || !strings.Contains(err.Error(), "passphrase") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
