package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/store/redistest"
	"github.com/livedict/livedict/pkg/ttl"
)

// openBackend opens a fresh store of the named kind; every test below runs
// against each. Redis is a real server (see package redistest).
func openBackend(t *testing.T, name string, clock ttl.Clock) Store {
	t.Helper()
	if base, ok := strings.CutSuffix(name, "+sealed"); ok {
		return SealWrap(t, openBackend(t, base, clock))
	}
	opts := Options{Clock: clock, BusyTimeout: 10 * time.Second}
	dir := t.TempDir()
	var s Store
	var err error
	switch name {
	case "memory":
		s = NewMemory(opts)
	case "sqlite":
		s, err = Open("sqlite:"+filepath.Join(dir, "s.db"), opts)
	case "file":
		s, err = Open("file:"+filepath.Join(dir, "files"), opts)
	case "redis":
		s, err = Open(redistest.URL(t), opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var backendNames = []string{"memory", "sqlite", "file", "redis"}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// SealWrap is set by seal_conformance_test.go (package store_test, which
// may import pkg/seal): it wraps a backend so that the buckets the suite
// uses are encrypted at rest. forEach then runs every backend a second
// time, named BACKEND+sealed, through it.
var SealWrap func(t *testing.T, s Store) Store

// forEach runs fn against every backend with its own fake clock.
func forEach(t *testing.T, fn func(t *testing.T, s Store, clock *ttl.Fake)) {
	names := backendNames
	if SealWrap != nil {
		for _, n := range backendNames {
			names = append(names[:len(names):len(names)], n+"+sealed")
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			clock := ttl.NewFake(t0)
			fn(t, openBackend(t, name, clock), clock)
		})
	}
}

func update(t *testing.T, s Store, fn func(Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, s Store, fn func(Tx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func set(t *testing.T, s Store, bucket, key, value string, expiresAt int64) {
	t.Helper()
	update(t, s, func(tx Tx) error {
		_, err := Set(tx, Limits{}, SetArgs{Bucket: bucket, Key: key, Value: []byte(value), ExpiresAt: expiresAt})
		return err
	})
}

func get(t *testing.T, s Store, bucket, key string) (Entry, bool) {
	t.Helper()
	var e Entry
	var ok bool
	view(t, s, func(tx Tx) error {
		var err error
		e, ok, err = tx.Get(bucket, key)
		return err
	})
	return e, ok
}

func ms(d time.Duration) int64 { return t0.Add(d).UnixMilli() }

func TestConformanceGetPut(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, _ *ttl.Fake) {
		binary := "\x00\xff\xfe bytes\n"
		keys := []string{"a", "A", "a/b", "..", ".", "-dash", strings.Repeat("k", MaxKeyBytes), "\xff\x01key", "ключ", "sp ace"}
		for i, k := range keys {
			set(t, s, "main", k, fmt.Sprint(binary, i), 0)
		}
		for i, k := range keys {
			e, ok := get(t, s, "main", k)
			if !ok || string(e.Value) != fmt.Sprint(binary, i) || e.Key != k || e.Bucket != "main" || e.ExpiresAt != 0 {
				t.Errorf("get %q = %+v, %v", k, e, ok)
			}
		}
		set(t, s, "main", "empty", "", 0)
		if e, ok := get(t, s, "main", "empty"); !ok || e.Value == nil || len(e.Value) != 0 {
			t.Errorf("empty value: %#v %v", e.Value, ok)
		}
		if _, ok := get(t, s, "other", "a"); ok {
			t.Error("buckets are not separate")
		}
		big := bytes.Repeat([]byte{0, 1, 2, 0xff}, 1<<18) // 1 MiB
		update(t, s, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "big", Value: big}) })
		if e, _ := get(t, s, "main", "big"); !bytes.Equal(e.Value, big) {
			t.Error("1 MiB binary value changed")
		}
	})
}

func TestConformanceExpiry(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		set(t, s, "main", "soon", "v", ms(time.Second))
		set(t, s, "main", "later", "v", ms(time.Hour))
		set(t, s, "main", "never", "v", 0)
		clock.Advance(999 * time.Millisecond)
		if _, ok := get(t, s, "main", "soon"); !ok {
			t.Fatal("expired a millisecond early")
		}
		clock.Advance(time.Millisecond)
		if _, ok := get(t, s, "main", "soon"); ok {
			t.Fatal("read returned an expired entry")
		}
		view(t, s, func(tx Tx) error {
			keys, err := Keys(tx, "main", "*")
			if fmt.Sprint(keys) != "[later never]" {
				t.Errorf("keys = %v", keys)
			}
			n, _ := tx.Count("main")
			all, _ := tx.CountAll()
			st, _ := tx.Stats()
			has, _ := tx.HasExpired()
			if n != 2 || all != 2 || st.Keys != 2 || st.KeysWithTTL != 1 || st.NextExpiry != ms(time.Hour) || !has {
				t.Errorf("count %d all %d stats %+v hasExpired %v", n, all, st, has)
			}
			ms, _ := RemainingMs(tx, "main", "soon")
			if ms != TTLMissing {
				t.Errorf("ttl of expired = %d", ms)
			}
			return err
		})
		// incr restarts at 0, set --nx succeeds on an expired key.
		update(t, s, func(tx Tx) error {
			res, err := Set(tx, Limits{}, SetArgs{Bucket: "main", Key: "soon", Value: []byte("new"), NX: true})
			if err != nil || !res.Stored || res.HadOld {
				t.Errorf("set nx over expired: %+v %v", res, err)
			}
			return err
		})
		set(t, s, "main", "n", "41", ms(2*time.Second))
		clock.Advance(2 * time.Second)
		update(t, s, func(tx Tx) error {
			v, err := IncrBy(tx, Limits{}, "main", "n", 1)
			if v != 1 {
				t.Errorf("incr of expired = %d", v)
			}
			return err
		})
	})
}

func TestConformanceReap(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		for i := 0; i < 250; i++ {
			set(t, s, fmt.Sprint("b", i%3), fmt.Sprint("k", i), "v", ms(time.Duration(i+1)*time.Millisecond))
		}
		set(t, s, "main", "keep", "v", 0)
		clock.Advance(time.Hour)
		n, err := LazyReap(context.Background(), s, 100)
		if err != nil || n != 100 {
			t.Fatalf("lazy reap = %d, %v", n, err)
		}
		var seen []Entry
		update(t, s, func(tx Tx) error {
			n, err = tx.Reap(0, func(e Entry) error { seen = append(seen, e); return nil })
			return err
		})
		if n != 150 || len(seen) != 150 || string(seen[0].Value) != "v" {
			t.Fatalf("reap all = %d (%d seen)", n, len(seen))
		}
		view(t, s, func(tx Tx) error {
			has, err := tx.HasExpired()
			all, _ := tx.CountAll()
			if has || all != 1 {
				t.Errorf("after reap: hasExpired %v, count %d", has, all)
			}
			return err
		})
		if n, _ := LazyReap(context.Background(), s, 100); n != 0 {
			t.Errorf("nothing left to reap, reaped %d", n)
		}
	})
}

func TestConformanceSetConditions(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		do := func(a SetArgs) SetResult {
			var res SetResult
			a.Bucket = "main"
			update(t, s, func(tx Tx) error {
				var err error
				res, err = Set(tx, Limits{}, a)
				return err
			})
			return res
		}
		if r := do(SetArgs{Key: "k", Value: []byte("1"), XX: true}); r.Stored {
			t.Error("xx stored a missing key")
		}
		if r := do(SetArgs{Key: "k", Value: []byte("1"), NX: true, ExpiresAt: ms(time.Minute)}); !r.Stored {
			t.Error("nx did not store")
		}
		if r := do(SetArgs{Key: "k", Value: []byte("2"), NX: true}); r.Stored || string(r.Old.Value) != "1" {
			t.Errorf("nx over existing: %+v", r)
		}
		do(SetArgs{Key: "k", Value: []byte("3"), KeepTTL: true})
		if e, _ := get(t, s, "main", "k"); e.ExpiresAt != ms(time.Minute) || string(e.Value) != "3" {
			t.Errorf("keep-ttl: %+v", e)
		}
		do(SetArgs{Key: "k", Value: []byte("4")})
		if e, _ := get(t, s, "main", "k"); e.ExpiresAt != 0 {
			t.Error("set did not clear the TTL")
		}
		do(SetArgs{Key: "k", Value: []byte("5"), ExpiresAt: ms(-time.Second)})
		if _, ok := get(t, s, "main", "k"); ok {
			t.Error("a past deadline kept the key")
		}
	})
}

func TestConformanceExpireConditions(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		exp := func(key string, at int64, c ExpireCond) bool {
			var ok bool
			update(t, s, func(tx Tx) error {
				var err error
				ok, err = Expire(tx, "main", key, at, c)
				return err
			})
			return ok
		}
		set(t, s, "main", "p", "v", 0)
		set(t, s, "main", "t", "v", ms(time.Minute))
		cases := []struct {
			key  string
			at   time.Duration
			cond ExpireCond
			want bool
		}{
			{"missing", time.Hour, Always, false},
			{"p", time.Hour, IfHasTTL, false},
			{"p", time.Hour, IfGreater, false}, // no TTL counts as infinite
			{"t", time.Hour, IfNoTTL, false},
			{"t", 30 * time.Second, IfGreater, false},
			{"t", 2 * time.Minute, IfGreater, true},
			{"t", 3 * time.Minute, IfLess, false},
			{"t", time.Minute, IfLess, true},
			{"p", time.Hour, IfLess, true},
		}
		for _, c := range cases {
			if got := exp(c.key, ms(c.at), c.cond); got != c.want {
				t.Errorf("expire %s %v cond %d = %v", c.key, c.at, c.cond, got)
			}
		}
		if !exp("t", ms(-time.Second), Always) {
			t.Error("expire in the past reported false")
		}
		if _, ok := get(t, s, "main", "t"); ok {
			t.Error("expire in the past kept the key")
		}
		update(t, s, func(tx Tx) error {
			ok, err := Persist(tx, "main", "p")
			if !ok {
				t.Error("persist of a key with TTL reported false")
			}
			ok2, _ := Persist(tx, "main", "p")
			if ok2 {
				t.Error("persist of a key without TTL reported true")
			}
			return err
		})
	})
}

func TestConformanceArithmetic(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		set(t, s, "main", "n", "10", ms(time.Minute))
		set(t, s, "main", "max", "9223372036854775807", 0)
		set(t, s, "main", "text", "ten", 0)
		set(t, s, "main", "f", "10.5", 0)
		update(t, s, func(tx Tx) error {
			if v, err := IncrBy(tx, Limits{}, "main", "n", -15); v != -5 || err != nil {
				t.Errorf("incr = %d %v", v, err)
			}
			if _, err := IncrBy(tx, Limits{}, "main", "max", 1); !errors.Is(err, ErrOverflow) {
				t.Errorf("overflow: %v", err)
			}
			if _, err := IncrBy(tx, Limits{}, "main", "text", 1); !errors.Is(err, ErrNotInteger) {
				t.Errorf("text: %v", err)
			}
			for _, c := range []struct{ key, by, want string }{
				{"f", "0.1", "10.6"}, {"g", "0.1", "0.1"}, {"g", "0.2", "0.3"},
				{"h", "1.1", "1.1"}, {"h", "2.2", "3.3"}, {"i", "5.0e3", "5000"}, {"i", "-5000", "0"},
			} {
				by, _ := ParseRedisFloat([]byte(c.by))
				if v, err := IncrByFloat(tx, Limits{}, "main", c.key, by); v != c.want || err != nil {
					t.Errorf("incrbyfloat %s %s = %s %v, want %s (as Redis)", c.key, c.by, v, err, c.want)
				}
			}
			return nil
		})
		if e, _ := get(t, s, "main", "n"); e.ExpiresAt != ms(time.Minute) {
			t.Error("incr dropped the TTL")
		}
	})
}

func TestConformanceRenameDeleteExists(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		set(t, s, "main", "a", "1", ms(time.Minute))
		set(t, s, "main", "b", "2", 0)
		update(t, s, func(tx Tx) error {
			if ok, _ := Rename(tx, "main", "a", "b", true); ok {
				t.Error("rename --nx over an existing key")
			}
			if ok, _ := Rename(tx, "main", "a", "c", false); !ok {
				t.Error("rename failed")
			}
			if ok, _ := Rename(tx, "main", "missing", "d", false); ok {
				t.Error("rename of a missing key")
			}
			if n, _ := Exists(tx, "main", []string{"c", "c", "a", "b"}); n != 3 {
				t.Errorf("exists = %d", n)
			}
			if n, _ := Delete(tx, "main", []string{"c", "c", "zzz"}); n != 1 {
				t.Errorf("delete = %d", n)
			}
			return nil
		})
	})
}

func TestConformanceScanOrderAndGlob(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		keys := []string{"user:1", "user:10", "user:2", "User:3", "usex", "\xffhigh", "a\nb", "hello", "hallo", "hxllo", "hllo", "heeeello"}
		for _, k := range keys {
			set(t, s, "main", k, "v", 0)
		}
		set(t, s, "other", "user:9", "v", 0)
		sorted := append([]string(nil), keys...)
		sort.Strings(sorted)
		cases := map[string]string{
			"":          fmt.Sprint(sorted),
			"user:*":    "[user:1 user:10 user:2]",
			"h?llo":     "[hallo hello hxllo]",
			"h*llo":     "[hallo heeeello hello hllo hxllo]",
			"h[ae]llo":  "[hallo hello]",
			"h[^e]llo":  "[hallo hxllo]",
			"h[a-b]llo": "[hallo]",
			"user:\\*":  "[]",
			"\xff*":     "[\xffhigh]",
		}
		view(t, s, func(tx Tx) error {
			for glob, want := range cases {
				got, err := Keys(tx, "main", glob)
				if err != nil {
					return err
				}
				if fmt.Sprint(got) != want && !(want == "[]" && got == nil) {
					t.Errorf("keys %q = %q, want %q", glob, got, want)
				}
			}
			var sizes []int64
			err := tx.Scan("main", "user:", false, func(e Entry) error {
				if e.Value != nil {
					t.Error("Scan without values returned a value")
				}
				sizes = append(sizes, e.Size)
				return ErrStopScan
			})
			if len(sizes) != 1 || sizes[0] != 1 {
				t.Errorf("scan stop/size: %v", sizes)
			}
			return err
		})
	})
}

func TestConformancePolicies(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		update(t, s, func(tx Tx) error {
			return tx.SetPolicy("capped", Policy{MaxKeys: 2, DefaultTTL: 60_000})
		})
		set(t, s, "capped", "a", "v", 0)
		set(t, s, "capped", "b", "v", ms(time.Hour))
		if e, _ := get(t, s, "capped", "a"); e.ExpiresAt != ms(time.Minute) {
			t.Errorf("default TTL not applied: %+v", e)
		}
		err := s.Update(context.Background(), func(tx Tx) error {
			_, err := Set(tx, Limits{}, SetArgs{Bucket: "capped", Key: "c", Value: []byte("v")})
			return err
		})
		if !errors.Is(err, ErrBucketFull) {
			t.Fatalf("full bucket: %v", err)
		}
		set(t, s, "capped", "a", "overwrite is fine", 0)
		update(t, s, func(tx Tx) error {
			p, _ := tx.Policy("capped")
			p.OnFull = EvictSoonest
			return tx.SetPolicy("capped", p)
		})
		set(t, s, "capped", "c", "v", ms(2*time.Hour))
		if _, ok := get(t, s, "capped", "a"); ok {
			t.Error("evict-soonest kept the soonest-expiring key")
		}
		view(t, s, func(tx Tx) error {
			bs, err := tx.Buckets()
			if fmt.Sprint(bs) != "[{capped 2}]" {
				t.Errorf("buckets = %v", bs)
			}
			return err
		})
		err = s.Update(context.Background(), func(tx Tx) error {
			_, err := Set(tx, Limits{MaxTotalKeys: 2}, SetArgs{Bucket: "main", Key: "x", Value: []byte("v")})
			return err
		})
		if !errors.Is(err, ErrStoreFull) {
			t.Errorf("max_total_keys: %v", err)
		}
		update(t, s, func(tx Tx) error {
			had, err := tx.DropBucket("capped")
			if !had {
				t.Error("drop reported a missing bucket")
			}
			p, _ := tx.Policy("capped")
			if !p.IsZero() {
				t.Error("drop kept the policy")
			}
			again, _ := tx.DropBucket("capped")
			if again {
				t.Error("second drop reported a bucket")
			}
			return err
		})
	})
}

// An evicting write to a bucket over its max-keys (the limit was lowered
// under it) evicts until the new key fits, on every backend: SQLite's
// bounded count stopped at the limit, so it evicted one key per write and
// the bucket stayed over its limit for good, while the file store and
// Redis came down to it (found by the chaos review).
func TestConformanceLoweredMaxKeysEvicts(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		for i := range 5 {
			set(t, s, "cache", fmt.Sprintf("k%d", i), "v", ms(time.Duration(i+1)*time.Hour))
		}
		update(t, s, func(tx Tx) error {
			return tx.SetPolicy("cache", Policy{MaxKeys: 2, OnFull: EvictSoonest})
		})
		update(t, s, func(tx Tx) error {
			_, err := Set(tx, Limits{}, SetArgs{Bucket: "cache", Key: "new", Value: []byte("v"), ExpiresAt: ms(10 * time.Hour)})
			return err
		})
		var keys []string
		view(t, s, func(tx Tx) error {
			return tx.Scan("cache", "", false, func(e Entry) error { keys = append(keys, e.Key); return nil })
		})
		if fmt.Sprint(keys) != "[k4 new]" {
			t.Errorf("after an evicting set into a bucket lowered to max-keys 2: %v, want [k4 new]", keys)
		}
	})
}

func TestConformanceRollback(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		set(t, s, "main", "keep", "old", 0)
		boom := errors.New("boom")
		err := s.Update(context.Background(), func(tx Tx) error {
			for i := 0; i < 10; i++ {
				tx.Put(Entry{Bucket: "main", Key: fmt.Sprint("new", i), Value: []byte("v")})
			}
			tx.Put(Entry{Bucket: "main", Key: "keep", Value: []byte("changed")})
			tx.Delete("main", "keep")
			tx.SetPolicy("main", Policy{MaxKeys: 5})
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("update error = %v", err)
		}
		view(t, s, func(tx Tx) error {
			keys, _ := Keys(tx, "main", "")
			e, _, _ := tx.Get("main", "keep")
			p, err := tx.Policy("main")
			if fmt.Sprint(keys) != "[keep]" || string(e.Value) != "old" || !p.IsZero() {
				t.Errorf("after rollback: keys %v, keep=%q, policy %+v", keys, e.Value, p)
			}
			return err
		})
	})
}

// A transaction whose context ends while fn runs (import's ^C, a signal
// arriving while its entries are being written) commits nothing and says
// so: the file store once checked ctx only while waiting for its lock, so
// an import interrupted a second in committed all its keys and exited 0.
func TestConformanceCanceledDuringUpdate(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		set(t, s, "main", "keep", "old", 0)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		err := s.Update(ctx, func(tx Tx) error {
			for i := 0; i < 3; i++ {
				if err := tx.Put(Entry{Bucket: "main", Key: fmt.Sprint("new", i), Value: []byte("v")}); err != nil {
					return err
				}
			}
			if err := tx.Put(Entry{Bucket: "main", Key: "keep", Value: []byte("changed")}); err != nil {
				return err
			}
			cancel() // the signal arrives after the last write, before the commit
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("update error = %v, want context.Canceled", err)
		}
		view(t, s, func(tx Tx) error {
			keys, err := Keys(tx, "main", "")
			e, _, _ := tx.Get("main", "keep")
			if fmt.Sprint(keys) != "[keep]" || string(e.Value) != "old" {
				t.Errorf("after a canceled update: keys %v, keep=%q", keys, e.Value)
			}
			return err
		})
	})
}

func TestConformanceImport(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		set(t, s, "main", "k1", "existing", 0)
		entries := []Entry{
			{Bucket: "main", Key: "k1", Value: []byte("imported")},
			{Bucket: "b2", Key: "k2", Value: []byte("v"), ExpiresAt: ms(time.Minute)},
			{Bucket: "b2", Key: "gone", Value: []byte("v"), ExpiresAt: ms(-time.Minute)},
		}
		err := s.Update(context.Background(), func(tx Tx) error {
			_, err := Import(tx, Limits{}, entries, FailOnExisting)
			return err
		})
		if !errors.Is(err, ErrKeyExists) {
			t.Fatalf("import over existing: %v", err)
		}
		if _, ok := get(t, s, "b2", "k2"); ok {
			t.Fatal("failed import left data behind")
		}
		for _, mode := range []struct {
			mode ImportMode
			want string
		}{{SkipExisting, "existing"}, {ReplaceExisting, "imported"}} {
			var n int
			update(t, s, func(tx Tx) error {
				var err error
				n, err = Import(tx, Limits{}, entries, mode.mode)
				return err
			})
			e, _ := get(t, s, "main", "k1")
			if string(e.Value) != mode.want {
				t.Errorf("mode %d: k1 = %q", mode.mode, e.Value)
			}
			if _, ok := get(t, s, "b2", "gone"); ok {
				t.Error("expired line imported")
			}
			_ = n
		}
	})
}

// Many writers in one process, each with its own handle, must not lose an
// increment (the cross-process version lives in the CLI tests).
func TestConformanceConcurrentIncr(t *testing.T) {
	dir := t.TempDir()
	for _, url := range []string{"sqlite:" + filepath.Join(dir, "c.db"), "file:" + filepath.Join(dir, "cf")} {
		t.Run(strings.SplitN(url, ":", 2)[0], func(t *testing.T) {
			const workers, each = 8, 25
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := Open(url, Options{BusyTimeout: 30 * time.Second})
					if err != nil {
						errs <- err
						return
					}
					defer s.Close()
					for i := 0; i < each; i++ {
						if err := s.Update(context.Background(), func(tx Tx) error {
							_, err := IncrBy(tx, Limits{}, "main", "n", 1)
							return err
						}); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			s, _ := Open(url, Options{})
			defer s.Close()
			e, _ := get(t, s, "main", "n")
			if string(e.Value) != fmt.Sprint(workers*each) {
				t.Errorf("n = %s, want %d", e.Value, workers*each)
			}
		})
	}
}

// An import that stops on an existing key names that key, not one the
// same import wrote earlier (the bulk path loads in batches).
func TestConformanceImportNamesTheConflict(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		set(t, s, "main", "k0999", "existing", 0)
		var entries []Entry
		for i := 0; i < 1000; i++ {
			entries = append(entries, Entry{Bucket: "main", Key: fmt.Sprintf("k%04d", i), Value: []byte("v")})
		}
		err := s.Update(context.Background(), func(tx Tx) error {
			_, err := Import(tx, Limits{}, entries, FailOnExisting)
			return err
		})
		if !errors.Is(err, ErrKeyExists) || !strings.Contains(err.Error(), `"k0999"`) {
			t.Fatalf("error = %v, want one naming k0999", err)
		}
	})
}

// durability=full must reach SQLite as synchronous=FULL (fsync per
// commit); normal is OFF (kill -9 safe, no fsync). It is set before a
// process's first write, in a new store and in an existing one alike.
func TestSQLiteDurabilityPragma(t *testing.T) {
	for d, want := range map[Durability]int{Normal: 0, Full: 2} {
		path := "sqlite:" + filepath.Join(t.TempDir(), "d.db")
		for _, what := range []string{"new store", "existing store"} {
			s, err := Open(path, Options{Durability: d})
			if err != nil {
				t.Fatal(err)
			}
			// A new store is made by its first write.
			if err := s.Update(context.Background(), func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("v")}) }); err != nil {
				t.Fatal(err)
			}
			var got int
			if err := s.(*sqliteStore).conn.QueryRowContext(context.Background(), "PRAGMA synchronous").Scan(&got); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if got != want {
				t.Errorf("durability %q, %s: synchronous = %d, want %d", d, what, got, want)
			}
		}
	}
}

// Internal buckets take Get, Put, Delete, Scan and ScanAfter, never
// expire, and are invisible to everything that shows or counts the user's
// data.
func TestConformanceInternalBuckets(t *testing.T) {
	for name, want := range map[string]bool{"!hooks": true, "!": true, "hooks": false, "": false, "main!": false} {
		if IsInternal(name) != want {
			t.Errorf("IsInternal(%q) = %v", name, !want)
		}
	}
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		set(t, s, "main", "k", "v", ms(time.Minute))
		set(t, s, "main", "p", "v", 0)
		update(t, s, func(tx Tx) error {
			for i := range 20 {
				if err := tx.Put(Entry{Bucket: "!outbox", Key: fmt.Sprintf("%08d", i), Value: []byte(fmt.Sprint("event", i))}); err != nil {
					return err
				}
			}
			if err := tx.Put(Entry{Bucket: "!hooks", Key: "main", Value: []byte(`{"on":"set"}`)}); err != nil {
				return err
			}
			// Same key as a user entry, in another world.
			return tx.Put(Entry{Bucket: "!meta", Key: "k", Value: []byte("internal")})
		})
		view(t, s, func(tx Tx) error {
			e, ok, err := tx.Get("!hooks", "main")
			if !ok || string(e.Value) != `{"on":"set"}` || e.Bucket != "!hooks" || e.Key != "main" || e.ExpiresAt != 0 || e.Size != 12 {
				t.Errorf("get internal = %+v %v %v", e, ok, err)
			}
			if e, _, _ := tx.Get("main", "k"); string(e.Value) != "v" {
				t.Errorf("user k = %q", e.Value)
			}
			if e, _, _ := tx.Get("!meta", "k"); string(e.Value) != "internal" {
				t.Errorf("internal k = %q", e.Value)
			}
			if _, ok, _ := tx.Get("!other", "main"); ok {
				t.Error("internal buckets are not separate")
			}
			var keys []string
			if err := tx.Scan("!outbox", "0000001", true, func(e Entry) error {
				if e.Value == nil || e.Size != int64(len(e.Value)) {
					t.Errorf("scan entry %+v", e)
				}
				keys = append(keys, e.Key)
				return nil
			}); err != nil {
				t.Error(err)
			}
			if fmt.Sprint(keys) != "[00000010 00000011 00000012 00000013 00000014 00000015 00000016 00000017 00000018 00000019]" {
				t.Errorf("scan internal = %v", keys)
			}
			// Nothing user-facing sees them.
			bs, _ := tx.Buckets()
			all, _ := tx.CountAll()
			n, _ := tx.Count("main")
			st, _ := tx.Stats()
			if fmt.Sprint(bs) != "[{main 2}]" || all != 2 || n != 2 || st != (Stats{Keys: 2, Buckets: 1, KeysWithTTL: 1, NextExpiry: ms(time.Minute)}) {
				t.Errorf("buckets %v, countAll %d, count %d, stats %+v", bs, all, n, st)
			}
			keys, _ = Keys(tx, "main", "*")
			if fmt.Sprint(keys) != "[k p]" {
				t.Errorf("keys = %v", keys)
			}
			ds, err := tx.(DeadlineLister).Deadlines(ttl.Due{At: math.MinInt64}, 100)
			if len(ds) != 1 || ds[0].At != ms(time.Minute) {
				t.Errorf("deadlines = %v, %v", ds, err)
			}
			// User-only calls refuse internal names rather than show them.
			if _, err := tx.Count("!outbox"); !errors.Is(err, ErrInvalidBucket) {
				t.Errorf("count internal: %v", err)
			}
			if _, _, err := tx.Soonest("!outbox"); !errors.Is(err, ErrInvalidBucket) {
				t.Errorf("soonest internal: %v", err)
			}
			if _, err := tx.Policy("!outbox"); !errors.Is(err, ErrInvalidBucket) {
				t.Errorf("policy internal: %v", err)
			}
			return nil
		})
		// Bad internal names and TTLs are refused, and fail the transaction.
		for _, e := range []Entry{
			{Bucket: "!outbox", Key: "ttl", Value: []byte("v"), ExpiresAt: ms(time.Hour)},
			{Bucket: "!", Key: "k"},
			{Bucket: "!Hooks", Key: "k"},
			{Bucket: "!hooks2", Key: "k"},
			{Bucket: "!" + strings.Repeat("a", 33), Key: "k"},
			{Bucket: "!hooks", Key: ""},
			{Bucket: "!hooks", Key: "nul\x00"},
		} {
			if err := s.Update(context.Background(), func(tx Tx) error { return tx.Put(e) }); err == nil {
				t.Errorf("put %+v succeeded", e)
			}
		}
		if err := s.Update(context.Background(), func(tx Tx) error { return tx.Put(Entry{Bucket: "!" + strings.Repeat("a", 32), Key: "k"}) }); err != nil {
			t.Errorf("32-letter internal name: %v", err)
		}
		for _, fn := range []func(Tx) error{
			func(tx Tx) error { _, err := tx.DropBucket("!outbox"); return err },
			func(tx Tx) error { return tx.SetPolicy("!outbox", Policy{MaxKeys: 1}) },
			func(tx Tx) error { _, _, err := tx.Get("!Bad", "k"); return err },
			func(tx Tx) error { _, err := tx.Delete("!", "k"); return err },
			func(tx Tx) error { return tx.Scan("!x y", "", false, func(Entry) error { return nil }) },
			func(tx Tx) error {
				_, err := Import(tx, Limits{}, []Entry{{Bucket: "!hooks", Key: "x", Value: []byte("v")}}, ReplaceExisting)
				return err
			},
		} {
			if err := s.Update(context.Background(), fn); !errors.Is(err, ErrInvalidBucket) {
				t.Errorf("user-only call on an internal bucket: %v", err)
			}
		}
		// max_total_keys counts user keys only: 2 user keys, a limit of 3.
		update(t, s, func(tx Tx) error {
			_, err := Set(tx, Limits{MaxTotalKeys: 3}, SetArgs{Bucket: "main", Key: "third", Value: []byte("v")})
			return err
		})
		// Dropping, reaping and importing leave them alone. SQLite takes
		// its bulk path, which rebuilds the expiry index, from 10,000 keys.
		imported := 100
		if _, ok := s.(*sqliteStore); ok {
			imported = 10_001
		}
		clock.Advance(24 * time.Hour)
		update(t, s, func(tx Tx) error {
			if has, _ := tx.HasExpired(); !has {
				t.Error("the user key's expiry went unseen")
			}
			if n, err := tx.Reap(0, nil); n != 1 || err != nil {
				t.Errorf("reap = %d, %v", n, err)
			}
			if _, err := tx.DropBucket("main"); err != nil {
				return err
			}
			var big []Entry
			for i := range imported {
				big = append(big, Entry{Bucket: "main", Key: fmt.Sprint("i", i), Value: []byte("v")})
			}
			_, err := Import(tx, Limits{}, big, FailOnExisting)
			return err
		})
		view(t, s, func(tx Tx) error {
			if has, _ := tx.HasExpired(); has {
				t.Error("internal entries count as expired")
			}
			var n int
			err := tx.Scan("!outbox", "", false, func(Entry) error { n++; return nil })
			if _, ok, _ := tx.Get("!hooks", "main"); !ok || n != 20 {
				t.Errorf("internal entries lost: hooks %v, outbox %d", ok, n)
			}
			if all, _ := tx.CountAll(); all != int64(imported) {
				t.Errorf("countAll = %d", all)
			}
			return err
		})
		// Delete reports what it removed.
		update(t, s, func(tx Tx) error {
			if ok, err := tx.Delete("!hooks", "main"); !ok || err != nil {
				t.Errorf("delete internal = %v, %v", ok, err)
			}
			if ok, _ := tx.Delete("!hooks", "main"); ok {
				t.Error("second delete reported a key")
			}
			_, ok, err := tx.Get("!hooks", "main")
			if ok {
				t.Error("deleted internal key still there")
			}
			return err
		})
	})
}

// An outbox event and the change it reports land together or not at all.
func TestConformanceInternalAtomic(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		boom := errors.New("boom")
		err := s.Update(context.Background(), func(tx Tx) error {
			tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("v")})
			tx.Put(Entry{Bucket: "!outbox", Key: "1", Value: []byte("set k")})
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		view(t, s, func(tx Tx) error {
			_, user, _ := tx.Get("main", "k")
			_, event, err := tx.Get("!outbox", "1")
			if user || event {
				t.Errorf("after rollback: user %v, event %v", user, event)
			}
			return err
		})
		update(t, s, func(tx Tx) error {
			if err := tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("v")}); err != nil {
				return err
			}
			return tx.Put(Entry{Bucket: "!outbox", Key: "1", Value: []byte("set k")})
		})
		view(t, s, func(tx Tx) error {
			_, user, _ := tx.Get("main", "k")
			_, event, err := tx.Get("!outbox", "1")
			if !user || !event {
				t.Errorf("after commit: user %v, event %v", user, event)
			}
			return err
		})
	})
}

func TestConformanceScanAfter(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		keys := []string{"a", "a\x01", "aa", "ab", "b", "\xff", "\xff\xff", "\x01", "B"}
		for _, bucket := range []string{"main", "!outbox"} {
			update(t, s, func(tx Tx) error {
				for _, k := range keys {
					if err := tx.Put(Entry{Bucket: bucket, Key: k, Value: []byte("v" + k)}); err != nil {
						return err
					}
				}
				return nil
			})
		}
		set(t, s, "main", "ac", "expires", ms(time.Second))
		set(t, s, "main", "ad", "expired", ms(time.Second))
		set(t, s, "other", "ab2", "v", 0)
		clock.Advance(time.Second)
		sorted := append([]string(nil), keys...)
		sort.Strings(sorted)
		view(t, s, func(tx Tx) error {
			for _, bucket := range []string{"main", "!outbox"} {
				for _, after := range []string{"", "a", "a\x00", "ab", "ab1", "\xff", "\xff\xff", "zzz"} {
					var got []string
					err := tx.ScanAfter(bucket, after, true, func(e Entry) error {
						if string(e.Value) != "v"+e.Key || e.Size != int64(len(e.Value)) || e.Bucket != bucket {
							t.Errorf("entry %+v", e)
						}
						got = append(got, e.Key)
						return nil
					})
					if err != nil {
						return err
					}
					var want []string
					for _, k := range sorted {
						if k > after {
							want = append(want, k)
						}
					}
					if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
						t.Errorf("%s after %q = %q, want %q", bucket, after, got, want)
					}
				}
			}
			var got []string
			err := tx.ScanAfter("main", "a", false, func(e Entry) error {
				if e.Value != nil || e.Size != int64(len("v"+e.Key)) {
					t.Errorf("without values: %+v", e)
				}
				got = append(got, e.Key)
				if len(got) == 2 {
					return ErrStopScan
				}
				return nil
			})
			if fmt.Sprintf("%q", got) != `["a\x01" "aa"]` {
				t.Errorf("stopped scan = %q", got)
			}
			return err
		})
	})
}

// A cursor over more entries than one read holds (SQLite reads pages),
// with fn writing as it goes, as the outbox dispatcher does.
func TestConformanceScanAfterLongCursor(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		const n = 1000
		update(t, s, func(tx Tx) error {
			for i := range n {
				if err := tx.Put(Entry{Bucket: "!outbox", Key: fmt.Sprintf("%016x", i), Value: []byte(fmt.Sprint(i))}); err != nil {
					return err
				}
			}
			return nil
		})
		// Resume in batches of 100 from where the last one stopped.
		cursor, seen := "", 0
		for {
			batch := 0
			view(t, s, func(tx Tx) error {
				return tx.ScanAfter("!outbox", cursor, true, func(e Entry) error {
					if e.Key != fmt.Sprintf("%016x", seen) || string(e.Value) != fmt.Sprint(seen) {
						t.Fatalf("entry %d = %+v", seen, e)
					}
					cursor, seen, batch = e.Key, seen+1, batch+1
					if batch == 100 {
						return ErrStopScan
					}
					return nil
				})
			})
			if batch < 100 {
				break
			}
		}
		if seen != n {
			t.Fatalf("cursor saw %d of %d", seen, n)
		}
		// Deleting what it visits, in one transaction.
		deleted := 0
		update(t, s, func(tx Tx) error {
			return tx.ScanAfter("!outbox", "", false, func(e Entry) error {
				ok, err := tx.Delete("!outbox", e.Key)
				if ok {
					deleted++
				}
				return err
			})
		})
		view(t, s, func(tx Tx) error {
			left := 0
			err := tx.ScanAfter("!outbox", "", false, func(Entry) error { left++; return nil })
			if deleted != n || left != 0 {
				t.Errorf("deleted %d, %d left", deleted, left)
			}
			return err
		})
	})
}

// Deadlines pages through every user deadline, expired or not, in
// (At, ID) order, resuming strictly after where it stopped, as a
// ttl.Schedule's Source must.
func TestConformanceDeadlines(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		type kb struct{ bucket, key string }
		want := map[kb]int64{}
		update(t, s, func(tx Tx) error {
			for i := range 60 {
				// Groups of keys share a millisecond, to exercise ties.
				e := Entry{Bucket: fmt.Sprint("b", i%3), Key: fmt.Sprint("k", i), Value: []byte("v"), ExpiresAt: ms(time.Duration(i/4+1) * time.Second)}
				if err := tx.Put(e); err != nil {
					return err
				}
				want[kb{e.Bucket, e.Key}] = e.ExpiresAt
			}
			for i := range 5 {
				tx.Put(Entry{Bucket: "main", Key: fmt.Sprint("forever", i), Value: []byte("v")})
				tx.Put(Entry{Bucket: "!outbox", Key: fmt.Sprint(i), Value: []byte("v")})
			}
			return nil
		})
		clock.Advance(5 * time.Second) // some are expired: they are listed too
		ctx := context.Background()
		var got []ttl.Due
		after := ttl.Due{At: math.MinInt64}
		for {
			page, err := NextDeadlines(ctx, s, after, 7)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 7 {
				t.Fatalf("page of %d", len(page))
			}
			got = append(got, page...)
			if len(page) < 7 {
				break
			}
			after = page[len(page)-1]
		}
		if len(got) != len(want) {
			t.Fatalf("listed %d deadlines, want %d", len(got), len(want))
		}
		ids := map[uint64]bool{}
		for i, d := range got {
			if i > 0 && compareDue(got[i-1], d) >= 0 {
				t.Fatalf("deadlines out of order at %d: %v then %v", i, got[i-1], d)
			}
			ids[d.ID] = true
		}
		if len(ids) != len(want) {
			t.Errorf("%d distinct IDs for %d keys", len(ids), len(want))
		}
		var ats, wantAts []int64
		for _, d := range got {
			ats = append(ats, d.At)
		}
		for _, at := range want {
			wantAts = append(wantAts, at)
		}
		slices.Sort(wantAts)
		if !slices.Equal(ats, wantAts) {
			t.Errorf("deadlines %v, want %v", ats, wantAts)
		}
		// On the hashing backends the ID is FNV-1a of bucket NUL key.
		base := s
		if u, ok := s.(interface{ Unwrap() Store }); ok { // +sealed
			base = u.Unwrap()
		}
		if _, ok := base.(*sqliteStore); !ok {
			for k, at := range want {
				h := fnv.New64a()
				h.Write([]byte(k.bucket + "\x00" + k.key))
				if !slices.Contains(got, ttl.Due{At: at, ID: h.Sum64()}) {
					t.Errorf("%v: no deadline with its FNV ID", k)
				}
			}
		}
		// Strictly after: a Due itself is not returned, and the greatest
		// Due of a millisecond skips the rest of it.
		mid := got[10]
		if page, _ := NextDeadlines(ctx, s, mid, 1); len(page) != 1 || page[0] != got[11] {
			t.Errorf("after %v = %v, want %v", mid, page, got[11])
		}
		if page, _ := NextDeadlines(ctx, s, ttl.Due{At: mid.At, ID: math.MaxUint64}, 1); len(page) != 1 || page[0].At <= mid.At {
			t.Errorf("after the end of %d = %v", mid.At, page)
		}
		if page, _ := NextDeadlines(ctx, s, ttl.Due{At: mid.At - 1, ID: math.MaxUint64}, 100); len(page) != len(got)-slices.IndexFunc(got, func(d ttl.Due) bool { return d.At == mid.At }) {
			t.Errorf("after the millisecond before %d: %d deadlines", mid.At, len(page))
		}
		if page, err := NextDeadlines(ctx, s, got[len(got)-1], 10); len(page) != 0 || err != nil {
			t.Errorf("after the last = %v, %v", page, err)
		}
		if page, err := NextDeadlines(ctx, s, ttl.Due{At: math.MinInt64}, 0); len(page) != 0 || err != nil {
			t.Errorf("limit 0 = %v, %v", page, err)
		}
		// A key that loses its TTL leaves the listing; one that gains it
		// joins.
		update(t, s, func(tx Tx) error {
			if ok, err := Persist(tx, "b1", "k40"); !ok || err != nil { // due at 11s
				t.Errorf("persist = %v, %v", ok, err)
			}
			_, err := Expire(tx, "main", "forever0", ms(time.Hour), Always)
			return err
		})
		all, _ := NextDeadlines(ctx, s, ttl.Due{At: math.MinInt64}, 1000)
		at11 := func(ds []ttl.Due) int {
			return len(slices.DeleteFunc(slices.Clone(ds), func(d ttl.Due) bool { return d.At != ms(11*time.Second) }))
		}
		if len(all) != len(want) || all[len(all)-1].At != ms(time.Hour) || at11(all) != at11(got)-1 {
			t.Errorf("after persist and expire: %d deadlines, last %v", len(all), all[len(all)-1])
		}
	})
}

// storeSource is the ttl.Source the daemon builds over a store.
type storeSource struct{ s Store }

func (src storeSource) Next(after ttl.Due, limit int) ([]ttl.Due, error) {
	return NextDeadlines(context.Background(), src.s, after, limit)
}

// A ttl.Schedule with a small window over each backend finds every
// deadline in order: the Schedule checks the Source contract itself.
func TestConformanceDeadlinesFeedSchedule(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		update(t, s, func(tx Tx) error {
			for i := range 100 {
				if err := tx.Put(Entry{Bucket: "main", Key: fmt.Sprint("k", i), Value: []byte("v"), ExpiresAt: ms(time.Duration(i%10+1) * time.Second)}); err != nil {
					return err
				}
			}
			return nil
		})
		sched := ttl.NewSchedule(storeSource{s}, clock, 8)
		clock.Advance(time.Minute)
		var due []ttl.Due
		for {
			got, err := sched.Due(5)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				break
			}
			due = append(due, got...)
		}
		if len(due) != 100 || !slices.IsSortedFunc(due, compareDue) {
			t.Errorf("schedule returned %d deadlines (sorted: %v)", len(due), slices.IsSortedFunc(due, compareDue))
		}
	})
}

func TestConformanceAppendAndMSet(t *testing.T) {
	forEach(t, func(t *testing.T, s Store, clock *ttl.Fake) {
		var n int
		update(t, s, func(tx Tx) (err error) { n, err = Append(tx, Limits{}, "main", "log", []byte("a\x00")); return err })
		if e, _ := get(t, s, "main", "log"); n != 2 || string(e.Value) != "a\x00" || e.ExpiresAt != 0 {
			t.Errorf("append to missing: %d %+v", n, e)
		}
		// APPEND keeps the TTL.
		set(t, s, "main", "t", "x", ms(time.Hour))
		update(t, s, func(tx Tx) (err error) { n, err = Append(tx, Limits{}, "main", "t", []byte("yz")); return err })
		if e, _ := get(t, s, "main", "t"); n != 3 || string(e.Value) != "xyz" || e.ExpiresAt != ms(time.Hour) {
			t.Errorf("append kept TTL? %d %+v", n, e)
		}
		// The result is held to max_value_bytes, and nothing changes.
		err := s.Update(context.Background(), func(tx Tx) error {
			_, err := Append(tx, Limits{MaxValueBytes: 4}, "main", "t", []byte("ab"))
			return err
		})
		if !errors.Is(err, ErrValueTooLarge) {
			t.Errorf("append over the limit: %v", err)
		}
		if e, _ := get(t, s, "main", "t"); string(e.Value) != "xyz" {
			t.Errorf("after refused append: %q", e.Value)
		}
		// An expired key starts again empty.
		clock.Advance(2 * time.Hour)
		update(t, s, func(tx Tx) (err error) { n, err = Append(tx, Limits{}, "main", "t", []byte("new")); return err })
		if e, _ := get(t, s, "main", "t"); n != 3 || string(e.Value) != "new" || e.ExpiresAt != 0 {
			t.Errorf("append to expired: %d %+v", n, e)
		}

		// MSET clears TTLs and a key named twice keeps its last value.
		set(t, s, "main", "a", "old", clock.Now().Add(time.Hour).UnixMilli())
		var ok bool
		update(t, s, func(tx Tx) (err error) {
			ok, err = MSet(tx, Limits{}, "main", []KeyValue{{"a", []byte("1")}, {"b", []byte("2")}, {"a", []byte("3")}}, MSetArgs{})
			return err
		})
		ea, _ := get(t, s, "main", "a")
		eb, _ := get(t, s, "main", "b")
		if !ok || string(ea.Value) != "3" || ea.ExpiresAt != 0 || string(eb.Value) != "2" {
			t.Errorf("mset: %v %+v %+v", ok, ea, eb)
		}
		// MSETNX stores nothing when any key exists.
		update(t, s, func(tx Tx) (err error) {
			ok, err = MSet(tx, Limits{}, "main", []KeyValue{{"c", []byte("1")}, {"b", []byte("x")}}, MSetArgs{NX: true})
			return err
		})
		if _, had := get(t, s, "main", "c"); ok || had {
			t.Errorf("msetnx with an existing key stored something: %v %v", ok, had)
		}
		update(t, s, func(tx Tx) (err error) {
			ok, err = MSet(tx, Limits{}, "main", []KeyValue{{"c", []byte("1")}, {"d", []byte("2")}}, MSetArgs{NX: true})
			return err
		})
		if _, had := get(t, s, "main", "d"); !ok || !had {
			t.Errorf("msetnx of new keys: %v %v", ok, had)
		}
		// One value over the limit refuses the whole MSET.
		err = s.Update(context.Background(), func(tx Tx) error {
			_, err := MSet(tx, Limits{MaxValueBytes: 2}, "main", []KeyValue{{"e", []byte("1")}, {"f", []byte("123")}}, MSetArgs{})
			return err
		})
		if _, had := get(t, s, "main", "e"); !errors.Is(err, ErrValueTooLarge) || had {
			t.Errorf("mset over the limit: %v, e stored: %v", err, had)
		}
	})
}
