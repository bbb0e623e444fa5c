package store

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/livedict/livedict/pkg/ttl"
)

// redisBucket is what a transaction knows of one bucket: its buffered
// writes and, once a read needed the whole bucket, all of its entries.
type redisBucket struct {
	loaded   bool
	m        map[string]Entry  // every entry, expired or not, when loaded
	dirty    map[string]*Entry // buffered writes; nil deletes
	dropped  bool              // the bucket was emptied before the dirty writes
	dropKeys []string          // keys whose deadlines a drop removes from the index
}

// redisTx runs on one connection under WATCH of the store's fence.
type redisTx struct {
	s     *redisStore
	ctx   context.Context
	rtx   *redis.Tx
	write bool
	now   int64
	reads int

	buckets map[string]*redisBucket
	names   map[string]bool // user buckets named in the server's set, once read

	policies  map[string]Policy // once read
	polDirty  map[string]bool
	published bool
}

func newRedisTx(s *redisStore, ctx context.Context, rtx *redis.Tx, write bool) *redisTx {
	return &redisTx{
		s: s, ctx: ctx, rtx: rtx, write: write,
		now:      s.opts.Clock.Now().UnixMilli(),
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

// load reads the whole bucket once, then lays the buffered writes over it.
func (t *redisTx) load(name string) (*redisBucket, error) {
	b := t.bucket(name)
	if b.loaded {
		return b, nil
	}
	t.reads++
	all, err := t.rtx.HGetAll(t.ctx, t.s.bucketKey(name)).Result()
	if err != nil {
		return nil, t.s.wrap(err)
	}
	b.m = make(map[string]Entry, len(all))
	for k, raw := range all {
		e, err := decodeRedisEntry(name, k, raw)
		if err != nil {
			return nil, err
		}
		b.m[k] = e
	}
	for k, e := range b.dirty {
		if e == nil {
			delete(b.m, k)
		} else {
			b.m[k] = *e
		}
	}
	b.loaded = true
	return b, nil
}

// raw returns key's stored entry, expired or not.
func (t *redisTx) raw(bucket, key string) (Entry, bool, error) {
	b := t.bucket(bucket)
	if b.loaded {
		e, ok := b.m[key]
		return e, ok, nil
	}
	if e, ok := b.dirty[key]; ok {
		if e == nil {
			return Entry{}, false, nil
		}
		return *e, true, nil
	}
	t.reads++
	v, err := t.rtx.HGet(t.ctx, t.s.bucketKey(bucket), key).Result()
	if err == redis.Nil {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, t.s.wrap(err)
	}
	e, err := decodeRedisEntry(bucket, key, v)
	return e, err == nil, err
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

func (t *redisTx) Put(e Entry) error {
	if !t.write {
		return errRedisReadOnly
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
	var keys []string
	for k, e := range b.m {
		if want(k) && t.live(e) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		e, ok := b.m[k]
		if !ok || !t.live(e) {
			continue // fn deleted it
		}
		e.Size = int64(len(e.Value))
		if withValues {
			e.Value = append([]byte{}, e.Value...)
		} else {
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
		t.reads++
		names, err := t.rtx.SMembers(t.ctx, t.s.bucketsKey()).Result()
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
	var best Entry
	found := false
	for _, e := range b.m {
		if e.ExpiresAt == 0 || !t.live(e) {
			continue
		}
		if !found || e.ExpiresAt < best.ExpiresAt || e.ExpiresAt == best.ExpiresAt && e.Key < best.Key {
			best, found = e, true
		}
	}
	if found {
		best.Value = append([]byte{}, best.Value...)
		best.Size = int64(len(best.Value))
	}
	return best, found, nil
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
		if n > 0 || !t.policies[name].IsZero() {
			out = append(out, BucketInfo{Name: name, Keys: n})
		}
	}
	return out, nil
}

func (t *redisTx) loadPolicies() (map[string]Policy, error) {
	if t.policies != nil {
		return t.policies, nil
	}
	t.reads++
	all, err := t.rtx.HGetAll(t.ctx, t.s.policyKey()).Result()
	if err != nil {
		return nil, t.s.wrap(err)
	}
	t.policies = map[string]Policy{}
	for name, raw := range all {
		p, err := decodeRedisPolicy(name, raw)
		if err != nil {
			return nil, err
		}
		t.policies[name] = p
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
// deadline first. The server's deadline index {P}:dl (score = deadline,
// member = bucket NUL key) finds them without reading any bucket; what
// this transaction changed is checked in its own state.
func (t *redisTx) expired(limit int) ([]Entry, error) {
	const page = 512
	seen := map[string]bool{}
	var out []Entry
	for offset := int64(0); ; offset += page {
		t.reads++
		members, err := t.rtx.ZRangeByScore(t.ctx, t.s.deadlineKey(), &redis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(t.now, 10), Offset: offset, Count: page,
		}).Result()
		if err != nil {
			return nil, t.s.wrap(err)
		}
		for _, m := range members {
			seen[m] = true
			bucket, key, ok := strings.Cut(m, "\x00")
			if !ok || IsInternal(bucket) {
				continue
			}
			e, ok, err := t.raw(bucket, key)
			if err != nil {
				return nil, err
			}
			if ok && !t.live(e) {
				out = append(out, e)
			}
		}
		if len(members) < page || limit > 0 && len(out) >= limit {
			break
		}
	}
	for name, b := range t.buckets {
		if IsInternal(name) {
			continue
		}
		local := b.m
		if !b.loaded {
			local = map[string]Entry{}
			for k, e := range b.dirty {
				if e != nil {
					local[k] = *e
				}
			}
		}
		for k, e := range local {
			if !t.live(e) && !seen[name+"\x00"+k] {
				out = append(out, e)
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

// Deadlines reads every user deadline; IDs are FNV-1a of bucket NUL key,
// as on the file and memory backends.
func (t *redisTx) Deadlines(after ttl.Due, limit int) ([]ttl.Due, error) {
	if limit <= 0 {
		return nil, nil
	}
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

// commit sends the buffered writes in one MULTI/EXEC that bumps the
// fence; the server refuses it if the fence moved since WATCH. A
// transaction that read more than once and wrote nothing still runs an
// (almost) empty MULTI/EXEC, so a torn read is retried too.
func (t *redisTx) commit() error {
	if !t.dirty() {
		if t.reads <= 1 {
			return nil // one command is atomic on its own
		}
		_, err := t.rtx.TxPipelined(t.ctx, func(p redis.Pipeliner) error {
			p.Ping(t.ctx)
			return nil
		})
		return err
	}
	_, err := t.rtx.TxPipelined(t.ctx, func(p redis.Pipeliner) error {
		p.Incr(t.ctx, t.s.fence())
		for name, b := range t.buckets {
			key := t.s.bucketKey(name)
			user := !IsInternal(name)
			var unindex []any
			if b.dropped {
				p.Del(t.ctx, key)
				p.SRem(t.ctx, t.s.bucketsKey(), name)
				for _, k := range b.dropKeys {
					unindex = append(unindex, name+"\x00"+k)
				}
			}
			var puts []any
			var dels []string
			var index []redis.Z
			for k, e := range b.dirty {
				if e == nil {
					dels = append(dels, k)
					unindex = append(unindex, name+"\x00"+k)
				} else {
					puts = append(puts, k, encodeRedisEntry(*e))
					if e.ExpiresAt != 0 {
						index = append(index, redis.Z{Score: float64(e.ExpiresAt), Member: name + "\x00" + k})
					} else {
						unindex = append(unindex, name+"\x00"+k)
					}
				}
			}
			if user && len(unindex) > 0 {
				p.ZRem(t.ctx, t.s.deadlineKey(), unindex...)
			}
			if user && len(index) > 0 {
				p.ZAdd(t.ctx, t.s.deadlineKey(), index...)
			}
			if len(dels) > 0 && !b.dropped {
				p.HDel(t.ctx, key, dels...)
			}
			if len(puts) > 0 {
				p.HSet(t.ctx, key, puts...)
				if user {
					p.SAdd(t.ctx, t.s.bucketsKey(), name)
				}
			}
		}
		for name := range t.polDirty {
			if pol, ok := t.policies[name]; ok {
				p.HSet(t.ctx, t.s.policyKey(), name, encodeRedisPolicy(pol))
			} else {
				p.HDel(t.ctx, t.s.policyKey(), name)
			}
		}
		p.Publish(t.ctx, t.s.changesChannel(), "1")
		return nil
	})
	return err
}
