package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/ttl"
)

// openBackend opens a fresh store of the named kind. The Redis backend
// joins backendNames when it exists; every test below runs against each.
func openBackend(t *testing.T, name string, clock ttl.Clock) Store {
	t.Helper()
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
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var backendNames = []string{"memory", "sqlite", "file"}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// forEach runs fn against every backend with its own fake clock.
func forEach(t *testing.T, fn func(t *testing.T, s Store, clock *ttl.Fake)) {
	for _, name := range backendNames {
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
// commit); normal is OFF (kill -9 safe, no fsync).
func TestSQLiteDurabilityPragma(t *testing.T) {
	for d, want := range map[Durability]int{Normal: 0, Full: 2} {
		s, err := Open("sqlite:"+filepath.Join(t.TempDir(), "d.db"), Options{Durability: d})
		if err != nil {
			t.Fatal(err)
		}
		var got int
		if err := s.(*sqliteStore).conn.QueryRowContext(context.Background(), "PRAGMA synchronous").Scan(&got); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if got != want {
			t.Errorf("durability %q: synchronous = %d, want %d", d, got, want)
		}
	}
}
