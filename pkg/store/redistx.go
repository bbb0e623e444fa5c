package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livedict/livedict/pkg/ttl"
)

// redisBucket is what a transaction knows of one bucket: its buffered
// writes and, once a read needed the whole bucket, all of its entries.
// For a user bucket the entries in m are metadata (Value nil); values
// read from the server are kept in vals.
type redisBucket struct {
	loaded   bool
	m        map[string]Entry  // every entry, expired or not, when loaded
	dirty    map[string]*Entry // buffered writes; nil deletes
	dropped  bool              // the bucket was emptied before the dirty writes
	dropKeys []string          // keys whose deadlines a drop removes from the index
	metas    map[string]*Entry // user buckets: metadata read key by key; nil: none
	srv      map[string]bool   // user buckets, once loaded: the keys the server has
	vals     map[string]redisVal
	// order is LoadMany's entries in the order given (see inKeyOrder).
	order []*Entry
}

// inKeyOrder returns the bucket's n buffered writes in key order without
// sorting them, when they are LoadMany's entries, given in key order (an
// export's are) and not changed since; nil otherwise. Sorting a million
// keys was a sixth of a large import's CPU time.
func (b *redisBucket) inKeyOrder(n int) []*Entry {
	if len(b.order) != n {
		return nil
	}
	for i, e := range b.order {
		if b.dirty[e.Key] != e || i > 0 && b.order[i-1].Key >= e.Key {
			return nil
		}
	}
	return b.order
}

// redisVal is a user entry's value as read from the server; ok is false
// when its STRING key is gone (Redis freed it at its native deadline).
type redisVal struct {
	v  []byte
	ok bool
}

// overlay lays the transaction's buffered writes over the entries read
// from the server, and marks the bucket loaded.
func (b *redisBucket) overlay() {
	for k, e := range b.dirty {
		if e == nil {
			delete(b.m, k)
		} else {
			b.m[k] = *e
		}
	}
	b.loaded = true
}

// redisTx runs on one connection; its reads check the store's fence
// (see redisread.go).
type redisTx struct {
	s     *redisStore
	ctx   context.Context
	cn    *redisConn
	rtx   *redis.Conn // cn's
	write bool
	now   int64
	// deadline: the busy timeout's end, for a commit the server holds
	// (redispause.go).
	deadline time.Time

	buckets map[string]*redisBucket
	names   map[string]bool // user buckets named in the server's set, once read

	policies map[string]Policy // once read
	// badPolicy: buckets whose stored policy is damaged. Only that
	// bucket's commands fail (exit 3), not every command on the store,
	// and setting or dropping the policy repairs it.
	badPolicy map[string]error
	polDirty  map[string]bool
	// listen, once known, says whether anyone listens for expire events
	// (hook definitions exist, or a watcher is subscribed): then entries
	// with a deadline get a shadow copy.
	listen *bool

	// See redisread.go.
	prefetched bool   // the first read round trip carried the prefetch
	fence      string // the fence every read saw ("" missing)
	fenceKnown bool
	dueKnown   bool // due: the deadline index had an entry due at the prefetch
	due        bool
	retry      bool // a read saw the fence move: the transaction must run again
	// sent: the commit began sending writes; before that a transaction
	// whose connection broke can run again on a new one.
	sent bool
	// abandoned: the commit gave up on a server that held it and left its
	// connection to the goroutine still waiting on it (redispause.go).
	abandoned bool
}

func newRedisTx(s *redisStore, ctx context.Context, cn *redisConn, write bool) *redisTx {
	return &redisTx{
		s: s, ctx: ctx, cn: cn, rtx: cn.Conn, write: write,
		now:      s.Clock().Now().UnixMilli(),
		buckets:  map[string]*redisBucket{},
		polDirty: map[string]bool{},
	}
}

var errRedisReadOnly = errors.New("store: write in a read-only transaction")

func (t *redisTx) live(e Entry) bool { return e.ExpiresAt == 0 || e.ExpiresAt > t.now }

func (t *redisTx) Now() int64 { return t.now }

func (t *redisTx) bucket(name string) *redisBucket {
	b := t.buckets[name]
	if b == nil {
		b = &redisBucket{dirty: map[string]*Entry{}}
		t.buckets[name] = b
	}
	return b
}

// load reads the whole bucket once (a user bucket's metadata, an internal
// bucket's entries), then lays the buffered writes over it.
func (t *redisTx) load(name string) (*redisBucket, error) {
	b := t.bucket(name)
	if b.loaded {
		return b, nil
	}
	user := !IsInternal(name)
	key := t.s.bucketKey(name)
	if user {
		key = t.s.metaKey(name)
	}
	var cmd *redis.MapStringStringCmd
	if err := t.pipe(func(p redis.Pipeliner) { cmd = p.HGetAll(t.ctx, key) }); err != nil {
		return nil, err
	}
	if b.loaded { // the prefetch read it
		return b, nil
	}
	all, err := cmd.Result()
	if err != nil {
		return nil, t.s.wrap(err)
	}
	b.m = make(map[string]Entry, len(all))
	if user {
		b.srv = make(map[string]bool, len(all))
	}
	for k, raw := range all {
		var e Entry
		if user {
			b.srv[k] = true
			e, err = decodeRedisMeta(name, k, raw)
		} else {
			e, err = decodeRedisEntry(name, k, raw)
		}
		if err != nil {
			return nil, err
		}
		b.m[k] = e
	}
	b.overlay()
	return b, nil
}

// raw returns key's stored entry, expired or not. For a user bucket it
// carries the value, and an entry whose value Redis already freed is
// absent.
func (t *redisTx) raw(bucket, key string) (Entry, bool, error) {
	b := t.bucket(bucket)
	if e, ok := b.dirty[key]; ok {
		if e == nil {
			return Entry{}, false, nil
		}
		return *e, true, nil
	}
	if IsInternal(bucket) {
		if b.loaded {
			e, ok := b.m[key]
			return e, ok, nil
		}
		var cmd *redis.StringCmd
		if err := t.pipe(func(p redis.Pipeliner) { cmd = p.HGet(t.ctx, t.s.bucketKey(bucket), key) }); err != nil {
			return Entry{}, false, err
		}
		if b.loaded { // the prefetch read it
			e, ok := b.m[key]
			return e, ok, nil
		}
		v, err := cmd.Result()
		if err == redis.Nil {
			return Entry{}, false, nil
		}
		if err != nil {
			return Entry{}, false, t.s.wrap(err)
		}
		e, err := decodeRedisEntry(bucket, key, v)
		return e, err == nil, err
	}
	var meta *Entry
	if b.loaded {
		if e, ok := b.m[key]; ok {
			meta = &e
		}
	} else if m, ok := b.metas[key]; ok {
		meta = m
	} else {
		if err := t.readEntry(b, bucket, key); err != nil {
			return Entry{}, false, err
		}
		meta = b.metas[key]
	}
	if meta == nil {
		return Entry{}, false, nil
	}
	v, err := t.value(b, bucket, key)
	if err != nil {
		return Entry{}, false, err
	}
	if !v.ok {
		return Entry{}, false, t.missingValue(*meta)
	}
	e := *meta
	e.Value = v.v
	return e, true, nil
}

// readEntry reads one user key's metadata and value in one round trip,
// keeping what it read.
func (t *redisTx) readEntry(b *redisBucket, bucket, key string) error {
	var meta, val *redis.StringCmd
	err := t.pipe(func(p redis.Pipeliner) {
		meta = p.HGet(t.ctx, t.s.metaKey(bucket), key)
		val = p.Get(t.ctx, t.s.valueKey(bucket, key))
	})
	if err != nil {
		return err
	}
	if b.metas == nil {
		b.metas = map[string]*Entry{}
	}
	if b.vals == nil {
		b.vals = map[string]redisVal{}
	}
	m, err := meta.Result()
	if err != nil && err != redis.Nil {
		return t.s.wrap(err)
	}
	b.metas[key] = nil
	if err == nil {
		e, err := decodeRedisMeta(bucket, key, m)
		if err != nil {
			// Not nil: the server has an entry, which a del must remove.
			delete(b.metas, key)
			return err
		}
		b.metas[key] = &e
	}
	v, err := val.Result()
	if err != nil && err != redis.Nil && !strings.HasPrefix(err.Error(), "WRONGTYPE") {
		return t.s.wrap(err)
	}
	// Not a string: as MGET reports it (nil), for missingValue to judge.
	b.vals[key] = redisVal{v: []byte(v), ok: err == nil}
	return nil
}

// value returns a user entry's value as the server has it (one GET, the
// first time).
func (t *redisTx) value(b *redisBucket, bucket, key string) (redisVal, error) {
	if v, ok := b.vals[key]; ok {
		return v, nil
	}
	if err := t.fetchValues(b, bucket, []string{key}); err != nil {
		return redisVal{}, err
	}
	return b.vals[key], nil
}

// fetchValues reads the values of keys (a user bucket's) not read yet,
// with MGET in batches.
func (t *redisTx) fetchValues(b *redisBucket, bucket string, keys []string) error {
	if b.vals == nil {
		b.vals = map[string]redisVal{}
	}
	var want []string
	for _, k := range keys {
		if _, ok := b.vals[k]; !ok {
			want = append(want, k)
		}
	}
	const batch = 1000
	for len(want) > 0 {
		n := min(batch, len(want))
		names := make([]string, n)
		for i, k := range want[:n] {
			names[i] = t.s.valueKey(bucket, k)
		}
		var cmd *redis.SliceCmd
		if err := t.pipe(func(p redis.Pipeliner) { cmd = p.MGet(t.ctx, names...) }); err != nil {
			return err
		}
		vs, err := cmd.Result()
		if err != nil {
			return t.s.wrap(err)
		}
		for i, k := range want[:n] {
			v, ok := vs[i].(string)
			b.vals[k] = redisVal{v: []byte(v), ok: ok}
		}
		want = want[n:]
	}
	return nil
}

// missingValue judges an entry whose metadata the server has but whose
// value it does not give: a key with a deadline may have been freed by the
// server's own clock (nil, so it reads as expired), but one without can
// only have been deleted, evicted (a maxmemory-policy other than
// noeviction) or replaced by another type outside livedict: the store is
// damaged, and a read or an export must say so, not skip the key; del
// still deletes it, which is how a user clears it.
func (t *redisTx) missingValue(meta Entry) error {
	if meta.ExpiresAt != 0 {
		return nil
	}
	return fmt.Errorf("%w: redis %s: the value of %q in bucket %q is missing or not a string (deleted, evicted or replaced outside livedict; the server must run with maxmemory-policy noeviction)",
		ErrDamagedKey, t.s.target.Addr, meta.Key, meta.Bucket)
}

func (t *redisTx) Get(bucket, key string) (Entry, bool, error) {
	if err := checkInternalName(bucket); err != nil {
		return Entry{}, false, err
	}
	e, ok, err := t.raw(bucket, key)
	if err != nil || !ok || !t.live(e) {
		return Entry{}, false, err
	}
	e.Value = append([]byte{}, e.Value...)
	e.Size = int64(len(e.Value))
	return e, true, nil
}

func (t *redisTx) set(bucket, key string, e *Entry) {
	b := t.bucket(bucket)
	b.dirty[key] = e
	if b.loaded {
		if e == nil {
			delete(b.m, key)
		} else {
			b.m[key] = *e
		}
	}
}

// redisMaxValue is the largest value Redis takes by default
// (proto-max-bulk-len): a larger one makes the server drop the connection.
const redisMaxValue = 512 << 20

func checkRedisValue(e Entry) error {
	if len(e.Value) > redisMaxValue {
		return fmt.Errorf("%w: %q is %d bytes; a Redis value is at most 512 MiB (proto-max-bulk-len)", ErrValueTooLarge, e.Key, len(e.Value))
	}
	return nil
}

func (t *redisTx) Put(e Entry) error {
	if !t.write {
		return errRedisReadOnly
	}
	if err := checkRedisValue(e); err != nil {
		return err
	}
	if IsInternal(e.Bucket) {
		if err := checkInternalPut(e); err != nil {
			return err
		}
	}
	e.Value = append([]byte{}, e.Value...)
	e.Size = int64(len(e.Value))
	t.set(e.Bucket, e.Key, &e)
	return nil
}

func (t *redisTx) Delete(bucket, key string) (bool, error) {
	if err := checkInternalName(bucket); err != nil {
		return false, err
	}
	if !t.write {
		return false, errRedisReadOnly
	}
	e, ok, err := t.raw(bucket, key)
	if errors.Is(err, ErrDamagedKey) {
		// Deleting is how a user clears a key damaged outside livedict.
		t.set(bucket, key, nil)
		return true, nil
	}
	if err != nil || !ok {
		return false, err
	}
	t.set(bucket, key, nil)
	return t.live(e), nil
}

func (t *redisTx) Scan(bucket, prefix string, withValues bool, fn func(Entry) error) error {
	return t.scan(bucket, func(k string) bool { return strings.HasPrefix(k, prefix) }, withValues, fn)
}

func (t *redisTx) ScanAfter(bucket, after string, withValues bool, fn func(Entry) error) error {
	return t.scan(bucket, func(k string) bool { return k > after }, withValues, fn)
}

func (t *redisTx) scan(bucket string, want func(string) bool, withValues bool, fn func(Entry) error) error {
	if err := checkInternalName(bucket); err != nil {
		return err
	}
	b, err := t.load(bucket)
	if err != nil {
		return err
	}
	user := !IsInternal(bucket)
	var keys, fetch []string
	for k, e := range b.m {
		if want(k) && t.live(e) {
			keys = append(keys, k)
			if _, dirty := b.dirty[k]; user && withValues && !dirty {
				fetch = append(fetch, k)
			}
		}
	}
	sort.Strings(keys)
	if len(fetch) > 0 {
		sort.Strings(fetch)
		if err := t.fetchValues(b, bucket, fetch); err != nil {
			return err
		}
	}
	var gone map[string]bool
	if user && !withValues {
		if gone, err = t.valuesGone(b, bucket, keys); err != nil {
			return err
		}
	}
	for _, k := range keys {
		e, ok := b.m[k]
		if !ok || !t.live(e) {
			continue // fn deleted it
		}
		if gone[k] {
			continue // Redis freed it: expired by the server's clock
		}
		if !withValues {
			if _, dirty := b.dirty[k]; dirty || !user {
				e.Size = int64(len(e.Value))
			}
			e.Value = nil
		} else {
			if _, dirty := b.dirty[k]; user && !dirty {
				v, err := t.value(b, bucket, k)
				if err != nil {
					return err
				}
				if !v.ok {
					if err := t.missingValue(e); err != nil {
						return err
					}
					continue // Redis freed it: expired by the server's clock
				}
				e.Value = v.v
			}
			e.Value = append([]byte{}, e.Value...)
			e.Size = int64(len(e.Value))
		}
		if err := fn(e); err == ErrStopScan {
			return nil
		} else if err != nil {
			return err
		}
	}
	return nil
}

// valuesGone says which of keys (live by their metadata) have a deadline
// and a value Redis already freed: the server's clock ran ahead of this
// host's, or the value's TTL was changed outside livedict. get, exists,
// export and a scan with values take such a key for expired; keys and
// list, which read only the metadata, listed it, so that a script's
// 'livedict get' of a listed key exited 1. One round trip (EXISTS, in
// batches), only for keys with a deadline the transaction did not write.
func (t *redisTx) valuesGone(b *redisBucket, bucket string, keys []string) (map[string]bool, error) {
	var timed []string
	for _, k := range keys {
		if _, dirty := b.dirty[k]; !dirty && b.m[k].ExpiresAt != 0 {
			if v, known := b.vals[k]; known {
				if !v.ok {
					timed = append(timed, k) // read as missing: ask again below
				}
				continue
			}
			timed = append(timed, k)
		}
	}
	if len(timed) == 0 {
		return nil, nil
	}
	gone := map[string]bool{}
	const batch = 10000
	for len(timed) > 0 {
		n := min(batch, len(timed))
		cmds := make([]*redis.IntCmd, n)
		if err := t.pipe(func(p redis.Pipeliner) {
			for i, k := range timed[:n] {
				cmds[i] = p.Exists(t.ctx, t.s.valueKey(bucket, k))
			}
		}); err != nil {
			return nil, err
		}
		for i, k := range timed[:n] {
			c, err := cmds[i].Result()
			if err != nil {
				return nil, t.s.wrap(err)
			}
			if c == 0 {
				gone[k] = true
			}
		}
		timed = timed[n:]
	}
	return gone, nil
}

func (t *redisTx) Count(bucket string) (int64, error) {
	if err := checkUserBucket(bucket); err != nil {
		return 0, err
	}
	b, err := t.load(bucket)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range b.m {
		if t.live(e) {
			n++
		}
	}
	return n, nil
}

// userBuckets names every user bucket that may hold entries or a policy.
func (t *redisTx) userBuckets() ([]string, error) {
	if t.names == nil {
		var cmd *redis.StringSliceCmd
		if err := t.pipe(func(p redis.Pipeliner) { cmd = p.SMembers(t.ctx, t.s.bucketsKey()) }); err != nil {
			return nil, err
		}
		names, err := cmd.Result()
		if err != nil {
			return nil, t.s.wrap(err)
		}
		t.names = map[string]bool{}
		for _, n := range names {
			t.names[n] = true
		}
	}
	pol, err := t.loadPolicies()
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for n := range t.names {
		set[n] = true
	}
	for n := range t.buckets {
		if !IsInternal(n) {
			set[n] = true
		}
	}
	for n := range pol {
		set[n] = true
	}
	for n := range t.badPolicy {
		set[n] = true
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

func (t *redisTx) CountAll() (int64, error) {
	names, err := t.userBuckets()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, n := range names {
		c, err := t.Count(n)
		if err != nil {
			return 0, err
		}
		total += c
	}
	return total, nil
}

func (t *redisTx) Soonest(bucket string) (Entry, bool, error) {
	if err := checkUserBucket(bucket); err != nil {
		return Entry{}, false, err
	}
	b, err := t.load(bucket)
	if err != nil {
		return Entry{}, false, err
	}
	var cands []Entry
	for _, e := range b.m {
		if e.ExpiresAt != 0 && t.live(e) {
			cands = append(cands, e)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].ExpiresAt != cands[j].ExpiresAt {
			return cands[i].ExpiresAt < cands[j].ExpiresAt
		}
		return cands[i].Key < cands[j].Key
	})
	for _, c := range cands {
		e, ok, err := t.raw(bucket, c.Key)
		if err != nil {
			return Entry{}, false, err
		}
		if ok { // else Redis freed it already: the next one
			e.Value = append([]byte{}, e.Value...)
			e.Size = int64(len(e.Value))
			return e, true, nil
		}
	}
	return Entry{}, false, nil
}

func (t *redisTx) Buckets() ([]BucketInfo, error) {
	names, err := t.userBuckets()
	if err != nil {
		return nil, err
	}
	var out []BucketInfo
	for _, name := range names {
		n, err := t.Count(name)
		if err != nil {
			return nil, err
		}
		if n > 0 || !t.policies[name].IsZero() || t.badPolicy[name] != nil {
			out = append(out, BucketInfo{Name: name, Keys: n})
		}
	}
	return out, nil
}

func (t *redisTx) loadPolicies() (map[string]Policy, error) {
	if t.policies != nil {
		return t.policies, nil
	}
	var cmd *redis.MapStringStringCmd
	if err := t.pipe(func(p redis.Pipeliner) { cmd = p.HGetAll(t.ctx, t.s.policyKey()) }); err != nil {
		return nil, err
	}
	if t.policies != nil { // the prefetch read them
		return t.policies, nil
	}
	all, err := cmd.Result()
	if err != nil {
		return nil, t.s.wrap(err)
	}
	if err := t.fillPolicies(all); err != nil {
		return nil, err
	}
	return t.policies, nil
}

func (t *redisTx) Policy(bucket string) (Policy, error) {
	if err := checkUserBucket(bucket); err != nil {
		return Policy{}, err
	}
	pol, err := t.loadPolicies()
	if err != nil {
		return Policy{}, err
	}
	if err := t.badPolicy[bucket]; err != nil {
		return Policy{}, err
	}
	return pol[bucket], nil
}

func (t *redisTx) SetPolicy(bucket string, p Policy) error {
	if err := checkUserBucket(bucket); err != nil {
		return err
	}
	if !t.write {
		return errRedisReadOnly
	}
	pol, err := t.loadPolicies()
	if err != nil {
		return err
	}
	if p.IsZero() {
		delete(pol, bucket)
	} else {
		pol[bucket] = p
	}
	delete(t.badPolicy, bucket)
	t.polDirty[bucket] = true
	return nil
}

func (t *redisTx) DropBucket(bucket string) (bool, error) {
	if err := checkUserBucket(bucket); err != nil {
		return false, err
	}
	if !t.write {
		return false, errRedisReadOnly
	}
	n, err := t.Count(bucket)
	if err != nil {
		return false, err
	}
	p, err := t.Policy(bucket)
	if errors.Is(err, ErrCorrupt) {
		// Dropping the bucket removes its damaged policy too.
		p, err = Policy{MaxKeys: -1}, nil
	}
	if err != nil {
		return false, err
	}
	had := n > 0 || !p.IsZero()
	old := t.buckets[bucket]
	drop := &redisBucket{loaded: true, m: map[string]Entry{}, dirty: map[string]*Entry{}, dropped: true, dropKeys: old.dropKeys}
	for k := range old.m {
		drop.dropKeys = append(drop.dropKeys, k)
	}
	for k := range old.dirty {
		drop.dropKeys = append(drop.dropKeys, k)
	}
	t.buckets[bucket] = drop
	if err := t.SetPolicy(bucket, Policy{}); err != nil {
		return false, err
	}
	return had, nil
}

// expired lists up to limit (<= 0: all) expired user entries, oldest
// deadline first, with their values: the value key's while Redis has not
// freed it, else the shadow copy's, else none (Lost). The server's
// deadline index {P}:dl (score = deadline, member = bucket NUL key) finds
// them without reading any bucket; what this transaction changed is
// checked in its own state.
func (t *redisTx) expired(limit int) ([]Entry, error) {
	page := int64(512)
	if limit > 0 && limit < 128 {
		page = 128 // HasExpired, a small lazy reap: no need to read 512
	}
	var out []Entry
	for offset := int64(0); ; offset += page {
		var cmd *redis.StringSliceCmd
		err := t.pipe(func(p redis.Pipeliner) {
			cmd = p.ZRangeByScore(t.ctx, t.s.deadlineKey(), &redis.ZRangeBy{
				Min: "-inf", Max: strconv.FormatInt(t.now, 10), Offset: offset, Count: page,
			})
		})
		if err != nil {
			return nil, err
		}
		members, err := cmd.Result()
		if err != nil {
			return nil, t.s.wrap(err)
		}
		type found struct {
			bucket, key string
			meta        *redis.StringCmd
			val, shadow *redis.StringCmd
		}
		var todo []found
		if len(members) > 0 {
			err = t.pipe(func(p redis.Pipeliner) {
				for _, m := range members {
					bucket, key, ok := strings.Cut(m, "\x00")
					if !ok || IsInternal(bucket) {
						continue
					}
					if b := t.buckets[bucket]; b != nil {
						if _, dirty := b.dirty[key]; dirty || b.dropped {
							continue // this transaction's own state: below
						}
					}
					todo = append(todo, found{bucket: bucket, key: key,
						meta:   p.HGet(t.ctx, t.s.metaKey(bucket), key),
						val:    p.Get(t.ctx, t.s.valueKey(bucket, key)),
						shadow: p.Get(t.ctx, t.s.shadowKey(bucket, key)),
					})
				}
			})
			if err != nil {
				return nil, err
			}
		}
		for _, f := range todo {
			raw, err := f.meta.Result()
			if err == redis.Nil {
				continue // the index is ahead of a delete: nothing to reap
			}
			if err != nil {
				return nil, t.s.wrap(err)
			}
			e, err := decodeRedisMeta(f.bucket, f.key, raw)
			if errors.Is(err, ErrDamagedKey) {
				// Left for its reader to report and del to clear:
				// failing here would fail every write's lazy reap,
				// that del's included, and the daemon's, store-wide.
				continue
			}
			if err != nil {
				return nil, err
			}
			if t.live(e) {
				continue
			}
			if v, err := f.val.Result(); err == nil {
				e.Value = []byte(v)
			} else if v, err := f.shadow.Result(); err == nil {
				e.Value = []byte(v)
			} else {
				e.Value, e.Lost = []byte{}, true
			}
			out = append(out, e)
		}
		if int64(len(members)) < page || limit > 0 && len(out) >= limit {
			break
		}
	}
	for name, b := range t.buckets {
		if IsInternal(name) {
			continue
		}
		for _, e := range b.dirty {
			if e != nil && !t.live(*e) {
				out = append(out, *e)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ExpiresAt != out[j].ExpiresAt {
			return out[i].ExpiresAt < out[j].ExpiresAt
		}
		if out[i].Bucket != out[j].Bucket {
			return out[i].Bucket < out[j].Bucket
		}
		return out[i].Key < out[j].Key
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (t *redisTx) HasExpired() (bool, error) {
	if !t.prefetched {
		if err := t.pipe(nil); err != nil {
			return false, err
		}
	}
	if !t.due {
		// Nothing was due at the prefetch: only this transaction's own
		// writes may be.
		for name, b := range t.buckets {
			if IsInternal(name) {
				continue
			}
			for _, e := range b.dirty {
				if e != nil && !t.live(*e) {
					return true, nil
				}
			}
		}
		return false, nil
	}
	exp, err := t.expired(1)
	return len(exp) > 0, err
}

func (t *redisTx) Reap(limit int, fn func(Entry) error) (int, error) {
	if !t.write {
		return 0, errRedisReadOnly
	}
	exp, err := t.expired(limit)
	if err != nil {
		return 0, err
	}
	for _, e := range exp {
		if fn != nil {
			e.Value = append([]byte{}, e.Value...)
			if err := fn(e); err != nil {
				return 0, err
			}
		}
		t.set(e.Bucket, e.Key, nil)
	}
	return len(exp), nil
}

func (t *redisTx) Stats() (Stats, error) {
	names, err := t.userBuckets()
	if err != nil {
		return Stats{}, err
	}
	var s Stats
	for _, name := range names {
		b, err := t.load(name)
		if err != nil {
			return Stats{}, err
		}
		counted := false
		for _, e := range b.m {
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

// Deadlines reads the deadline index {P}:dl from after on: the deadlines
// tied at after.At, up to limit later ones, and the ties of the last of
// those, so that the (At, ID) order is exact however many keys share a
// millisecond. IDs are FNV-1a of bucket NUL key, as on the file and
// memory backends. A transaction that changed user entries reads every
// bucket instead, to see its own writes.
func (t *redisTx) Deadlines(after ttl.Due, limit int) ([]ttl.Due, error) {
	if limit <= 0 {
		return nil, nil
	}
	for name, b := range t.buckets {
		if !IsInternal(name) && (b.dropped || len(b.dirty) > 0) {
			return t.deadlinesAll(after, limit)
		}
	}
	at := strconv.FormatInt(after.At, 10)
	var ties, later *redis.ZSliceCmd
	err := t.pipe(func(p redis.Pipeliner) {
		ties = p.ZRangeByScoreWithScores(t.ctx, t.s.deadlineKey(), &redis.ZRangeBy{Min: at, Max: at})
		later = p.ZRangeByScoreWithScores(t.ctx, t.s.deadlineKey(), &redis.ZRangeBy{Min: "(" + at, Max: "+inf", Count: int64(limit)})
	})
	if err != nil {
		return nil, err
	}
	zs := append(ties.Val(), later.Val()...)
	if err := errors.Join(ties.Err(), later.Err()); err != nil {
		return nil, t.s.wrap(err)
	}
	if n := len(later.Val()); n == limit {
		last := strconv.FormatFloat(later.Val()[n-1].Score, 'f', -1, 64)
		var more *redis.ZSliceCmd
		if err := t.pipe(func(p redis.Pipeliner) {
			more = p.ZRangeByScoreWithScores(t.ctx, t.s.deadlineKey(), &redis.ZRangeBy{Min: last, Max: last})
		}); err != nil {
			return nil, err
		}
		if err := more.Err(); err != nil {
			return nil, t.s.wrap(err)
		}
		zs = append(zs, more.Val()...)
	}
	all := make([]ttl.Due, 0, len(zs))
	seen := make(map[string]bool, len(zs))
	for _, z := range zs {
		m, _ := z.Member.(string)
		bucket, key, ok := strings.Cut(m, "\x00")
		if !ok || seen[m] {
			continue
		}
		seen[m] = true
		all = append(all, ttl.Due{At: int64(z.Score), ID: deadlineID(bucket, key)})
	}
	return deadlinesAfter(all, after, limit), nil
}

// deadlinesAll is Deadlines read from every bucket's metadata.
func (t *redisTx) deadlinesAll(after ttl.Due, limit int) ([]ttl.Due, error) {
	names, err := t.userBuckets()
	if err != nil {
		return nil, err
	}
	var all []ttl.Due
	for _, name := range names {
		b, err := t.load(name)
		if err != nil {
			return nil, err
		}
		for k, e := range b.m {
			if e.ExpiresAt != 0 {
				all = append(all, ttl.Due{At: e.ExpiresAt, ID: deadlineID(name, k)})
			}
		}
	}
	return deadlinesAfter(all, after, limit), nil
}

func (t *redisTx) dirty() bool {
	if len(t.polDirty) > 0 {
		return true
	}
	for _, b := range t.buckets {
		if b.dropped || len(b.dirty) > 0 {
			return true
		}
	}
	return false
}

// listeners reports whether anyone listens for expire events: hook
// definitions exist or a watcher is subscribed, as the prefetch read.
func (t *redisTx) listeners() (bool, error) {
	if t.listen == nil {
		if err := t.pipe(nil); err != nil {
			return false, err
		}
	}
	return *t.listen, nil
}

// needShadows reports whether the commit writes a user entry with a
// deadline while Redis expires values natively.
func (t *redisTx) needShadows() bool {
	if !t.s.native {
		return false
	}
	for name, b := range t.buckets {
		if IsInternal(name) {
			continue
		}
		for _, e := range b.dirty {
			if e != nil && e.ExpiresAt != 0 {
				return true
			}
		}
	}
	return false
}

// commit sends the buffered writes in one script call that applies them
// only if the fence still reads what the transaction's reads saw, and
// bumps it (see redisread.go). A transaction that wrote nothing has
// nothing to send: its reads were checked against the fence as they ran.
func (t *redisTx) commit() error {
	if !t.dirty() {
		return nil
	}
	shadow := false
	if t.needShadows() {
		var err error
		if shadow, err = t.listeners(); err != nil {
			return err
		}
	}
	if t.cn.id == 0 {
		// A transaction that read nothing: its connection's id, which the
		// first read round trip carries otherwise.
		id, err := t.rtx.ClientID(t.ctx).Result()
		var reply redis.Error
		if err != nil && !errors.As(err, &reply) {
			return t.s.wrap(err) // nothing sent yet: may run again
		}
		t.cn.id = id
		if err != nil || id <= 0 {
			t.cn.id = -1
		}
	}
	t.sent = true
	total := 16
	for _, b := range t.buckets {
		total += len(b.dirty) + len(b.dropKeys)/redisPerCommand
	}
	ops := &redisOps{cmds: make([][]any, 0, total)}
	// The PUBLISH first: a user refused it (an ACL without the channel)
	// fails the commit before anything is written (see redisCommit).
	ops.add("PUBLISH", t.s.changesChannel(), "1")
	ops.add("SET", t.s.layoutKey(), redisLayout)
	for name, b := range t.buckets {
		if IsInternal(name) {
			t.commitInternal(ops, name, b)
		} else {
			t.commitUser(ops, name, b, shadow)
		}
	}
	for name := range t.polDirty {
		if pol, ok := t.policies[name]; ok {
			ops.add("HSET", t.s.policyKey(), name, encodeRedisPolicy(pol))
		} else {
			ops.add("HDEL", t.s.policyKey(), name)
		}
	}
	return t.apply(ops)
}

// mayHave reports whether the server may hold an entry (and so a shadow
// or an index member) for key: false only when a read showed it has none
// and no drop came since.
func (b *redisBucket) mayHave(key string) bool {
	if b.dropped {
		return true // the drop's deletes cover it; be safe
	}
	if b.srv != nil {
		return b.srv[key]
	}
	if m, ok := b.metas[key]; ok {
		return m != nil
	}
	return true
}

// LoadMany is Import's bulk path: each bucket's metadata is read once
// (not each key's), and the entries are written in the transaction's one
// commit, a pipelined MULTI/EXEC for a large import: all or nothing, since
// Redis drops a MULTI whose connection is lost before EXEC. entries must
// not change until the transaction ends (their values are not copied).
func (t *redisTx) LoadMany(entries []Entry, mode ImportMode) (int, error) {
	if !t.write {
		return 0, errRedisReadOnly
	}
	// Size each bucket's maps for what comes, once: growing them one
	// key at a time was half of this step's time for a million keys.
	count := map[string]int{}
	for _, e := range entries {
		if IsInternal(e.Bucket) {
			return 0, checkUserBucket(e.Bucket)
		}
		if err := checkRedisValue(e); err != nil {
			return 0, err
		}
		count[e.Bucket]++
	}
	for name, c := range count {
		b, err := t.load(name)
		if err != nil {
			return 0, err
		}
		b.dirty = grown(b.dirty, c)
		b.m = grown(b.m, c)
	}
	// Put without its copy of the value: the entries stay the caller's
	// until the commit, as Import's do; one array holds them all.
	puts := make([]Entry, 0, len(entries))
	for i, e := range entries {
		b := t.buckets[e.Bucket]
		if cur, had := b.m[e.Key]; had && t.live(cur) {
			switch mode {
			case SkipExisting:
				continue
			case FailOnExisting:
				return 0, existsErrIn(entries[:i], e)
			}
		}
		e.Size = int64(len(e.Value))
		puts = append(puts, e)
		t.set(e.Bucket, e.Key, &puts[len(puts)-1])
		b.order = append(b.order, &puts[len(puts)-1])
	}
	return len(puts), nil
}

// grown returns m, or a copy of it with room for n more keys.
func grown[V any](m map[string]V, n int) map[string]V {
	if n < 1024 {
		return m
	}
	g := make(map[string]V, len(m)+n)
	for k, v := range m {
		g[k] = v
	}
	return g
}

// redisPerCommand is how many items one write command carries at most.
const redisPerCommand = 500

// commitInternal writes an internal bucket: one HASH of whole entries.
func (t *redisTx) commitInternal(ops *redisOps, name string, b *redisBucket) {
	key := t.s.bucketKey(name)
	if b.dropped {
		ops.add("DEL", key)
	}
	var puts, dels []any
	for k, e := range b.dirty {
		if e == nil {
			dels = append(dels, k)
		} else {
			puts = append(puts, k, encodeRedisEntry(*e))
		}
	}
	if !b.dropped {
		ops.addMany(redisPerCommand, []any{"HDEL", key}, dels)
	}
	ops.addMany(2*redisPerCommand, []any{"HSET", key}, puts)
}

// commitUser writes a user bucket: metadata in its HASH, each value in its
// own STRING with the deadline as native TTL, the deadline index, and
// shadow copies when shadow is set.
func (t *redisTx) commitUser(ops *redisOps, name string, b *redisBucket, shadow bool) {
	meta := t.s.metaKey(name)
	var unindex, delKeys []any
	if b.dropped {
		ops.add("DEL", meta)
		ops.add("SREM", t.s.bucketsKey(), name)
		for _, k := range b.dropKeys {
			unindex = append(unindex, name+"\x00"+k)
			delKeys = append(delKeys, t.s.valueKey(name, k), t.s.shadowKey(name, k))
		}
	}
	n := len(b.dirty)
	puts, index := make([]any, 0, 2*n), make([]any, 0, 2*n)
	var dels []any
	writes := make([]*Entry, 0, n)
	for k, e := range b.dirty {
		if e == nil {
			dels = append(dels, k)
			unindex = append(unindex, name+"\x00"+k)
			delKeys = append(delKeys, t.s.valueKey(name, k), t.s.shadowKey(name, k))
			continue
		}
		writes = append(writes, e)
		if (e.ExpiresAt == 0 || !shadow) && t.s.native && b.mayHave(k) {
			delKeys = append(delKeys, t.s.shadowKey(name, k))
		}
	}
	// Deletes go first: a key dropped with its bucket and written again
	// keeps what is written.
	ops.addMany(redisPerCommand, []any{"DEL"}, delKeys)
	// In key order: the deadline index (a skiplist ordered by deadline,
	// then member) takes a run of inserts in order much faster than the
	// map's random order (a bulk import).
	if sorted := b.inKeyOrder(len(writes)); sorted != nil {
		writes = sorted
	} else {
		slices.SortFunc(writes, func(x, y *Entry) int { return strings.Compare(x.Key, y.Key) })
	}
	for _, e := range writes {
		k := e.Key
		member := name + "\x00" + k
		puts = append(puts, k, encodeRedisMeta(*e))
		vkey := t.s.valueKey(name, k)
		if e.ExpiresAt != 0 {
			index = append(index, e.ExpiresAt, member)
		} else if b.mayHave(k) {
			unindex = append(unindex, member)
		}
		if e.ExpiresAt != 0 && t.s.native {
			ops.add("SET", vkey, e.Value, "PXAT", e.ExpiresAt)
		} else {
			ops.add("SET", vkey, e.Value)
		}
		if e.ExpiresAt != 0 && shadow {
			ops.add("SET", t.s.shadowKey(name, k), e.Value)
		}
	}
	ops.addMany(redisPerCommand, []any{"ZREM", t.s.deadlineKey()}, unindex)
	ops.addMany(2*redisPerCommand, []any{"ZADD", t.s.deadlineKey()}, index)
	if !b.dropped {
		ops.addMany(redisPerCommand, []any{"HDEL", meta}, dels)
	}
	if len(puts) > 0 {
		ops.addMany(2*redisPerCommand, []any{"HSET", meta}, puts)
		ops.add("SADD", t.s.bucketsKey(), name)
	}
}
