// Package seal encrypts the values of chosen buckets at rest (SPEC
// "Encryption at rest").
//
// Each encrypted bucket has its own random 32-byte data key, wrapped once
// with age (X25519) to every recipient and kept in the internal bucket
// !seal under the bucket's name. Values are sealed with
// XChaCha20-Poly1305 under the data key, with the bucket and key as
// associated data, so a ciphertext copied to another key or bucket does
// not open. Unwrapping costs one X25519 operation per recipient stanza;
// the data key is cached while the wrapped blob in the store stays the
// same, so a command pays it once, whatever it reads.
//
// Wrap returns a store.Store whose transactions encrypt on Put and decrypt
// on Get, Scan, ScanAfter, Soonest and Reap, so every command works
// unchanged on an encrypted bucket. Keys, deadlines and sizes stay
// visible: they are what the store looks things up by.
package seal

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
)

// Bucket is the internal bucket holding each encrypted bucket's wrapped
// data key, keyed by the bucket's name.
const Bucket = "!seal"

// version is the first byte of every sealed value.
const version byte = 1

// Overhead is how many bytes sealing adds to a value.
const Overhead = 1 + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// ErrNoIdentity is returned when a value must be decrypted or encrypted
// and no identity file can be read.
var ErrNoIdentity = store.NewError(store.KindStore, "no age identity")

// ErrOpen is returned for a value (or a bucket's data key) that none of
// our identities opens, or that is damaged.
var ErrOpen = store.NewError(store.KindStore, "cannot decrypt")

// ErrSealed refuses turning encryption off while the bucket holds
// encrypted values.
var ErrSealed = store.NewError(store.KindPolicy, "bucket holds encrypted values")

// OpenError names the value that could not be decrypted.
type OpenError struct {
	Bucket, Key string
	Why         string
}

func (e *OpenError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("cannot decrypt bucket %q's data key: %s", e.Bucket, e.Why)
	}
	return fmt.Sprintf("cannot decrypt key %q in bucket %q: %s", e.Key, e.Bucket, e.Why)
}

// Unwrap makes errors.Is(err, ErrOpen) hold, and gives the exit code.
func (e *OpenError) Unwrap() error { return ErrOpen }

// Keys supplies the identities and recipients, loaded on first need: a
// command that touches no encrypted bucket never reads the identity file.
type Keys interface {
	// Identities returns the identities that may open data keys.
	Identities() ([]age.Identity, error)
	// Recipients returns everyone a new or re-wrapped data key is
	// wrapped to (this host's own recipient included).
	Recipients() ([]age.Recipient, error)
}

// StaticKeys is Keys fixed in advance (tests, the Go API).
type StaticKeys struct {
	IDs  []age.Identity
	Recs []age.Recipient
}

// Identities returns k.IDs, or ErrNoIdentity when there are none.
func (k StaticKeys) Identities() ([]age.Identity, error) {
	if len(k.IDs) == 0 {
		return nil, ErrNoIdentity
	}
	return k.IDs, nil
}

// Recipients returns k.Recs, or ErrNoIdentity when there are none.
func (k StaticKeys) Recipients() ([]age.Recipient, error) {
	if len(k.Recs) == 0 {
		return nil, ErrNoIdentity
	}
	return k.Recs, nil
}

// Store is a store.Store that seals encrypted buckets' values.
type Store struct {
	store.Store
	keys Keys

	mu    sync.Mutex
	cache map[string]cached // bucket -> data key, while its wrap is unchanged
}

type cached struct {
	wrapped []byte
	key     []byte
}

// Wrap returns s sealing the values of encrypted buckets with keys.
func Wrap(s store.Store, keys Keys) *Store {
	return &Store{Store: s, keys: keys, cache: map[string]cached{}}
}

// Unwrap returns the store under s.
func (s *Store) Unwrap() store.Store { return s.Store }

// Update runs fn in a read-write transaction that seals values.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Update(ctx, func(raw store.Tx) error { return fn(s.Tx(raw)) })
}

// View runs fn in a read-only transaction that opens sealed values.
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.View(ctx, func(raw store.Tx) error { return fn(s.Tx(raw)) })
}

// Tx returns raw sealing and opening values through s's keys.
func (s *Store) Tx(raw store.Tx) *Tx {
	if t, ok := raw.(*Tx); ok {
		return t
	}
	return &Tx{Tx: raw, s: s, state: map[string][]byte{}, enc: map[string]bool{}}
}

// Tx is a transaction of a sealed store.
type Tx struct {
	store.Tx
	s *Store
	// state caches, per bucket, its data key (nil: not encrypted) for
	// this transaction.
	state map[string][]byte
	enc   map[string]bool
}

// Raw returns the transaction under t: values as stored.
func (t *Tx) Raw() store.Tx { return t.Tx }

// Encrypted reports whether bucket is encrypted.
func (t *Tx) Encrypted(bucket string) (bool, error) {
	if store.IsInternal(bucket) {
		return false, nil
	}
	if k, ok := t.state[bucket]; ok {
		return k != nil, nil
	}
	if enc, ok := t.enc[bucket]; ok {
		return enc, nil
	}
	_, ok, err := t.Tx.Get(Bucket, bucket)
	if err == nil {
		t.enc[bucket] = ok
	}
	return ok, err
}

// dataKey returns bucket's data key, or nil when bucket is not encrypted.
func (t *Tx) dataKey(bucket string) ([]byte, error) {
	if store.IsInternal(bucket) {
		return nil, nil
	}
	if k, ok := t.state[bucket]; ok {
		return k, nil
	}
	e, ok, err := t.Tx.Get(Bucket, bucket)
	if err != nil {
		return nil, err
	}
	if !ok {
		t.state[bucket] = nil
		return nil, nil
	}
	k, err := t.s.unwrapKey(bucket, e.Value)
	if err != nil {
		return nil, err
	}
	t.state[bucket] = k
	return k, nil
}

func (s *Store) unwrapKey(bucket string, wrapped []byte) ([]byte, error) {
	s.mu.Lock()
	c, ok := s.cache[bucket]
	s.mu.Unlock()
	if ok && bytes.Equal(c.wrapped, wrapped) {
		return c.key, nil
	}
	ids, err := s.keys.Identities()
	if err != nil {
		return nil, err
	}
	r, err := age.Decrypt(bytes.NewReader(wrapped), ids...)
	if err != nil {
		return nil, &OpenError{Bucket: bucket, Why: err.Error()}
	}
	key, err := io.ReadAll(io.LimitReader(r, chacha20poly1305.KeySize+1))
	if err != nil || len(key) != chacha20poly1305.KeySize {
		return nil, &OpenError{Bucket: bucket, Why: "damaged data key"}
	}
	s.mu.Lock()
	s.cache[bucket] = cached{wrapped: bytes.Clone(wrapped), key: key}
	s.mu.Unlock()
	return key, nil
}

// wrapKey wraps key to the current recipients.
func (s *Store) wrapKey(key []byte) ([]byte, error) {
	recs, err := s.keys.Recipients()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recs...)
	if err != nil {
		return nil, store.WithKind(store.KindStore, err)
	}
	if _, err := w.Write(key); err != nil {
		return nil, store.WithKind(store.KindStore, err)
	}
	if err := w.Close(); err != nil {
		return nil, store.WithKind(store.KindStore, err)
	}
	return buf.Bytes(), nil
}

// ad is the associated data binding a sealed value to its place.
func ad(bucket, key string) []byte {
	b := make([]byte, 0, 16+len(bucket)+len(key))
	b = append(b, "livedict-seal"...)
	b = binary.AppendUvarint(b, uint64(len(bucket)))
	b = append(b, bucket...)
	return append(b, key...)
}

// Seal encrypts value for bucket/key under the data key k.
func Seal(k []byte, bucket, key string, value []byte) ([]byte, error) {
	return sealAD(k, ad(bucket, key), value)
}

// eventAD is the associated data of a hook event's value sealed in the
// outbox: another domain than ad's, so a (possibly cut) event value
// copied into the bucket's key does not open as its value.
func eventAD(bucket, key string) []byte {
	return append([]byte("livedict-event"), ad(bucket, key)[len("livedict-seal"):]...)
}

func sealAD(k, ad, value []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return nil, store.WithKind(store.KindStore, err)
	}
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, Overhead+len(value))
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, store.WithKind(store.KindStore, err)
	}
	return aead.Seal(out, out[1:1+chacha20poly1305.NonceSizeX], value, ad), nil
}

// Open decrypts a value Seal made for bucket/key under the data key k.
func Open(k []byte, bucket, key string, sealed []byte) ([]byte, error) {
	return openAD(k, bucket, key, ad(bucket, key), sealed)
}

func openAD(k []byte, bucket, key string, ad, sealed []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, &OpenError{Bucket: bucket, Key: key, Why: "damaged or not encrypted (too short)"}
	}
	if sealed[0] != version {
		return nil, &OpenError{Bucket: bucket, Key: key, Why: fmt.Sprintf("unknown format version %d", sealed[0])}
	}
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return nil, store.WithKind(store.KindStore, err)
	}
	nonce := sealed[1 : 1+chacha20poly1305.NonceSizeX]
	v, err := aead.Open(nil, nonce, sealed[1+chacha20poly1305.NonceSizeX:], ad)
	if err != nil {
		return nil, &OpenError{Bucket: bucket, Key: key, Why: "damaged, or sealed with another data key or for another key"}
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func (t *Tx) open(e store.Entry) (store.Entry, error) {
	if e.Value == nil {
		return e, nil
	}
	k, err := t.dataKey(e.Bucket)
	var oe *OpenError
	if errors.As(err, &oe) && oe.Key == "" {
		// Name the key the command asked for, not only the bucket.
		err = &OpenError{Bucket: oe.Bucket, Key: e.Key, Why: "this host's identity does not open the bucket's data key (" + oe.Why + ")"}
	}
	if err != nil || k == nil {
		return e, err
	}
	v, err := Open(k, e.Bucket, e.Key, e.Value)
	if err != nil {
		return e, err
	}
	e.Value, e.Size = v, int64(len(v))
	return e, nil
}

// Get returns the live entry for key in bucket, its value decrypted.
func (t *Tx) Get(bucket, key string) (store.Entry, bool, error) {
	e, ok, err := t.Tx.Get(bucket, key)
	if err != nil || !ok {
		return e, ok, err
	}
	e, err = t.open(e)
	return e, err == nil, err
}

// Stat returns the live entry for key in bucket without its value, Size
// the plaintext's length: an encrypted bucket's keys, deadlines and sizes
// stay readable without this host's identity.
func (t *Tx) Stat(bucket, key string) (store.Entry, bool, error) {
	e, ok, err := t.Tx.Get(bucket, key)
	if err != nil || !ok {
		return e, ok, err
	}
	e.Size = int64(len(e.Value))
	if !store.IsInternal(bucket) {
		enc, err := t.Encrypted(bucket)
		if err != nil {
			return store.Entry{}, false, err
		}
		if enc && e.Size >= Overhead {
			e.Size -= Overhead
		}
	}
	e.Value = nil
	return e, true, nil
}

// Retime gives a live entry a new deadline, its stored value (sealed or
// not) written back as it is: no identity needed.
func (t *Tx) Retime(e store.Entry, expiresAt int64) error {
	raw, ok, err := t.Tx.Get(e.Bucket, e.Key)
	if err != nil || !ok {
		return err
	}
	raw.ExpiresAt = expiresAt
	return t.Tx.Put(raw)
}

// Put stores e, its value encrypted when the bucket is.
func (t *Tx) Put(e store.Entry) error {
	k, err := t.dataKey(e.Bucket)
	if err != nil {
		return err
	}
	if k != nil {
		if e.Value, err = Seal(k, e.Bucket, e.Key, e.Value); err != nil {
			return err
		}
	}
	return t.Tx.Put(e)
}

// Ciphertext returns e's value as an encrypted bucket stores it (sealed
// afresh), or e.Value when e's bucket is not encrypted. Hook events use it
// so they never carry plaintext unless asked to.
func (t *Tx) Ciphertext(e store.Entry) ([]byte, error) {
	k, err := t.dataKey(e.Bucket)
	if err != nil || k == nil {
		return e.Value, err
	}
	return Seal(k, e.Bucket, e.Key, e.Value)
}

// SealEvent seals v, the plaintext a hook added with --decrypt is to get
// for an event on bucket/key, when bucket is encrypted (ok), so the
// outbox holds no plaintext; the deliverer opens it just before the run
// (OpenEvent).
func (t *Tx) SealEvent(bucket, key string, v []byte) (sealed []byte, ok bool, err error) {
	k, err := t.dataKey(bucket)
	if err != nil || k == nil {
		return nil, false, err
	}
	sealed, err = sealAD(k, eventAD(bucket, key), v)
	return sealed, err == nil, err
}

// OpenEvent opens what SealEvent sealed, under bucket's data key now (a
// rekey or rekey --decrypt reseals the outbox's sealed events).
func (t *Tx) OpenEvent(bucket, key string, sealed []byte) ([]byte, error) {
	k, err := t.dataKey(bucket)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, &OpenError{Bucket: bucket, Key: key, Why: "hook event sealed for a bucket that is no longer encrypted"}
	}
	return openAD(k, bucket, key, eventAD(bucket, key), sealed)
}

func (t *Tx) scanFn(withValues bool, fn func(store.Entry) error) func(store.Entry) error {
	if !withValues {
		return t.sizeFn(fn)
	}
	return func(e store.Entry) error {
		e, err := t.open(e)
		if err != nil {
			return err
		}
		return fn(e)
	}
}

// sizeFn reports plaintext sizes for a scan without values: a sealed
// value is exactly Overhead bytes longer.
func (t *Tx) sizeFn(fn func(store.Entry) error) func(store.Entry) error {
	return func(e store.Entry) error {
		enc, err := t.Encrypted(e.Bucket)
		if err != nil {
			return err
		}
		if enc && e.Size >= Overhead {
			e.Size -= Overhead
		}
		return fn(e)
	}
}

// Scan is store.Tx's Scan with values decrypted.
func (t *Tx) Scan(bucket, prefix string, withValues bool, fn func(store.Entry) error) error {
	if store.IsInternal(bucket) {
		return t.Tx.Scan(bucket, prefix, withValues, fn)
	}
	return t.Tx.Scan(bucket, prefix, withValues, t.scanFn(withValues, fn))
}

// ScanAfter is store.Tx's ScanAfter with values decrypted.
func (t *Tx) ScanAfter(bucket, after string, withValues bool, fn func(store.Entry) error) error {
	if store.IsInternal(bucket) {
		return t.Tx.ScanAfter(bucket, after, withValues, fn)
	}
	return t.Tx.ScanAfter(bucket, after, withValues, t.scanFn(withValues, fn))
}

// Soonest is store.Tx's Soonest with the value decrypted.
func (t *Tx) Soonest(bucket string) (store.Entry, bool, error) {
	e, ok, err := t.Tx.Soonest(bucket)
	if err != nil || !ok {
		return e, ok, err
	}
	e, err = t.open(e)
	return e, err == nil, err
}

// ScanOpenable is Scan with values, each decrypted when this host can
// open it and left out (nil) when it cannot (no identity, not a
// recipient, damaged), as Reap does: the delete events of a bucket drop
// need no identity, as the drop itself needs none.
func (t *Tx) ScanOpenable(bucket string, fn func(store.Entry) error) error {
	if store.IsInternal(bucket) {
		return t.Tx.Scan(bucket, "", true, fn)
	}
	return t.Tx.Scan(bucket, "", true, func(e store.Entry) error {
		o, err := t.open(e)
		if err != nil {
			if !Unopenable(err) {
				return err
			}
			o = e
			o.Value = nil
		}
		return fn(o)
	})
}

// Unopenable reports whether err says a value cannot be decrypted on this
// host (no identity, not a recipient, damaged): what needs no identity
// (del, bucket drop, reaping) goes on without the value.
func Unopenable(err error) bool {
	return errors.Is(err, ErrOpen) || errors.Is(err, ErrNoIdentity)
}

// Reap is store.Tx's Reap. fn sees expired values decrypted when this
// host can open the bucket, and without a value (nil) otherwise: reaping
// must never need an identity.
func (t *Tx) Reap(limit int, fn func(store.Entry) error) (int, error) {
	if fn == nil {
		return t.Tx.Reap(limit, nil)
	}
	return t.Tx.Reap(limit, func(e store.Entry) error {
		if enc, err := t.Encrypted(e.Bucket); err != nil || !enc {
			if err != nil {
				return err
			}
			return fn(e)
		}
		o, err := t.open(e)
		if err != nil {
			e.Value = nil
			return fn(e)
		}
		return fn(o)
	})
}

// EnableEncryption makes bucket encrypted: a fresh data key wrapped to the
// current recipients. Values already in the bucket are sealed in the same
// transaction. It does nothing to a bucket already encrypted.
func (t *Tx) EnableEncryption(bucket string) (bool, error) {
	if err := store.ValidateBucket(bucket); err != nil {
		return false, err
	}
	if enc, err := t.Encrypted(bucket); err != nil || enc {
		return false, err
	}
	return true, t.rekey(bucket, nil)
}

// DisableEncryption turns encryption off for bucket. With decrypt, the
// values it holds are decrypted in the same transaction; without, it is
// refused (ErrSealed) while the bucket holds values.
func (t *Tx) DisableEncryption(bucket string, decrypt bool) (bool, error) {
	enc, err := t.Encrypted(bucket)
	if err != nil || !enc {
		return false, err
	}
	n, err := t.Tx.Count(bucket)
	if err != nil {
		return false, err
	}
	if n > 0 && !decrypt {
		return false, fmt.Errorf("%w: %d in bucket %q", ErrSealed, n, bucket)
	}
	old, err := t.dataKey(bucket)
	if err != nil {
		return false, err
	}
	if err := t.reseal(bucket, old, nil); err != nil {
		return false, err
	}
	if _, err := t.Tx.Delete(Bucket, bucket); err != nil {
		return false, err
	}
	t.state[bucket], t.enc[bucket] = nil, false
	return true, nil
}

// Rekey gives bucket a new data key wrapped to the current recipients and
// re-encrypts every value with it, in this transaction: all or nothing.
// It returns how many values it re-encrypted.
func (t *Tx) Rekey(bucket string) (int, error) {
	enc, err := t.Encrypted(bucket)
	if err != nil {
		return 0, err
	}
	if !enc {
		// Invalid input (exit 2), but not ErrInvalidBucket: its text would
		// call a valid name invalid.
		return 0, &store.Error{Kind: store.KindInvalid, Err: fmt.Errorf("bucket %q is not encrypted (bucket policy %s --encrypt)", bucket, bucket)}
	}
	old, err := t.dataKey(bucket)
	if err != nil {
		return 0, err
	}
	n, err := t.Tx.Count(bucket)
	if err != nil {
		return 0, err
	}
	return int(n), t.rekey(bucket, old)
}

// rekey makes a new data key for bucket and reseals its values from old
// (nil: plaintext) to it.
func (t *Tx) rekey(bucket string, old []byte) error {
	key := make([]byte, chacha20poly1305.KeySize)
	if _, err := rand.Read(key); err != nil {
		return store.WithKind(store.KindStore, err)
	}
	wrapped, err := t.s.wrapKey(key)
	if err != nil {
		return err
	}
	if err := t.reseal(bucket, old, key); err != nil {
		return err
	}
	if err := t.Tx.Put(store.Entry{Bucket: Bucket, Key: bucket, Value: wrapped}); err != nil {
		return err
	}
	t.state[bucket], t.enc[bucket] = key, true
	return nil
}

// reseal rewrites every value of bucket from the data key old to new (nil
// on either side: plaintext), keeping deadlines.
func (t *Tx) reseal(bucket string, old, new []byte) error {
	if new != nil {
		// The bytes being replaced (plaintext, or values and a wrapped
		// data key a removed recipient can open) must not stay readable
		// in the store's file, on its free pages.
		if err := t.EraseFreed(); err != nil {
			return err
		}
	}
	var all []store.Entry
	err := t.Tx.Scan(bucket, "", true, func(e store.Entry) error {
		all = append(all, e)
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range all {
		v := e.Value
		if old != nil {
			if v, err = Open(old, bucket, e.Key, v); err != nil {
				return err
			}
		}
		if new != nil {
			if v, err = Seal(new, bucket, e.Key, v); err != nil {
				return err
			}
		}
		e.Value = v
		if err := t.Tx.Put(e); err != nil {
			return err
		}
	}
	return nil
}

// EraseFreed makes what this transaction frees from now on overwritten
// in the store's files where the backend would keep it (store.Eraser):
// encrypting or rekeying a bucket calls it before reaping the bucket's
// expired values and resealing the rest.
func (t *Tx) EraseFreed() error {
	if er, ok := t.Tx.(store.Eraser); ok {
		return er.EraseFreed()
	}
	return nil
}

// Encrypted lists the encrypted buckets of tx.
func Encrypted(tx store.Tx) ([]string, error) {
	if t, ok := tx.(*Tx); ok {
		tx = t.Tx
	}
	var out []string
	err := tx.Scan(Bucket, "", false, func(e store.Entry) error {
		out = append(out, e.Key)
		return nil
	})
	return out, err
}

var _ store.Tx = (*Tx)(nil)

// Deadlines passes the backend's deadline listing through (see
// store.DeadlineLister): deadlines are not encrypted.
func (t *Tx) Deadlines(after ttl.Due, limit int) ([]ttl.Due, error) {
	dl, ok := t.Tx.(store.DeadlineLister)
	if !ok {
		return nil, fmt.Errorf("store: %T cannot list deadlines", t.Tx)
	}
	return dl.Deadlines(after, limit)
}

// CountUpTo keeps the backend's bounded count available (see
// store.BoundedCounter).
func (t *Tx) CountUpTo(bucket string, limit int64) (int64, error) {
	if bc, ok := t.Tx.(store.BoundedCounter); ok {
		return bc.CountUpTo(bucket, limit)
	}
	if bucket == "" {
		return t.Tx.CountAll()
	}
	return t.Tx.Count(bucket)
}

// LoadMany keeps the backend's bulk load available (see store.BulkLoader),
// sealing the values bound for encrypted buckets first.
func (t *Tx) LoadMany(entries []store.Entry, mode store.ImportMode) (int, error) {
	out := entries
	for i, e := range entries {
		k, err := t.dataKey(e.Bucket)
		if err != nil {
			return 0, err
		}
		if k == nil {
			continue
		}
		if &out[0] == &entries[0] {
			out = slices.Clone(entries)
		}
		if out[i].Value, err = Seal(k, e.Bucket, e.Key, e.Value); err != nil {
			return 0, err
		}
	}
	if bl, ok := t.Tx.(store.BulkLoader); ok {
		return bl.LoadMany(out, mode)
	}
	return store.LoadEach(t.Tx, out, mode)
}

var (
	_ store.DeadlineLister = (*Tx)(nil)
	_ store.BoundedCounter = (*Tx)(nil)
	_ store.BulkLoader     = (*Tx)(nil)
)
