package store

import (
	"context"
	"sort"
	"strings"
	"sync"

	"github.com/livedict/livedict/pkg/ttl"
)

// memory is the in-process backend: for the Go API and tests. It holds the
// same contract as the durable backends, minus durability.
type memory struct {
	mu       sync.RWMutex
	opts     Options
	buckets  map[string]map[string]Entry
	internal map[string]map[string]Entry // kept apart so no listing meets them
	policies map[string]Policy
}

// NewMemory returns an empty in-process store.
func NewMemory(opts Options) Store {
	return &memory{
		opts:     opts.withDefaults(),
		buckets:  map[string]map[string]Entry{},
		internal: map[string]map[string]Entry{},
		policies: map[string]Policy{},
	}
}

func (m *memory) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	tx := &memTx{m: m, now: m.opts.Clock.Now().UnixMilli()}
	if err := fn(tx); err != nil {
		tx.rollback()
		return err
	}
	if err := ctx.Err(); err != nil { // ended while fn ran: as the other backends
		tx.rollback()
		return err
	}
	return nil
}

func (m *memory) View(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return fn(&memTx{m: m, now: m.opts.Clock.Now().UnixMilli()})
}

func (m *memory) Info() (Info, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var size int64
	for _, space := range []map[string]map[string]Entry{m.buckets, m.internal} {
		for _, b := range space {
			for k, e := range b {
				size += int64(len(k) + len(e.Value))
			}
		}
	}
	return Info{Backend: "memory", SizeBytes: size}, nil
}

// Locate says where the store lives without taking the lock Info takes,
// so it may be called inside a transaction (see store.Locate).
func (m *memory) Locate() Info { return Info{Backend: "memory"} }

func (m *memory) Close() error { return nil }

// memTx records how to undo each change so a failed Update leaves nothing.
type memTx struct {
	m    *memory
	now  int64
	undo []func()
}

func (t *memTx) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		t.undo[i]()
	}
}

func (t *memTx) live(e Entry) bool { return e.ExpiresAt == 0 || e.ExpiresAt > t.now }

func (t *memTx) Now() int64 { return t.now }

// space is the map that holds bucket: user buckets and internal ones are
// kept apart.
func (t *memTx) space(bucket string) map[string]map[string]Entry {
	if IsInternal(bucket) {
		return t.m.internal
	}
	return t.m.buckets
}

func (t *memTx) Get(bucket, key string) (Entry, bool, error) {
	if err := checkInternalName(bucket); err != nil {
		return Entry{}, false, err
	}
	e, ok := t.space(bucket)[bucket][key]
	if !ok || !t.live(e) {
		return Entry{}, false, nil
	}
	e.Size = int64(len(e.Value))
	return e, true, nil
}

// restore puts back bucket/key as it was before a change.
func (t *memTx) restore(bucket, key string) func() {
	space := t.space(bucket)
	old, had := space[bucket][key]
	return func() {
		if had {
			t.bucket(bucket)[key] = old
		} else if b := space[bucket]; b != nil {
			delete(b, key)
			if len(b) == 0 {
				delete(space, bucket)
			}
		}
	}
}

func (t *memTx) bucket(name string) map[string]Entry {
	space := t.space(name)
	b := space[name]
	if b == nil {
		b = map[string]Entry{}
		space[name] = b
	}
	return b
}

func (t *memTx) Put(e Entry) error {
	if IsInternal(e.Bucket) {
		if err := checkInternalPut(e); err != nil {
			return err
		}
	}
	t.undo = append(t.undo, t.restore(e.Bucket, e.Key))
	e.Value = append([]byte{}, e.Value...)
	t.bucket(e.Bucket)[e.Key] = e
	return nil
}

func (t *memTx) Delete(bucket, key string) (bool, error) {
	if err := checkInternalName(bucket); err != nil {
		return false, err
	}
	space := t.space(bucket)
	e, ok := space[bucket][key]
	if !ok {
		return false, nil
	}
	t.undo = append(t.undo, t.restore(bucket, key))
	b := space[bucket]
	delete(b, key)
	if len(b) == 0 {
		delete(space, bucket)
	}
	return t.live(e), nil
}

func (t *memTx) Scan(bucket, prefix string, withValues bool, fn func(Entry) error) error {
	return t.scan(bucket, func(k string) bool { return strings.HasPrefix(k, prefix) }, withValues, fn)
}

func (t *memTx) ScanAfter(bucket, after string, withValues bool, fn func(Entry) error) error {
	return t.scan(bucket, func(k string) bool { return k > after }, withValues, fn)
}

// scan visits the live entries of bucket whose keys pass want, in key
// order. Keys are listed first so fn may write.
func (t *memTx) scan(bucket string, want func(string) bool, withValues bool, fn func(Entry) error) error {
	if err := checkInternalName(bucket); err != nil {
		return err
	}
	space := t.space(bucket)
	var keys []string
	for k, e := range space[bucket] {
		if want(k) && t.live(e) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		e, ok := space[bucket][k]
		if !ok || !t.live(e) {
			continue // fn deleted it
		}
		e.Size = int64(len(e.Value))
		if !withValues {
			e.Value = nil
		}
		if err := fn(e); err == ErrStopScan {
			return nil
		} else if err != nil {
			return err
		}
	}
	return nil
}

func (t *memTx) Count(bucket string) (int64, error) {
	if err := checkUserBucket(bucket); err != nil {
		return 0, err
	}
	var n int64
	for _, e := range t.m.buckets[bucket] {
		if t.live(e) {
			n++
		}
	}
	return n, nil
}

func (t *memTx) CountAll() (int64, error) {
	var n int64
	for name := range t.m.buckets {
		c, _ := t.Count(name)
		n += c
	}
	return n, nil
}

func (t *memTx) Soonest(bucket string) (Entry, bool, error) {
	if err := checkUserBucket(bucket); err != nil {
		return Entry{}, false, err
	}
	var best Entry
	found := false
	for _, e := range t.m.buckets[bucket] {
		if e.ExpiresAt == 0 || !t.live(e) {
			continue
		}
		if !found || e.ExpiresAt < best.ExpiresAt || e.ExpiresAt == best.ExpiresAt && e.Key < best.Key {
			best, found = e, true
		}
	}
	return best, found, nil
}

func (t *memTx) Buckets() ([]BucketInfo, error) {
	names := map[string]bool{}
	for name := range t.m.buckets {
		names[name] = true
	}
	for name := range t.m.policies {
		names[name] = true
	}
	var out []BucketInfo
	for name := range names {
		n, _ := t.Count(name)
		if n > 0 || !t.m.policies[name].IsZero() {
			out = append(out, BucketInfo{Name: name, Keys: n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (t *memTx) Policy(bucket string) (Policy, error) {
	if err := checkUserBucket(bucket); err != nil {
		return Policy{}, err
	}
	return t.m.policies[bucket], nil
}

func (t *memTx) SetPolicy(bucket string, p Policy) error {
	if err := checkUserBucket(bucket); err != nil {
		return err
	}
	old, had := t.m.policies[bucket]
	t.undo = append(t.undo, func() {
		if had {
			t.m.policies[bucket] = old
		} else {
			delete(t.m.policies, bucket)
		}
	})
	if p.IsZero() {
		delete(t.m.policies, bucket)
	} else {
		t.m.policies[bucket] = p
	}
	return nil
}

func (t *memTx) DropBucket(bucket string) (bool, error) {
	if err := checkUserBucket(bucket); err != nil {
		return false, err
	}
	n, _ := t.Count(bucket)
	had := n > 0 || !t.m.policies[bucket].IsZero()
	for k := range t.m.buckets[bucket] {
		if _, err := t.Delete(bucket, k); err != nil {
			return false, err
		}
	}
	if err := t.SetPolicy(bucket, Policy{}); err != nil {
		return false, err
	}
	return had, nil
}

func (t *memTx) HasExpired() (bool, error) {
	for _, b := range t.m.buckets {
		for _, e := range b {
			if !t.live(e) {
				return true, nil
			}
		}
	}
	return false, nil
}

func (t *memTx) Reap(limit int, fn func(Entry) error) (int, error) {
	var expired []Entry
	for _, b := range t.m.buckets {
		for _, e := range b {
			if !t.live(e) {
				expired = append(expired, e)
			}
		}
	}
	// Oldest deadline first, like the durable backends' index order.
	sort.Slice(expired, func(i, j int) bool {
		if expired[i].ExpiresAt != expired[j].ExpiresAt {
			return expired[i].ExpiresAt < expired[j].ExpiresAt
		}
		if expired[i].Bucket != expired[j].Bucket {
			return expired[i].Bucket < expired[j].Bucket
		}
		return expired[i].Key < expired[j].Key
	})
	if limit > 0 && len(expired) > limit {
		expired = expired[:limit]
	}
	for _, e := range expired {
		if fn != nil {
			if err := fn(e); err != nil {
				return 0, err
			}
		}
		if _, err := t.Delete(e.Bucket, e.Key); err != nil {
			return 0, err
		}
	}
	return len(expired), nil
}

func (t *memTx) Stats() (Stats, error) {
	var s Stats
	for _, b := range t.m.buckets {
		counted := false
		for _, e := range b {
			if !t.live(e) {
				continue
			}
			if !counted {
				s.Buckets++
				counted = true
			}
			s.Keys++
			if e.ExpiresAt != 0 {
				s.KeysWithTTL++
				if s.NextExpiry == 0 || e.ExpiresAt < s.NextExpiry {
					s.NextExpiry = e.ExpiresAt
				}
			}
		}
	}
	return s, nil
}

// Deadlines lists user deadlines by reading them all: memory stores are
// small, and the daemon does not run on them.
func (t *memTx) Deadlines(after ttl.Due, limit int) ([]ttl.Due, error) {
	if limit <= 0 {
		return nil, nil
	}
	var all []ttl.Due
	for name, b := range t.m.buckets {
		for k, e := range b {
			if e.ExpiresAt != 0 {
				all = append(all, ttl.Due{At: e.ExpiresAt, ID: deadlineID(name, k)})
			}
		}
	}
	return deadlinesAfter(all, after, limit), nil
}
