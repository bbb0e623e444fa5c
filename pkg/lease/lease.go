// Package lease implements livedict's leases: named locks and semaphores
// with a TTL, an owner secret and a fencing token, kept as ordinary keys so
// list, del and bucket policies see them.
//
// A lease on NAME in a bucket is the key NAME holding a JSON State: one
// Holder per current holder (up to the semaphore's limit). The key's own
// TTL is the latest holder deadline, so a holder killed with -9 stops
// holding when its deadline passes and the key disappears with the last
// one, with nobody left to clean up.
//
// Every step (Acquire, Renew, Release, Status) is one function over one
// store transaction: read the key, drop holders whose deadline passed,
// decide, write. That is the whole protocol, so a backend only has to run
// it atomically: SQLite and the file store serialise writers; a Redis
// backend would run the same steps in a MULTI/EXEC or a script over the
// two keys involved.
//
// Fencing tokens come from one counter per bucket in the internal bucket
// "!locks", incremented by every acquisition of any lease in the bucket.
// So a NAME's tokens strictly increase across acquisitions even after its
// key expired, was deleted or its bucket dropped, and the counter costs
// one entry per bucket rather than one per name ever locked (run's
// single-flight locks a fresh name per cache key).
package lease

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/livedict/livedict/pkg/store"
)

// CounterBucket is the internal bucket that holds the fencing counters.
const CounterBucket = "!locks"

// ErrNotLease: the key NAME exists but holds something else.
var ErrNotLease = errors.New("key holds a value that is not a lease")

// ErrBadToken: a handle that is not FENCE.SECRET.
var ErrBadToken = errors.New("invalid lease token")

// Holder is one holder of a lease.
type Holder struct {
	// Owner is the holder's secret: 128 random bits in hex. Only who
	// knows it can renew or release.
	Owner string `json:"owner"`
	// Token is the fencing token: greater than every token given out
	// before in this bucket.
	Token int64 `json:"token"`
	// Deadline (Unix ms) after which the holder no longer holds.
	Deadline int64 `json:"deadline"`
	// TTL (ms) is the time the lease was last taken or renewed for: a
	// renewal that names none renews for it again (0 in a lease an older
	// livedict wrote).
	TTL int64 `json:"ttl_ms,omitempty"`
}

// Handle is the opaque string a script keeps to renew and release:
// "TOKEN.OWNER". The fencing token alone is public (status prints it,
// CMD gets it), so it cannot be what authorises a release.
func (h Holder) Handle() string { return strconv.FormatInt(h.Token, 10) + "." + h.Owner }

// ParseHandle splits a handle made by Handle.
func ParseHandle(s string) (Holder, error) {
	tok, owner, ok := strings.Cut(s, ".")
	n, err := strconv.ParseInt(tok, 10, 64)
	if !ok || err != nil || n <= 0 || len(owner) != 32 {
		return Holder{}, fmt.Errorf("%w %q: want TOKEN.SECRET as printed by --acquire", ErrBadToken, s)
	}
	if _, err := hex.DecodeString(owner); err != nil {
		return Holder{}, fmt.Errorf("%w %q: want TOKEN.SECRET as printed by --acquire", ErrBadToken, s)
	}
	return Holder{Owner: owner, Token: n}, nil
}

// NewOwner returns a fresh owner secret.
func NewOwner() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b[:])
}

// State is the value of a lease key.
type State struct {
	Holders []Holder `json:"holders"`
}

// Ref names a lease.
type Ref struct {
	Bucket, Name string
	Limits       store.Limits
}

// A held lease is never evicted from a full evict-soonest bucket: its
// TTL makes it the soonest to go, and the next caller would take it while
// its holder still runs. (A lease whose holders all passed their
// deadlines has expired with them, so is never a victim.)
func init() {
	store.Pinned = func(v []byte) bool {
		var st State
		return json.Unmarshal(v, &st) == nil && len(st.Holders) > 0
	}
}

// load reads the lease and drops the holders whose deadline passed.
func (r Ref) load(tx store.Tx) (State, error) {
	e, ok, err := tx.Get(r.Bucket, r.Name)
	if err != nil || !ok {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(e.Value, &st); err != nil || st.Holders == nil {
		return State{}, fmt.Errorf("%w: %q", ErrNotLease, r.Name)
	}
	now := tx.Now()
	st.Holders = slices.DeleteFunc(st.Holders, func(h Holder) bool { return h.Deadline <= now })
	return st, nil
}

// save writes st with the latest deadline as the key's TTL, or deletes
// the key when nobody holds it.
func (r Ref) save(tx store.Tx, st State) error {
	if len(st.Holders) == 0 {
		_, err := tx.Delete(r.Bucket, r.Name)
		return err
	}
	var last int64
	for _, h := range st.Holders {
		last = max(last, h.Deadline)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	// The record is livedict's own, not a user's value: max_value_bytes
	// does not apply (a store that keeps values small still has locks),
	// the bucket's and the store's key limits do.
	lim := r.Limits
	lim.MaxValueBytes = 0
	_, err = store.Set(tx, lim, store.SetArgs{Bucket: r.Bucket, Key: r.Name, Value: b, ExpiresAt: last})
	return err
}

// nextToken increments and returns the bucket's fencing counter.
func nextToken(tx store.Tx, bucket string) (int64, error) {
	e, ok, err := tx.Get(CounterBucket, bucket)
	if err != nil {
		return 0, err
	}
	var n int64
	if ok {
		if n, err = strconv.ParseInt(string(e.Value), 10, 64); err != nil {
			return 0, fmt.Errorf("%w: fencing counter of bucket %q: %q", store.ErrCorrupt, bucket, e.Value)
		}
	}
	n++
	return n, tx.Put(store.Entry{Bucket: CounterBucket, Key: bucket, Value: []byte(strconv.FormatInt(n, 10))})
}

// Acquire makes owner a holder for ttlMs if fewer than limit hold the
// lease. It reports the new holder, or false and the current holders when
// the lease is full. Each caller's limit counts on its own, as with
// flock: callers of one semaphore must agree on it.
func Acquire(tx store.Tx, r Ref, owner string, limit int, ttlMs int64) (Holder, bool, State, error) {
	st, err := r.load(tx)
	if err != nil {
		return Holder{}, false, st, err
	}
	if len(st.Holders) >= limit {
		return Holder{}, false, st, nil
	}
	tok, err := nextToken(tx, r.Bucket)
	if err != nil {
		return Holder{}, false, st, err
	}
	h := Holder{Owner: owner, Token: tok, Deadline: tx.Now() + ttlMs, TTL: ttlMs}
	st.Holders = append(st.Holders, h)
	return h, true, st, r.save(tx, st)
}

// find returns the index of the live holder h (owner and token), or -1.
func (st State) find(h Holder) int {
	return slices.IndexFunc(st.Holders, func(x Holder) bool { return x.Owner == h.Owner && x.Token == h.Token })
}

// DefaultTTL is lock's --ttl when none is given: what a renewal of a lease
// that does not say its TTL renews for.
const DefaultTTL = 30 * time.Second

// Renew moves h's deadline to ttlMs from now; ttlMs 0 renews for the TTL
// h last took (DefaultTTL for a lease that does not say), as consul and
// etcd renew for the lease's own TTL. False: h no longer holds the lease
// (it expired, was released or the key was deleted).
func Renew(tx store.Tx, r Ref, h Holder, ttlMs int64) (Holder, bool, error) {
	st, err := r.load(tx)
	if err != nil {
		return h, false, err
	}
	i := st.find(h)
	if i < 0 {
		return h, false, nil
	}
	if ttlMs <= 0 {
		ttlMs = st.Holders[i].TTL
	}
	if ttlMs <= 0 {
		ttlMs = DefaultTTL.Milliseconds()
	}
	st.Holders[i].Deadline, st.Holders[i].TTL = tx.Now()+ttlMs, ttlMs
	return st.Holders[i], true, r.save(tx, st)
}

// Release removes h: a compare-and-delete on the owner secret. False: h
// no longer held the lease.
func Release(tx store.Tx, r Ref, h Holder) (bool, error) {
	st, err := r.load(tx)
	if err != nil {
		return false, err
	}
	i := st.find(h)
	if i < 0 {
		return false, nil
	}
	st.Holders = slices.Delete(st.Holders, i, i+1)
	return true, r.save(tx, st)
}

// Status returns the live holders, oldest acquisition first.
func Status(tx store.Tx, r Ref) (State, error) {
	st, err := r.load(tx)
	slices.SortFunc(st.Holders, func(a, b Holder) int { return cmp.Compare(a.Token, b.Token) })
	return st, err
}

// NextDeadline is the earliest holder deadline (0 when none): when a full
// lease frees itself without anyone writing.
func (st State) NextDeadline() int64 {
	var d int64
	for _, h := range st.Holders {
		if d == 0 || h.Deadline < d {
			d = h.Deadline
		}
	}
	return d
}
