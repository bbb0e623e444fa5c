// Package store owns livedict's data: the Store interface that every backend
// implements (SQLite, the file-backed object store, memory), the command
// semantics built on top of it (Redis-like set/get/incr/expire and friends,
// bucket policies, expiry), and the URLs that name a store.
//
// A backend only provides transactions over plain entries; everything a user
// can observe about TTLs, conditions and policies is implemented once, in
// this package's operations, so every backend behaves the same. The
// conformance suite in conformance_test.go holds every backend to that.
//
// The package never prints, never reads configuration and never exits: it
// returns errors, many of them sentinels below that callers map to exit
// codes.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/livedict/livedict/pkg/ttl"
)

// Entry is one key's stored state.
type Entry struct {
	Bucket string
	Key    string
	Value  []byte
	// ExpiresAt is the deadline in Unix milliseconds; 0 means no expiry.
	ExpiresAt int64
	// Size is the value's length in bytes. Scan sets it even when it does
	// not load values.
	Size int64
	// Lost is set only by Reap, on an entry whose value the backend no
	// longer has: Redis freed it at its native deadline while nobody
	// listened for expire events (no hooks, no watcher), so no shadow copy
	// was kept. Value is then empty.
	Lost bool
}

// OnFull says what a full bucket does with a write that would add a key.
type OnFull string

// The bucket-full behaviours.
const (
	// Reject refuses the write with ErrBucketFull.
	Reject OnFull = "reject"
	// EvictSoonest deletes the live key with the nearest deadline to make room.
	EvictSoonest OnFull = "evict-soonest"
)

// Policy is a bucket's policy, kept in the store so every user of the store
// sees the same one.
type Policy struct {
	// MaxKeys limits the number of live keys; 0 means no limit.
	MaxKeys int64
	// DefaultTTL (ms) is given to keys written without an explicit TTL;
	// 0 means none.
	DefaultTTL int64
	// OnFull is what happens when a write would exceed MaxKeys.
	OnFull OnFull
}

// checkStored refuses a policy read back from the store that livedict
// never writes (SetPolicy callers validate theirs): a negative default TTL
// would give every new key a deadline already past, so a set would exit 0
// and lose the value, as would one over ttl.MaxDuration (now plus it can
// overflow into the past); a negative limit or an unknown on-full would
// refuse or evict on a rule nobody set.
func (p Policy) checkStored(bucket string) error {
	if p.MaxKeys < 0 || p.DefaultTTL < 0 || p.DefaultTTL > ttl.MaxDuration.Milliseconds() ||
		(p.OnFull != "" && p.OnFull != Reject && p.OnFull != EvictSoonest) {
		return damagedPolicy(fmt.Errorf("%w: the policy of bucket %q (max_keys %d, default_ttl_ms %d, on_full %q) is not one livedict writes; %s",
			ErrCorrupt, bucket, p.MaxKeys, p.DefaultTTL, string(p.OnFull), policyRepair(bucket)))
	}
	return nil
}

// DamagedPolicyError is a bucket policy damaged outside livedict: ErrCorrupt
// whose message already says how to set it anew, which repairs it. The
// command line shows no hint with it: the one for other damage (restore
// the whole store from a backup) contradicted that message.
type DamagedPolicyError struct{ err error }

func (e *DamagedPolicyError) Error() string { return e.err.Error() }
func (e *DamagedPolicyError) Unwrap() error { return e.err }

func damagedPolicy(err error) error { return &DamagedPolicyError{err} }

// policyRepair says how to replace a damaged policy: the command reads no
// old policy when all three are given (cmd/bucket.go).
func policyRepair(bucket string) string {
	return "set all three anew with 'livedict bucket policy " + bucket + " --max-keys N --default-ttl D --on-full reject'"
}

// IsZero reports whether p is the default policy.
func (p Policy) IsZero() bool {
	return p.MaxKeys == 0 && p.DefaultTTL == 0 && (p.OnFull == "" || p.OnFull == Reject)
}

// BucketInfo names a bucket and counts its live keys.
type BucketInfo struct {
	Name string
	Keys int64
}

// Stats summarises a store's contents.
type Stats struct {
	Keys        int64
	Buckets     int64
	KeysWithTTL int64
	// NextExpiry is the earliest live deadline (Unix ms), 0 when none.
	NextExpiry int64
}

// Info describes where a store lives.
type Info struct {
	Backend   string // "sqlite", "file", "memory", "redis"
	Location  string // file or folder path; redacted URL for redis; empty for memory
	SizeBytes int64
	// StateDir, when set, is the local folder for what belongs to the store
	// but is not data (locks, sockets, hook work dirs); stores that are not
	// a local file or folder (Redis) set it. Empty: beside the store.
	StateDir string
	// Real is Location with symlinks resolved, set when it differs (a
	// SQLite store named through a symlink to its file): where SQLite
	// keeps the store's side files, and where its state folder lives, so
	// that every name of one store finds the same locks.
	Real string
}

// Store is an opened livedict store. It is safe for concurrent use by
// several goroutines (their transactions run one at a time; a transaction
// must not start another), and any number of processes may open the same
// store.
type Store interface {
	// Update runs fn in a read-write transaction. All of fn's writes land
	// together or, if fn returns an error, none do. Concurrent writers (in
	// this or other processes) are serialised; a writer waits up to the
	// busy timeout and then fails with ErrBusy. Update and View may run fn
	// more than once (Redis runs a transaction that met another's commit
	// again), so fn starts afresh what it collects for the caller.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Info says which backend this is and where its data lives.
	Info() (Info, error)
	// Close releases the store.
	Close() error
}

// Tx is the set of primitives a backend provides inside a transaction. Every
// read sees only live entries: an entry whose deadline is at or before Now
// is treated as absent even if it has not been reaped yet.
type Tx interface {
	// Now is the transaction's time in Unix milliseconds, fixed when the
	// transaction began.
	Now() int64
	// Get returns the live entry for key in bucket.
	Get(bucket, key string) (Entry, bool, error)
	// Put creates or replaces an entry.
	Put(e Entry) error
	// Delete removes key from bucket (expired or not) and reports whether a
	// live entry was removed.
	Delete(bucket, key string) (bool, error)
	// Scan calls fn for each live entry in bucket whose key starts with
	// prefix, in bytewise key order. Value is left nil unless withValues.
	// fn returning ErrStopScan ends the scan without error.
	Scan(bucket, prefix string, withValues bool, fn func(Entry) error) error
	// ScanAfter is Scan over the keys strictly greater than after
	// (bytewise), so a caller can resume where it stopped without reading
	// again what it has seen. Keys fn adds or deletes ahead of the scan
	// may or may not be visited.
	ScanAfter(bucket, after string, withValues bool, fn func(Entry) error) error
	// Count returns the number of live keys in bucket.
	Count(bucket string) (int64, error)
	// CountAll returns the number of live keys in the whole store.
	CountAll() (int64, error)
	// Soonest returns the live entry in bucket with the nearest deadline.
	Soonest(bucket string) (Entry, bool, error)
	// Buckets lists buckets that hold live keys or have a policy, by name.
	Buckets() ([]BucketInfo, error)
	// Policy returns bucket's policy (the zero Policy when none is set).
	Policy(bucket string) (Policy, error)
	// SetPolicy stores bucket's policy; the zero Policy removes it.
	SetPolicy(bucket string, p Policy) error
	// DropBucket deletes every entry of bucket and its policy, and reports
	// whether the bucket had live keys or a policy.
	DropBucket(bucket string) (bool, error)
	// HasExpired reports whether any entry is expired but not yet reaped.
	HasExpired() (bool, error)
	// Reap deletes up to limit expired entries (limit <= 0: all of them),
	// calling fn (when not nil) with each before it goes, and returns how
	// many it deleted.
	Reap(limit int, fn func(Entry) error) (int, error)
	// Stats summarises the live contents.
	Stats() (Stats, error)
}

// Internal buckets hold livedict's own data (hook definitions, the event
// outbox, run logs, counters), so it can change in the same transaction as
// the user's keys. Their names start with '!', which ValidateBucket refuses,
// so no user can name one. Only Get, Put, Delete, Scan and ScanAfter accept
// them; their entries never expire and everything else (Buckets, Count,
// CountAll, Stats, Soonest, HasExpired, Reap, DropBucket, policies, imports
// and deadlines) neither sees nor touches them.

// IsInternal reports whether bucket is one of livedict's own (name starts with '!').
func IsInternal(bucket string) bool { return len(bucket) > 0 && bucket[0] == '!' }

// DeadlineLister is implemented by transactions that can list TTL deadlines in order,
// for the daemon's expiry schedule. IDs identify an entry's current incarnation.
//
// Deadlines returns up to limit deadlines of user entries, expired or not,
// ordered strictly after after in (At, ID) order, as ttl.Source.Next does.
// The ID is the row's rowid on SQLite, where the expiry index makes this a
// range read; on the file and memory backends it is the FNV-1a 64 hash of
// bucket+"\x00"+key and every call reads all deadlines and sorts them,
// which is fine at the sizes those backends are meant for.
type DeadlineLister interface {
	Deadlines(after ttl.Due, limit int) ([]ttl.Due, error)
}

// NextDeadlines runs Deadlines in a read-only transaction of s.
func NextDeadlines(ctx context.Context, s Store, after ttl.Due, limit int) ([]ttl.Due, error) {
	var out []ttl.Due
	err := s.View(ctx, func(tx Tx) error {
		dl, ok := tx.(DeadlineLister)
		if !ok {
			return fmt.Errorf("store: %T cannot list deadlines", tx)
		}
		var err error
		out, err = dl.Deadlines(after, limit)
		return err
	})
	return out, err
}

// ErrStopScan ends a Scan early without an error.
var ErrStopScan = errors.New("stop scan")

// Durability says how hard a commit tries to reach stable storage.
type Durability string

const (
	// Normal survives a crash of any process (kill -9) once a command has
	// returned.
	Normal Durability = "normal"
	// Full also survives power loss: every commit is fsynced.
	Full Durability = "full"
)

// Options configure Open.
type Options struct {
	// Clock gives transactions their time; nil means ttl.System.
	Clock ttl.Clock
	// BusyTimeout is how long a writer waits for another; 0 means 5s.
	BusyTimeout time.Duration
	// Durability of commits; "" means Normal.
	Durability Durability
	// Redis holds what only the Redis backend reads.
	Redis RedisOptions
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = ttl.System
	}
	if o.BusyTimeout == 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.Durability == "" {
		o.Durability = Normal
	}
	return o
}

// busyFor is the busy timeout as messages say it ("5s", "30d").
func (o Options) busyFor() string { return ttl.FormatDuration(o.BusyTimeout.Milliseconds()) }

// Locator is implemented by stores that can say where they live (Backend
// and Location) more cheaply than Info, which also measures the size, or
// from inside one of their own transactions.
type Locator interface {
	Locate() Info
}

// Locate returns s's Backend and Location, and may be called from inside
// one of s's transactions. Other fields may be left zero.
func Locate(s Store) (Info, error) {
	if l, ok := Base(s).(Locator); ok {
		return l.Locate(), nil
	}
	return s.Info()
}

// Clocker is implemented by stores whose deadlines are on another clock
// than the host's: a Redis store's are on the server's (redisclock.go).
type Clocker interface {
	Clock() ttl.Clock
}

// ClockOf returns the clock s's deadlines are on: s's own when it has one
// (Clocker), else c, the clock it was opened with. Whatever compares the
// time now with a deadline from the store (the daemon's schedule, a lock
// holder's renewals, a deliverer's claims) tells time by it.
func ClockOf(s Store, c ttl.Clock) ttl.Clock {
	if cl, ok := Base(s).(Clocker); ok {
		return cl.Clock()
	}
	return c
}

type noCreateKey struct{}

// NoCreate marks ctx's write transactions as ones that only change or
// remove what is there (del, expire, rename, bucket drop, hook rm): on a
// local store that does not exist yet they run on an empty one, as reads
// do, instead of creating it, so a mistyped --store leaves no stray store
// behind. A store that is there is written as usual.
func NoCreate(ctx context.Context) context.Context {
	return context.WithValue(ctx, noCreateKey{}, true)
}

func noCreate(ctx context.Context) bool { return ctx.Value(noCreateKey{}) != nil }

// Compacter is implemented by stores whose files keep bytes of what was
// rewritten or deleted where no erasing reaches them: SQLite leaves copies
// of cells in a page's unused space when it splits pages. Compact
// rewrites the file from its live content (VACUUM), so after a bucket is
// encrypted or rekeyed nothing of its old values remains there.
type Compacter interface {
	Compact(ctx context.Context) error
}

// Compact compacts s when its backend keeps such bytes (see Compacter),
// and reports whether it did.
func Compact(ctx context.Context, s Store) (bool, error) {
	c, ok := Base(s).(Compacter)
	if !ok {
		return false, nil
	}
	return true, c.Compact(ctx)
}

// Eraser is implemented by transactions whose backend would otherwise
// leave the bytes of values it replaces or deletes readable in its files:
// SQLite keeps a freed row's bytes in the page, and freed overflow pages
// on the freelist, until they are reused. EraseFreed makes what the
// transaction frees from then on be overwritten with zeros (SQLite's
// secure_delete), so encrypting a bucket's values leaves no plaintext in
// the database file. The file backend replaces whole files and Redis frees
// memory no client can read, so neither needs it.
type Eraser interface {
	EraseFreed() error
}
