package store

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// Limits are the store-wide limits from the configuration.
type Limits struct {
	// MaxValueBytes refuses larger values with ErrValueTooLarge; 0 = none.
	MaxValueBytes int64
	// MaxTotalKeys refuses a write that would add a key beyond it with
	// ErrStoreFull; 0 = none.
	MaxTotalKeys int64
}

// CheckValue applies MaxValueBytes to a value about to be stored.
func (l Limits) CheckValue(n int) error {
	if l.MaxValueBytes > 0 && int64(n) > l.MaxValueBytes {
		return fmt.Errorf("%w: %d bytes, max_value_bytes is %d", ErrValueTooLarge, n, l.MaxValueBytes)
	}
	return nil
}

// SetArgs describes one `set`.
type SetArgs struct {
	Bucket, Key string
	Value       []byte
	// ExpiresAt is an explicit deadline (Unix ms) from --ttl or --at; 0
	// means none was given. A deadline at or before now deletes the key.
	ExpiresAt int64
	KeepTTL   bool // keep the existing deadline
	// Persist stores the key without a deadline, even in a bucket with a
	// default TTL.
	Persist bool
	NX, XX  bool // only if missing / only if present
}

// SetResult reports what Set did.
type SetResult struct {
	Stored bool
	Old    Entry // the previous live entry, when HadOld
	HadOld bool
}

// Set stores a value with Redis SET semantics: it clears any TTL unless
// KeepTTL, honours NX/XX, applies the bucket's default TTL to writes without
// an explicit one, and enforces the bucket's and store's key limits.
func Set(tx Tx, lim Limits, a SetArgs) (SetResult, error) {
	if err := lim.CheckValue(len(a.Value)); err != nil {
		return SetResult{}, err
	}
	old, had, err := tx.Get(a.Bucket, a.Key)
	if err != nil {
		return SetResult{}, err
	}
	res := SetResult{Old: old, HadOld: had}
	if a.NX && had || a.XX && !had {
		return res, nil
	}
	if a.ExpiresAt != 0 && a.ExpiresAt <= tx.Now() {
		// A deadline already past stores a key that is gone at once, as
		// Redis's SET ... PXAT does: the old value goes too.
		if had {
			_, err = tx.Delete(a.Bucket, a.Key)
		}
		res.Stored = true
		return res, err
	}
	exp := a.ExpiresAt
	if exp == 0 {
		switch {
		case a.KeepTTL && had:
			exp = old.ExpiresAt
		case a.Persist:
		default:
			if exp, err = defaultDeadline(tx, a.Bucket); err != nil {
				return res, err
			}
		}
	}
	if !had {
		if err := makeRoom(tx, lim, a.Bucket); err != nil {
			return res, err
		}
	}
	if err := tx.Put(Entry{Bucket: a.Bucket, Key: a.Key, Value: a.Value, ExpiresAt: exp}); err != nil {
		return res, err
	}
	res.Stored = true
	return res, nil
}

func defaultDeadline(tx Tx, bucket string) (int64, error) {
	p, err := tx.Policy(bucket)
	if err != nil || p.DefaultTTL == 0 {
		return 0, err
	}
	return tx.Now() + p.DefaultTTL, nil
}

// Pinned, when set, reports whether a value must never be evicted to make
// room: pkg/lease sets it for a held lease, which another caller could
// otherwise take while its holder still runs (two holders at once).
var Pinned func(value []byte) bool

// makeRoom is called before a write adds a new key to bucket: it enforces
// the store-wide MaxTotalKeys and the bucket's MaxKeys, evicting when the
// bucket's policy says so.
func makeRoom(tx Tx, lim Limits, bucket string) error {
	if lim.MaxTotalKeys > 0 {
		n, err := countUpTo(tx, "", lim.MaxTotalKeys)
		if err != nil {
			return err
		}
		if n >= lim.MaxTotalKeys {
			return fmt.Errorf("%w: it is at max_total_keys (%d)", ErrStoreFull, lim.MaxTotalKeys)
		}
	}
	p, err := tx.Policy(bucket)
	if err != nil || p.MaxKeys == 0 {
		return err
	}
	// One past the limit: a bucket over it (its limit was lowered) must
	// be evicted down to it, as the exact counts of the other backends
	// do, not by one key per write, which kept it over the limit for good.
	n, err := countUpTo(tx, bucket, p.MaxKeys+1)
	if err == nil && n > p.MaxKeys && p.OnFull == EvictSoonest {
		n, err = tx.Count(bucket)
	}
	if err != nil {
		return err
	}
	for ; n >= p.MaxKeys; n-- {
		if p.OnFull != EvictSoonest {
			return &FullError{bucket, fmt.Errorf("%w: bucket %q is at its max-keys (%d)", ErrBucketFull, bucket, p.MaxKeys)}
		}
		victim, ok, err := tx.Soonest(bucket)
		if err != nil {
			return err
		}
		if !ok {
			return &FullError{bucket, fmt.Errorf("%w: bucket %q is at its max-keys (%d) and %w", ErrBucketFull, bucket, p.MaxKeys, ErrNothingToEvict)}
		}
		if Pinned != nil && Pinned(victim.Value) {
			return &FullError{bucket, fmt.Errorf("%w: bucket %q is at its max-keys (%d) and its soonest-expiring key %q %w", ErrBucketFull, bucket, p.MaxKeys, victim.Key, ErrLeaseNotEvicted)}
		}
		if _, err := tx.Delete(bucket, victim.Key); err != nil {
			return err
		}
	}
	return nil
}

// BoundedCounter is implemented by transactions that can count live keys
// without reading past a limit: a write that adds a key only needs to know
// whether a limit is reached, not how far past it a large store is.
type BoundedCounter interface {
	// CountUpTo counts the live keys of bucket ("" for the whole store),
	// stopping at limit.
	CountUpTo(bucket string, limit int64) (int64, error)
}

// countUpTo counts live keys, exactly up to limit (more may be reported
// by backends without BoundedCounter).
func countUpTo(tx Tx, bucket string, limit int64) (int64, error) {
	if bc, ok := tx.(BoundedCounter); ok {
		return bc.CountUpTo(bucket, limit)
	}
	if bucket == "" {
		return tx.CountAll()
	}
	return tx.Count(bucket)
}

// GetEx reads a key and sets its deadline (Unix ms; 0 removes the TTL),
// returning the entry with its new deadline. A deadline at or before now
// deletes the key after reading it, as Redis does.
func GetEx(tx Tx, bucket, key string, expiresAt int64) (Entry, bool, error) {
	e, ok, err := tx.Get(bucket, key)
	if err != nil || !ok {
		return e, ok, err
	}
	e.ExpiresAt = expiresAt
	if expiresAt != 0 && expiresAt <= tx.Now() {
		_, err = tx.Delete(bucket, key)
		return e, true, err
	}
	return e, true, tx.Put(e)
}

// Delete removes keys and counts the live ones removed; a key named twice
// counts once, as in Redis.
func Delete(tx Tx, bucket string, keys []string) (int, error) {
	n := 0
	for _, k := range keys {
		ok, err := tx.Delete(bucket, k)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// Exists counts the live keys among keys; a key named twice counts twice,
// as in Redis.
func Exists(tx Tx, bucket string, keys []string) (int, error) {
	n := 0
	for _, k := range keys {
		_, ok, err := Stat(tx, bucket, k)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// Stater is a transaction that can report an entry without opening its
// value: seal.Tx, whose encrypted buckets' keys, deadlines and sizes stay
// readable without this host's identity (SPEC: Encryption at rest).
type Stater interface {
	Stat(bucket, key string) (Entry, bool, error)
}

// Stat returns key's live entry with its deadline and its value's size in
// Size; its Value only when tx has no Stat of its own. exists, ttl and
// strlen read through it.
func Stat(tx Tx, bucket, key string) (Entry, bool, error) {
	if s, ok := tx.(Stater); ok {
		return s.Stat(bucket, key)
	}
	e, ok, err := tx.Get(bucket, key)
	e.Size = int64(len(e.Value))
	return e, ok, err
}

// TTL states, as Redis's TTL and PTTL report them.
const (
	TTLMissing = -2
	TTLNone    = -1
)

// RemainingMs returns a key's remaining time to live in milliseconds, or
// TTLNone when it has no deadline, or TTLMissing when it does not exist.
func RemainingMs(tx Tx, bucket, key string) (int64, error) {
	e, ok, err := Stat(tx, bucket, key)
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return TTLMissing, nil
	case e.ExpiresAt == 0:
		return TTLNone, nil
	}
	return e.ExpiresAt - tx.Now(), nil
}

// ExpireCond is the condition flag of EXPIRE (Redis 7).
type ExpireCond int

// The EXPIRE conditions.
const (
	Always ExpireCond = iota
	IfNoTTL
	IfHasTTL
	IfGreater
	IfLess
	IfHasTTLGreater // XX GT
	IfHasTTLLess    // XX LT
)

// Expire sets key's deadline (Unix ms) if cond holds and reports whether
// it did. A deadline at or before now deletes the key. As in Redis, a key
// without a TTL counts as an infinite TTL for IfGreater and IfLess.
func Expire(tx Tx, bucket, key string, expiresAt int64, cond ExpireCond) (bool, error) {
	e, ok, err := Stat(tx, bucket, key)
	if err != nil || !ok {
		return false, err
	}
	switch cond {
	case IfNoTTL:
		ok = e.ExpiresAt == 0
	case IfHasTTL:
		ok = e.ExpiresAt != 0
	case IfGreater:
		ok = e.ExpiresAt != 0 && expiresAt > e.ExpiresAt
	case IfLess:
		ok = e.ExpiresAt == 0 || expiresAt < e.ExpiresAt
	case IfHasTTLGreater:
		ok = e.ExpiresAt != 0 && expiresAt > e.ExpiresAt
	case IfHasTTLLess:
		ok = e.ExpiresAt != 0 && expiresAt < e.ExpiresAt
	}
	if !ok {
		return false, nil
	}
	if expiresAt <= tx.Now() {
		_, err = tx.Delete(bucket, key)
		return err == nil, err
	}
	return true, Retime(tx, e, expiresAt)
}

// Persist drops key's TTL and reports whether it had one.
func Persist(tx Tx, bucket, key string) (bool, error) {
	e, ok, err := Stat(tx, bucket, key)
	if err != nil || !ok || e.ExpiresAt == 0 {
		return false, err
	}
	return true, Retime(tx, e, 0)
}

// Retimer is a transaction that can change a live entry's deadline
// without opening its value: seal.Tx, so that expire and persist work on
// an encrypted bucket without this host's identity, as ttl does.
type Retimer interface {
	Retime(e Entry, expiresAt int64) error
}

// Retime gives e, a live entry read with Stat, the deadline expiresAt (0:
// none), its value unchanged.
func Retime(tx Tx, e Entry, expiresAt int64) error {
	if r, ok := tx.(Retimer); ok {
		return r.Retime(e, expiresAt)
	}
	if _, ok := tx.(Stater); ok { // Stat left the value out
		var live bool
		var err error
		if e, live, err = tx.Get(e.Bucket, e.Key); err != nil || !live {
			return err
		}
	}
	e.ExpiresAt = expiresAt
	return tx.Put(e)
}

// IncrBy adds n to the integer stored at key (a missing key counts as 0)
// and keeps its TTL.
func IncrBy(tx Tx, lim Limits, bucket, key string, n int64) (int64, error) {
	e, ok, err := tx.Get(bucket, key)
	if err != nil {
		return 0, err
	}
	var cur int64
	if ok {
		if cur, err = ParseRedisInt(e.Value); err != nil {
			return 0, err
		}
	}
	if n > 0 && cur > math.MaxInt64-n || n < 0 && cur < math.MinInt64-n {
		return 0, ErrOverflow
	}
	cur += n
	return cur, putValue(tx, lim, e, ok, bucket, key, []byte(strconv.FormatInt(cur, 10)))
}

// IncrByFloat adds f to the number stored at key (a missing key counts as
// 0) and keeps its TTL. Like Redis it computes with a 64-bit mantissa (C's
// long double on x86) and writes the result with 17 decimals, trailing
// zeros trimmed, so 0.1 + 0.2 is stored as "0.3".
func IncrByFloat(tx Tx, lim Limits, bucket, key string, f *big.Float) (string, error) {
	e, ok, err := tx.Get(bucket, key)
	if err != nil {
		return "", err
	}
	cur := new(big.Float).SetPrec(longDoublePrec)
	if ok {
		if cur, err = ParseRedisFloat(e.Value); err != nil {
			return "", err
		}
	}
	if cur.IsInf() || f.IsInf() {
		return "", ErrNaN // Redis: inf + x is infinite, inf - inf NaN
	}
	cur.Add(cur, f)
	if exp := cur.MantExp(nil); exp > longDoubleMaxExp {
		return "", ErrNaN // beyond long double: Redis reports infinity
	}
	s := cur.Text('f', 17)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s, putValue(tx, lim, e, ok, bucket, key, []byte(s))
}

// The x87 long double Redis computes INCRBYFLOAT in.
const (
	longDoublePrec   = 64
	longDoubleMaxExp = 16384
	longDoubleMinExp = -16444 // the smallest denormal is 2**-16445
)

// putValue replaces the value of e (had: e is live) and keeps its TTL; a new
// key gets the bucket's default TTL and must find room under its limits.
func putValue(tx Tx, lim Limits, e Entry, had bool, bucket, key string, v []byte) error {
	if err := lim.CheckValue(len(v)); err != nil {
		return err
	}
	if !had {
		exp, err := defaultDeadline(tx, bucket)
		if err != nil {
			return err
		}
		if err := makeRoom(tx, lim, bucket); err != nil {
			return err
		}
		e = Entry{Bucket: bucket, Key: key, ExpiresAt: exp}
	}
	e.Value = v
	return tx.Put(e)
}

// Append adds v to the end of the value at key and keeps its TTL, as
// Redis's APPEND; a missing key starts empty. It returns the new length.
func Append(tx Tx, lim Limits, bucket, key string, v []byte) (int, error) {
	e, ok, err := tx.Get(bucket, key)
	if err != nil {
		return 0, err
	}
	nv := make([]byte, 0, len(e.Value)+len(v))
	nv = append(append(nv, e.Value...), v...)
	return len(nv), putValue(tx, lim, e, ok, bucket, key, nv)
}

// MSet stores every pair with SET semantics, all in the caller's
// transaction: each takes o's deadline (ExpiresAt, Persist), and with
// neither any TTL the key had is cleared and the bucket's default TTL
// applies. Pairs are applied in order, so a key named twice keeps its last
// value, as in Redis. With o.NX nothing is stored when any of the keys
// exists (Redis's MSETNX), and MSet reports false.
func MSet(tx Tx, lim Limits, bucket string, pairs []KeyValue, o MSetArgs) (bool, error) {
	nx := o.NX
	for _, p := range pairs {
		if err := lim.CheckValue(len(p.Value)); err != nil {
			return false, err
		}
		if !nx {
			continue
		}
		if _, had, err := tx.Get(bucket, p.Key); err != nil || had {
			return false, err
		}
	}
	for _, p := range pairs {
		if _, err := Set(tx, lim, SetArgs{Bucket: bucket, Key: p.Key, Value: p.Value, ExpiresAt: o.ExpiresAt, Persist: o.Persist}); err != nil {
			return false, err
		}
	}
	return true, nil
}

// MSetArgs are MSet's options, as SetArgs's for every pair.
type MSetArgs struct {
	ExpiresAt int64 // deadline in Unix ms; 0: none (the bucket's default TTL applies)
	Persist   bool  // no deadline, not even the bucket's default TTL
	NX        bool  // store nothing when any key exists
}

// KeyValue is one pair of an MSet.
type KeyValue struct {
	Key   string
	Value []byte
}

// ParseRedisInt parses a value the way Redis's INCR does: an optional '-'
// and decimal digits with no leading zeros, spaces or '+', fitting int64.
func ParseRedisInt(b []byte) (int64, error) {
	s := string(b)
	if s == "" || len(s) > 20 || s == "-0" {
		return 0, ErrNotInteger
	}
	digits := s
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if digits == "" || len(digits) > 1 && digits[0] == '0' {
		return 0, ErrNotInteger
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, ErrNotInteger
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, ErrNotInteger
	}
	return n, nil
}

// ParseRedisFloat parses a value the way Redis's INCRBYFLOAT does (its
// string2ld, which is C's strtold): an optional sign, then a decimal number
// with an optional exponent, a hex float ("0x10", "0x1.8p3"), or "inf" /
// "infinity" in any case; no surrounding spaces, no NaN, nothing that
// overflows a long double or underflows it to zero. Infinity parses, as in
// Redis; adding it fails in IncrByFloat with ErrNaN.
func ParseRedisFloat(b []byte) (*big.Float, error) {
	s := string(b)
	if s == "" || len(s) > 5000 {
		return nil, ErrNotFloat
	}
	body := strings.TrimLeft(s, "+-")
	if len(s)-len(body) > 1 {
		return nil, ErrNotFloat
	}
	if l := strings.ToLower(body); l == "inf" || l == "infinity" {
		return new(big.Float).SetInf(s[0] == '-'), nil
	}
	base := 10
	if len(body) > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X') {
		if !hexFloat(body[2:]) {
			return nil, ErrNotFloat
		}
		base = 0 // big reads the 0x prefix and a 'p' exponent
	} else {
		for i := 0; i < len(body); i++ {
			if c := body[i]; !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
				return nil, ErrNotFloat // no spaces, "nan" or '_'
			}
		}
	}
	f, _, err := big.ParseFloat(s, base, longDoublePrec, big.ToNearestEven)
	if err != nil || f.IsInf() {
		return nil, ErrNotFloat
	}
	if exp := f.MantExp(nil); exp > longDoubleMaxExp || f.Sign() != 0 && exp < longDoubleMinExp {
		return nil, ErrNotFloat // strtold's ERANGE: overflow, or underflow to zero
	}
	return f, nil
}

// hexFloat checks the part of a hex float after "0x" as strtold reads it:
// hex digits with at most one '.', at least one digit, and an optional
// binary exponent 'p' with decimal digits.
func hexFloat(s string) bool {
	mant, exp, hasExp := strings.Cut(strings.ToLower(s), "p")
	digits, dots := 0, 0
	for i := 0; i < len(mant); i++ {
		switch c := mant[i]; {
		case c >= '0' && c <= '9' || c >= 'a' && c <= 'f':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	if digits == 0 || dots > 1 {
		return false
	}
	if hasExp {
		if exp != "" && (exp[0] == '+' || exp[0] == '-') {
			exp = exp[1:]
		}
		if exp == "" {
			return false
		}
		for i := 0; i < len(exp); i++ {
			if exp[i] < '0' || exp[i] > '9' {
				return false
			}
		}
	}
	return true
}

// Rename moves src to dst with its TTL, replacing dst unless nx. It reports
// false when src is missing or (with nx) dst exists.
func Rename(tx Tx, bucket, src, dst string, nx bool) (bool, error) {
	e, ok, err := tx.Get(bucket, src)
	if err != nil || !ok {
		return false, err
	}
	if src == dst {
		return !nx, nil
	}
	_, dstExists, err := tx.Get(bucket, dst)
	if err != nil {
		return false, err
	}
	if nx && dstExists {
		return false, nil
	}
	if _, err := tx.Delete(bucket, src); err != nil {
		return false, err
	}
	e.Key = dst
	return true, tx.Put(e)
}

// Keys returns the live keys of bucket matching the glob, bytewise sorted.
func Keys(tx Tx, bucket, glob string) ([]string, error) {
	var keys []string
	err := ScanGlob(tx, bucket, glob, false, func(e Entry) error {
		keys = append(keys, e.Key)
		return nil
	})
	return keys, err
}

// ScanGlob calls fn for each live entry of bucket whose key matches glob
// (empty glob: all), in bytewise key order.
func ScanGlob(tx Tx, bucket, glob string, withValues bool, fn func(Entry) error) error {
	if glob == "" || glob == "*" {
		return tx.Scan(bucket, "", withValues, fn)
	}
	return tx.Scan(bucket, LiteralPrefix(glob), withValues, func(e Entry) error {
		if !Match(glob, e.Key) {
			return nil
		}
		return fn(e)
	})
}

// ImportMode says what Import does with a key that already exists.
type ImportMode int

// The import modes.
const (
	// FailOnExisting makes the whole import fail with ErrKeyExists.
	FailOnExisting ImportMode = iota
	// SkipExisting keeps the existing entry.
	SkipExisting
	// ReplaceExisting overwrites it.
	ReplaceExisting
)

// BulkLoader is implemented by transactions that can load many entries
// much faster than one Get and Put each. Import uses it when no key limit
// applies. LoadMany must treat only live entries as existing and must fail
// with an error wrapping ErrKeyExists in FailOnExisting mode.
type BulkLoader interface {
	LoadMany(entries []Entry, mode ImportMode) (int, error)
}

// Import writes entries in one transaction, skipping those already
// expired, and returns how many it wrote.
func Import(tx Tx, lim Limits, entries []Entry, mode ImportMode) (int, error) {
	live := make([]Entry, 0, len(entries))
	limited := lim.MaxTotalKeys > 0
	policies := map[string]Policy{}
	for _, e := range entries {
		if e.ExpiresAt != 0 && e.ExpiresAt <= tx.Now() {
			continue
		}
		if err := lim.CheckValue(len(e.Value)); err != nil {
			return 0, fmt.Errorf("key %q: %w", e.Key, err)
		}
		if _, ok := policies[e.Bucket]; !ok {
			p, err := tx.Policy(e.Bucket)
			if err != nil {
				return 0, err
			}
			policies[e.Bucket] = p
			limited = limited || p.MaxKeys > 0
		}
		live = append(live, e)
	}
	if bl, ok := tx.(BulkLoader); ok && !limited {
		return bl.LoadMany(live, mode)
	}
	return loadEach(tx, lim, live, mode, limited)
}

// LoadEach writes entries one Get and Put at a time, as Import does
// without a BulkLoader and without limits: for a wrapping transaction
// whose LoadMany cannot take the bulk path (one that records every Put).
func LoadEach(tx Tx, entries []Entry, mode ImportMode) (int, error) {
	return loadEach(tx, Limits{}, entries, mode, false)
}

func loadEach(tx Tx, lim Limits, live []Entry, mode ImportMode, limited bool) (int, error) {
	n := 0
	for i, e := range live {
		_, had, err := tx.Get(e.Bucket, e.Key)
		if err != nil {
			return 0, err
		}
		switch {
		case had && mode == SkipExisting:
			continue
		case had && mode == FailOnExisting:
			return 0, existsErrIn(live[:i], e)
		case !had && limited:
			if err := makeRoom(tx, lim, e.Bucket); err != nil {
				return 0, err
			}
		}
		if err := tx.Put(e); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

func existsErr(e Entry) error {
	return fmt.Errorf("%w: %q in bucket %q", ErrKeyExists, e.Key, e.Bucket)
}

// existsErrIn is existsErr for an import whose entries before e are
// earlier: it says when e exists only because it came earlier in the same
// import, so every backend tells a user the same thing (the hint to use
// --replace or --skip-existing alone would send them to the store). It runs
// only on that error path.
func existsErrIn(earlier []Entry, e Entry) error {
	if slices.ContainsFunc(earlier, func(x Entry) bool { return x.Bucket == e.Bucket && x.Key == e.Key }) {
		return fmt.Errorf("%w: %q in bucket %q (it appears twice in the import)", ErrKeyExists, e.Key, e.Bucket)
	}
	return existsErr(e)
}

// LazyReapBatch is how many expired entries a command reaps when it opens a
// store: enough to keep up with ordinary churn, small enough (about a
// millisecond on SQLite) that one command never stalls on a backlog.
const LazyReapBatch = 100

// LazyReap deletes up to limit expired entries, checking first in a
// read-only transaction so the common case (nothing expired) takes no write
// lock.
func LazyReap(ctx context.Context, s Store, limit int) (int, error) {
	var due bool
	if err := s.View(ctx, func(tx Tx) error {
		var err error
		due, err = tx.HasExpired()
		return err
	}); err != nil || !due {
		return 0, err
	}
	var n int
	err := s.Update(ctx, func(tx Tx) error {
		var err error
		n, err = tx.Reap(limit, nil)
		return err
	})
	return n, err
}
