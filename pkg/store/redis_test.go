package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/store/redistest"
	"github.com/livedict/livedict/pkg/ttl"
)

func TestParseRedisURL(t *testing.T) {
	t.Setenv("LIVEDICT_REDIS_PASSWORD", "")
	for _, c := range []struct {
		in   string
		want redisTarget
	}{
		{"redis://h", redisTarget{Network: "tcp", Addr: "h:6379", Prefix: "livedict"}},
		{"redis://u:pw@h:7000/3?prefix=app", redisTarget{Network: "tcp", Addr: "h:7000", User: "u", Password: "pw", DB: 3, Prefix: "app"}},
		{"redis://:pw@[::1]:7000", redisTarget{Network: "tcp", Addr: "[::1]:7000", Password: "pw", Prefix: "livedict"}},
		{"rediss://h", redisTarget{Network: "tcp", Addr: "h:6379", TLS: true, Prefix: "livedict"}},
		{"unix:///run/r.sock?db=2&prefix=x", redisTarget{Network: "unix", Addr: "/run/r.sock", DB: 2, Prefix: "x"}},
		{"redis://h?prefix=team%232", redisTarget{Network: "tcp", Addr: "h:6379", Prefix: "team#2"}},
	} {
		got, err := parseRedisURL(c.in)
		if err != nil || got != c.want {
			t.Errorf("parseRedisURL(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"redis://", "redis://h:0", "redis://h:99999", "redis://h/x", "redis://h?prefix={a}",
		"redis://h?prefix=", "redis://h?db=1", "redis://h?foo=1", "unix://host/p", "unix://", "redis://:secretpw@h/x",
		// A '#' began a fragment, dropped: prefix=team#2 was the store
		// of prefix team, another one.
		"redis://h?prefix=team#2", "redis://h/1#x", "unix:///run/r.sock#x", "redis://:secretpw#x@h"} {
		_, err := parseRedisURL(bad)
		if !errors.Is(err, ErrBadURL) {
			t.Errorf("parseRedisURL(%q) = %v, want ErrBadURL", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "secretpw") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func TestParseRedisURLPasswordFromEnvironment(t *testing.T) {
	t.Setenv("LIVEDICT_REDIS_PASSWORD", "envpw")
	got, err := parseRedisURL("redis://h")
	if err != nil || got.Password != "envpw" {
		t.Fatalf("got %+v, %v", got, err)
	}
	if s := got.String(); strings.Contains(s, "envpw") || s != "redis://:***@h:6379" {
		t.Fatalf("String() = %q", s)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://u:pw@h:1/2":      "redis://u:***@h:1/2",
		"redis://:p@w@h":          "redis://:***@h",
		"redis://h/x?a=b@c":       "redis://h/x?a=b@c",
		"redis://u@h":             "redis://u@h",
		"sqlite:/tmp/a@b":         "sqlite:/tmp/a@b",
		"rediss://u:p:q@h?prefix": "rediss://u:***@h?prefix",
		// A password with an unencoded '/' or '?' makes the URL fail to
		// parse; the error showed it whole.
		"redis://u:pa/ss@h:1/0":        "redis://u:***@h:1/0",
		"redis://u:pa?ss@h:1/0":        "redis://u:***@h:1/0",
		"redis://:1234/x@h":            "redis://:***@h",
		"foo://u:pa/ss@h":              "foo://u:***@h",
		"redis://h/0?prefix=a:b@c":     "redis://h/0?prefix=a:b@c",
		"unix:///run/a:b@c.sock?db=1":  "unix:///run/a:b@c.sock?db=1",
		"redis://u:p@h/0?prefix=a:b@c": "redis://u:***@h/0?prefix=a:b@c",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseRedisURL(f *testing.F) {
	for _, s := range []string{"redis://u:pw@h:1/2?prefix=p", "rediss://h", "unix:///a?db=1", "redis://[::1]:1", "redis://%zz@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tg, err := parseRedisURL(in)
		if err != nil {
			if tg != (redisTarget{}) {
				t.Fatalf("error with a target: %+v", tg)
			}
			return
		}
		// What is shown parses back to the same target, with *** for a password.
		shown := tg.String()
		back, err := parseRedisURL(shown)
		want := tg
		if want.Password != "" {
			want.Password = "***"
		}
		if err != nil || back != want {
			t.Fatalf("String() = %q parses to %+v, %v; want %+v", shown, back, err, want)
		}
		if tg.Addr == "" || tg.Prefix == "" {
			t.Fatalf("accepted %q without an address or prefix: %+v", in, tg)
		}
		_ = RedactURL(in)
	})
}

// Two handles on one store (as two processes would be) increment one
// counter concurrently: every increment is counted, none is lost to a
// conflict.
func TestRedisConcurrentIncrements(t *testing.T) {
	url := redistest.URL(t)
	const workers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(url, Options{BusyTimeout: time.Minute})
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			for i := 0; i < each; i++ {
				if err := s.Update(context.Background(), func(tx Tx) error {
					_, err := IncrBy(tx, Limits{}, "b", "n", 1)
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
	s, err := Open(url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.View(context.Background(), func(tx Tx) error {
		e, ok, err := tx.Get("b", "n")
		if err != nil || !ok || string(e.Value) != fmt.Sprint(workers*each) {
			t.Fatalf("n = %q %v %v, want %d", e.Value, ok, err, workers*each)
		}
		return nil
	})
}

func TestRedisFeedAndBus(t *testing.T) {
	url := redistest.URL(t)
	a, err := Open(url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !IsShared(a) {
		t.Fatal("a Redis store is shared")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes, err := a.(ChangeFeed).Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Update(ctx, func(tx Tx) error { return tx.Put(Entry{Bucket: "x", Key: "k", Value: []byte("v")}) }); err != nil {
		t.Fatal(err)
	}
	<-changes
	bus := a.(EventBus)
	if on, err := bus.Listening(ctx); err != nil || on {
		t.Fatalf("Listening = %v, %v before anyone subscribed", on, err)
	}
	msgs, err := b.(EventBus).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if on, err := bus.Listening(ctx); err != nil || !on {
		t.Fatalf("Listening = %v, %v with a subscriber", on, err)
	}
	if err := bus.Publish(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if m := <-msgs; string(m) != "hello" {
		t.Fatalf("got %q", m)
	}
	cancel()
	for range msgs {
	}
	if loc := Must(Locate(a)); loc.Backend != "redis" {
		t.Fatalf("Locate = %+v", loc)
	}
}

func Must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// An address nobody listens on fails as a store error naming it.
func TestRedisUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	err = openAndRead("redis://"+addr, Options{Redis: RedisOptions{ConnectTimeout: time.Minute}})
	if KindOf(err) != KindStore || !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v (kind %v)", err, KindOf(err))
	}
}

// A wrong password, none where one is needed, or a DB the server does not
// have: a store error that says which, in one line, and does not show the
// password (all three were once reported as a server too old, version "").
func TestRedisWrongPassword(t *testing.T) {
	base := redistest.Start(t, "--save", "", "--appendonly", "no", "--requirepass", "rightpw")
	t.Setenv("LIVEDICT_REDIS_PASSWORD", "")
	for _, c := range []struct {
		url, password, want string
	}{
		{base, "wrongpw-secret", "authentication failed: wrong user or password"},
		{base, "", "authentication required"},
		{base + "?db=99", "rightpw", "the server has no such database"},
		// A password that is a word of livedict's own line left the line
		// mangled ("authentication failed: *** user or password"), and
		// told the reader what the password was.
		{base, "wrong", "authentication failed: wrong user or password"},
		{base, "e", "authentication failed: wrong user or password"},
	} {
		err := openAndRead(c.url, Options{Redis: RedisOptions{Password: c.password}})
		if KindOf(err) != KindStore || strings.Contains(err.Error(), "wrongpw-secret") ||
			!strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s, password %q: err = %v (kind %v), want %q", c.url, c.password, err, KindOf(err), c.want)
		}
	}
	s, err := Open(base, Options{Redis: RedisOptions{Password: "rightpw"}})
	if err != nil {
		t.Fatal(err)
	}
	loc := Must(s.Info())
	s.Close()
	if strings.Contains(loc.Location, "rightpw") {
		t.Fatalf("Location %q shows the password", loc.Location)
	}
}

func TestRedisVersionCheck(t *testing.T) {
	for v, ok := range map[string]bool{"6.2.0": true, "7.0.15": true, "10.0": true, "6.0.9": false, "5.0": false, "": false, "x.y": false} {
		if redisVersionOK(v) != ok {
			t.Errorf("redisVersionOK(%q) != %v", v, ok)
		}
	}
}

// The deadline index holds exactly the user entries that have a deadline:
// puts add, persists, deletes, reaps and bucket drops remove.
func TestRedisDeadlineIndex(t *testing.T) {
	clock := ttl.NewFake(t0)
	s, err := Open(redistest.URL(t), Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rs := s.(*redisStore)
	ctx := context.Background()
	card := func(want int64) {
		t.Helper()
		if n, err := rs.c.ZCard(ctx, rs.deadlineKey()).Result(); err != nil || n != want {
			t.Fatalf("index holds %d (%v), want %d", n, err, want)
		}
	}
	at := clock.Now().UnixMilli() + 1000
	update(t, s, func(tx Tx) error {
		for _, e := range []Entry{{Bucket: "a", Key: "1", ExpiresAt: at}, {Bucket: "a", Key: "2", ExpiresAt: at},
			{Bucket: "b", Key: "1", ExpiresAt: at}, {Bucket: "b", Key: "2", ExpiresAt: at + 1}, {Bucket: "b", Key: "3"}} {
			if err := tx.Put(e); err != nil {
				return err
			}
		}
		return nil
	})
	card(4)
	update(t, s, func(tx Tx) error { _, err := tx.DropBucket("a"); return err })
	card(2)
	update(t, s, func(tx Tx) error { return tx.Put(Entry{Bucket: "b", Key: "2"}) })
	card(1)
	clock.Advance(2 * time.Second)
	update(t, s, func(tx Tx) error {
		if due, err := tx.HasExpired(); err != nil || !due {
			t.Fatalf("HasExpired = %v, %v", due, err)
		}
		n, err := tx.Reap(0, nil)
		if n != 1 {
			t.Fatalf("reaped %d, want 1", n)
		}
		return err
	})
	card(0)
}

// A Redis store's local state lives under $XDG_STATE_HOME, one folder per
// server, DB and prefix, whatever the credentials.
func TestRedisStateDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/state")
	a, _ := parseRedisURL("redis://u:one@h:1/2?prefix=p")
	b, _ := parseRedisURL("redis://other:two@h:1/2?prefix=p")
	c, _ := parseRedisURL("redis://h:1/2?prefix=q")
	da, db, dc := redisStateDir(a), redisStateDir(b), redisStateDir(c)
	if !strings.HasPrefix(da, "/state/livedict/redis/") || da != db || da == dc {
		t.Fatalf("state dirs %q %q %q", da, db, dc)
	}
}

// With HOME and XDG_STATE_HOME unset (cron, env -i), the state folder is
// under the home in the user database, as the settings' store and config
// are, not under the shared temp folder, where another user may have made
// .local/state first.
func TestRedisStateDirWithoutHome(t *testing.T) {
	u, err := user.Current()
	if err != nil || !filepath.IsAbs(u.HomeDir) {
		t.Skip("no home directory in the user database")
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "")
	a, _ := parseRedisURL("redis://h:1/2?prefix=p")
	if d := redisStateDir(a); !strings.HasPrefix(d, filepath.Join(u.HomeDir, ".local", "state", "livedict", "redis")+"/") {
		t.Fatalf("state dir %q, want it under %s", d, u.HomeDir)
	}
}

// openNative opens a Redis store on the system clock, where values carry
// native TTLs.
func openNative(t *testing.T, url string) *redisStore {
	t.Helper()
	s, err := Open(url, Options{BusyTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	rs := s.(*redisStore)
	if !rs.native {
		t.Fatal("a store on the system clock has native TTLs")
	}
	return rs
}

// An entry's value is a STRING whose native TTL is the deadline, so
// redis-cli GET/PTTL see it; an entry without deadline has none.
func TestRedisNativeTTL(t *testing.T) {
	rs := openNative(t, redistest.URL(t))
	ctx := context.Background()
	at := time.Now().Add(time.Hour).UnixMilli()
	update(t, rs, func(tx Tx) error {
		if err := tx.Put(Entry{Bucket: "b", Key: "k:1", Value: []byte("v1"), ExpiresAt: at}); err != nil {
			return err
		}
		return tx.Put(Entry{Bucket: "b", Key: "forever", Value: []byte("v2")})
	})
	vk := rs.valueKey("b", "k:1")
	if vk != rs.p+"v:1:b:k:1" {
		t.Fatalf("value key %q", vk)
	}
	if v, err := rs.c.Get(ctx, vk).Result(); err != nil || v != "v1" {
		t.Fatalf("GET %s = %q, %v", vk, v, err)
	}
	pttl, err := rs.c.PTTL(ctx, vk).Result()
	if err != nil || pttl <= 59*time.Minute || pttl > time.Hour {
		t.Fatalf("PTTL = %v, %v; want about an hour", pttl, err)
	}
	if pttl, err := rs.c.PTTL(ctx, rs.valueKey("b", "forever")).Result(); err != nil || pttl != -1*time.Nanosecond {
		t.Fatalf("PTTL of an entry without deadline = %v, %v", pttl, err)
	}
	// persist drops the native TTL too.
	update(t, rs, func(tx Tx) error { _, err := Persist(tx, "b", "k:1"); return err })
	if pttl, err := rs.c.PTTL(ctx, vk).Result(); err != nil || pttl != -1*time.Nanosecond {
		t.Fatalf("PTTL after persist = %v, %v", pttl, err)
	}
	if n, _ := rs.c.Exists(ctx, rs.shadowKey("b", "k:1")).Result(); n != 0 {
		t.Fatal("a shadow with nobody listening")
	}
}

// A value Redis has freed (here: its key expired on the server's clock
// before the transaction's) is not read, even though the metadata says
// the entry lives.
func TestRedisFreedValueIsAbsent(t *testing.T) {
	rs := openNative(t, redistest.URL(t))
	ctx := context.Background()
	set(t, rs, "b", "k", "v", time.Now().Add(time.Hour).UnixMilli())
	set(t, rs, "b", "other", "w", time.Now().Add(time.Hour).UnixMilli())
	if err := rs.c.PExpire(ctx, rs.valueKey("b", "k"), time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	for rs.c.Exists(ctx, rs.valueKey("b", "k")).Val() != 0 {
		time.Sleep(5 * time.Millisecond) // the server frees it
	}
	if _, ok := get(t, rs, "b", "k"); ok {
		t.Fatal("read a value Redis freed")
	}
	view(t, rs, func(tx Tx) error {
		var keys []string
		err := tx.Scan("b", "", true, func(e Entry) error { keys = append(keys, e.Key); return nil })
		if fmt.Sprint(keys) != "[other]" {
			t.Errorf("scan with values = %v", keys)
		}
		return err
	})
}

// A key without a deadline whose value is gone (deleted, evicted) or is
// not a STRING is damaged: Get and a scan with values fail with
// ErrDamagedKey instead of skipping it, and Delete clears it.
func TestRedisMissingValueIsDamage(t *testing.T) {
	rs := openNative(t, redistest.URL(t))
	ctx := context.Background()
	set(t, rs, "b", "gone", "v", 0)
	set(t, rs, "b", "list", "v", 0)
	set(t, rs, "b", "ok", "w", 0)
	if err := rs.c.Del(ctx, rs.valueKey("b", "gone")).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rs.c.Del(ctx, rs.valueKey("b", "list")).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rs.c.RPush(ctx, rs.valueKey("b", "list"), "x").Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"gone", "list"} {
		err := rs.View(ctx, func(tx Tx) error { _, _, err := tx.Get("b", k); return err })
		if !errors.Is(err, ErrDamagedKey) || !strings.Contains(err.Error(), `"`+k+`"`) {
			t.Errorf("get %s: %v", k, err)
		}
	}
	err := rs.View(ctx, func(tx Tx) error {
		return tx.Scan("b", "", true, func(Entry) error { return nil })
	})
	if !errors.Is(err, ErrDamagedKey) {
		t.Errorf("scan with values: %v", err)
	}
	update(t, rs, func(tx Tx) error {
		for _, k := range []string{"gone", "list"} {
			if ok, err := tx.Delete("b", k); err != nil || !ok {
				return fmt.Errorf("delete %s: %v %v", k, ok, err)
			}
		}
		return nil
	})
	view(t, rs, func(tx Tx) error {
		var keys []string
		err := tx.Scan("b", "", true, func(e Entry) error { keys = append(keys, e.Key); return nil })
		if fmt.Sprint(keys) != "[ok]" {
			t.Errorf("scan after delete = %v", keys)
		}
		return err
	})
	if n := rs.c.Exists(ctx, rs.valueKey("b", "list")).Val(); n != 0 {
		t.Error("delete left the damaged value")
	}
}

// A long-running process's kept connection that the server dropped (a
// restart, CLIENT KILL) costs nothing: the next transaction, read or
// write, runs again on a new connection, since it had sent no write.
func TestRedisKeptConnectionDropped(t *testing.T) {
	rs := openNative(t, redistest.URL(t))
	ctx := context.Background()
	set(t, rs, "b", "k", "v", 0)
	kill := func() {
		t.Helper()
		if rs.idle == nil {
			t.Fatal("no kept connection")
		}
		id, err := rs.idle.ClientID(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if err := rs.c.ClientKillByFilter(ctx, "ID", fmt.Sprint(id)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	kill()
	if e, ok := get(t, rs, "b", "k"); !ok || string(e.Value) != "v" {
		t.Fatalf("read after the kill: %q %v", e.Value, ok)
	}
	kill()
	set(t, rs, "b", "k", "w", 0)
	if e, ok := get(t, rs, "b", "k"); !ok || string(e.Value) != "w" {
		t.Fatalf("after a write: %q %v", e.Value, ok)
	}
}

// A value over Redis's 512 MiB bulk limit is refused before anything is
// sent (the server would drop the connection): ErrValueTooLarge, exit 4.
func TestRedisValueOverBulkLimit(t *testing.T) {
	rs := openNative(t, redistest.URL(t))
	big := make([]byte, redisMaxValue+1) // untouched pages: not resident
	err := rs.Update(context.Background(), func(tx Tx) error {
		return tx.Put(Entry{Bucket: "b", Key: "k", Value: big})
	})
	if !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("put: %v", err)
	}
	err = rs.Update(context.Background(), func(tx Tx) error {
		_, err := tx.(BulkLoader).LoadMany([]Entry{{Bucket: "b", Key: "k", Value: big}}, ReplaceExisting)
		return err
	})
	if !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("load: %v", err)
	}
}

// Shadow copies exist only while someone listens for expire events: hook
// definitions in !hooks, or a subscriber of the events channel. Reap hands
// fn the shadow's value once Redis freed the entry, and marks the entry
// Lost when there was no shadow.
func TestRedisShadowOnlyWithListeners(t *testing.T) {
	url := redistest.URL(t)
	rs := openNative(t, url)
	ctx := context.Background()
	past := time.Now().Add(-time.Second).UnixMilli() // Redis frees it at once
	put := func(key string) {
		t.Helper()
		update(t, rs, func(tx Tx) error {
			return tx.Put(Entry{Bucket: "b", Key: key, Value: []byte("value of " + key), ExpiresAt: past})
		})
	}
	shadowed := func(key string) bool {
		return rs.c.Exists(ctx, rs.shadowKey("b", key)).Val() == 1
	}
	put("nobody")
	if shadowed("nobody") {
		t.Fatal("shadow with nobody listening")
	}
	// A watcher subscribes.
	sctx, cancel := context.WithCancel(ctx)
	msgs, err := rs.Subscribe(sctx)
	if err != nil {
		t.Fatal(err)
	}
	put("watched")
	cancel()
	for range msgs {
	}
	if !shadowed("watched") {
		t.Fatal("no shadow while a watcher listens")
	}
	// A hook definition.
	update(t, rs, func(tx Tx) error { return tx.Put(Entry{Bucket: redisHooksBucket, Key: "h", Value: []byte("def")}) })
	put("hooked")
	if !shadowed("hooked") {
		t.Fatal("no shadow while hooks are defined")
	}
	got := map[string]Entry{}
	update(t, rs, func(tx Tx) error {
		_, err := tx.Reap(0, func(e Entry) error { got[e.Key] = e; return nil })
		return err
	})
	if len(got) != 3 {
		t.Fatalf("reaped %v", got)
	}
	for _, k := range []string{"watched", "hooked"} {
		if e := got[k]; string(e.Value) != "value of "+k || e.Lost {
			t.Errorf("reaped %s: %+v", k, e)
		}
		if shadowed(k) {
			t.Errorf("shadow of %s outlives the reap", k)
		}
	}
	if e := got["nobody"]; len(e.Value) != 0 || !e.Lost {
		t.Errorf("reaped nobody: %+v, want Lost", e)
	}
	// Deleting or persisting an entry drops its shadow.
	set(t, rs, "b", "d", "v", time.Now().Add(time.Hour).UnixMilli())
	set(t, rs, "b", "p", "v", time.Now().Add(time.Hour).UnixMilli())
	if !shadowed("d") || !shadowed("p") {
		t.Fatal("no shadows")
	}
	update(t, rs, func(tx Tx) error {
		if _, err := tx.Delete("b", "d"); err != nil {
			return err
		}
		_, err := Persist(tx, "b", "p")
		return err
	})
	if shadowed("d") || shadowed("p") {
		t.Fatal("shadow outlives delete or persist")
	}
}

// Three reapers (as three daemons would be) on one server: each expired
// entry is reaped, and handed to fn with its value, exactly once.
func TestRedisConcurrentReapersReapOnce(t *testing.T) {
	url := redistest.URL(t)
	rs := openNative(t, url)
	const n = 300
	update(t, rs, func(tx Tx) error { return tx.Put(Entry{Bucket: redisHooksBucket, Key: "h", Value: []byte("def")}) })
	past := time.Now().Add(-time.Second).UnixMilli()
	update(t, rs, func(tx Tx) error {
		for i := 0; i < n; i++ {
			if err := tx.Put(Entry{Bucket: fmt.Sprint("b", i%3), Key: fmt.Sprint("k", i), Value: []byte(fmt.Sprint("v", i)), ExpiresAt: past}); err != nil {
				return err
			}
		}
		return nil
	})
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for w := 0; w < 3; w++ {
		s := openNative(t, url)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var got []Entry
				var reaped int
				err := s.Update(context.Background(), func(tx Tx) error {
					got = got[:0] // a retried transaction starts again
					var err error
					reaped, err = tx.Reap(20, func(e Entry) error { got = append(got, e); return nil })
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, e := range got {
					if string(e.Value) != "v"+strings.TrimPrefix(e.Key, "k") || e.Lost {
						errs <- fmt.Errorf("reaped %+v", e)
					}
					seen[e.Bucket+"/"+e.Key]++
				}
				mu.Unlock()
				if reaped == 0 {
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
	if len(seen) != n {
		t.Fatalf("reaped %d distinct entries, want %d", len(seen), n)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("%s reaped %d times", k, c)
		}
	}
}

// A store written in the first Redis layout is refused with one line
// saying what to do, not misread.
func TestRedisOldLayoutRefused(t *testing.T) {
	url := redistest.URL(t)
	rs := openNative(t, url)
	ctx := context.Background()
	if err := rs.c.SAdd(ctx, rs.bucketsKey(), "b").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rs.c.HSet(ctx, rs.bucketKey("b"), "k", encodeRedisEntry(Entry{Value: []byte("v")})).Err(); err != nil {
		t.Fatal(err)
	}
	err := openAndRead(url, Options{})
	if KindOf(err) != KindStore || !strings.Contains(err.Error(), "older livedict layout") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v (kind %v)", err, KindOf(err))
	}
	// Once written by this version, it opens.
	rs.c.Set(ctx, rs.layoutKey(), redisLayout, 0)
	if err := openAndRead(url, Options{}); err != nil {
		t.Fatal(err)
	}
	// A layout this version does not know is a newer livedict's, with
	// or without user buckets.
	rs.c.Set(ctx, rs.layoutKey(), "3", 0)
	for range 2 {
		err = openAndRead(url, Options{})
		if KindOf(err) != KindStore || !strings.Contains(err.Error(), `layout "3", written by a newer livedict`) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("err = %v (kind %v)", err, KindOf(err))
		}
		rs.c.Del(ctx, rs.bucketsKey())
	}
}

// openAndRead opens a store and reads from it: a Redis store talks to its
// server first in its first transaction.
func openAndRead(url string, opts Options) error {
	s, err := Open(url, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.View(context.Background(), func(tx Tx) error {
		_, _, err := tx.Get("b", "k")
		return err
	})
}

// A large import is one MULTI/EXEC streamed in chunks: a connection
// killed (CLIENT KILL) while the queue streams leaves nothing written, and
// the import fails as a store error.
func TestRedisImportKilledMidwayWritesNothing(t *testing.T) {
	url := redistest.URL(t)
	rs := openNative(t, url)
	ctx := context.Background()
	at := time.Now().Add(time.Hour).UnixMilli()
	entries := make([]Entry, 200000)
	for i := range entries {
		entries[i] = Entry{Bucket: "imp", Key: fmt.Sprintf("k%07d", i), Value: []byte("value"), ExpiresAt: at}
	}
	done := make(chan error, 1)
	go func() {
		done <- rs.Update(ctx, func(tx Tx) error {
			_, err := Import(tx, Limits{}, entries, FailOnExisting)
			return err
		})
	}()
	// Another client finds the importer while it is inside MULTI (flag x)
	// and kills its connection.
	admin := openNative(t, url)
	killed := false
	for !killed {
		select {
		case err := <-done:
			t.Fatalf("the import ended (%v) before its MULTI was seen", err)
		default:
		}
		list, err := admin.c.ClientList(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(list, "\n") {
			var id, flags string
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "id="); ok {
					id = v
				}
				if v, ok := strings.CutPrefix(f, "flags="); ok {
					flags = v
				}
			}
			if strings.Contains(flags, "x") {
				if err := admin.c.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
	}
	if err := <-done; KindOf(err) != KindStore {
		t.Fatalf("import on a killed connection: %v (kind %v), want a store error", err, KindOf(err))
	}
	keys, err := admin.c.Keys(ctx, admin.p+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("a killed import left %d keys, e.g. %q", len(keys), keys[0])
	}
	// The same import on a live connection lands whole.
	update(t, rs, func(tx Tx) error { _, err := Import(tx, Limits{}, entries[:5000], FailOnExisting); return err })
	view(t, rs, func(tx Tx) error {
		n, err := tx.Count("imp")
		if n != 5000 {
			t.Errorf("count = %d, want 5000", n)
		}
		return err
	})
	if pttl := admin.c.PTTL(ctx, rs.valueKey("imp", "k0004999")).Val(); pttl <= 59*time.Minute {
		t.Errorf("imported value's PTTL = %v", pttl)
	}
}

// A read-only transaction that reads in several round trips sees one
// committed state: a writer changes two keys together while readers read
// them one round trip apart, and never see them differ.
func TestRedisViewSeesOneState(t *testing.T) {
	url := redistest.URL(t)
	w := openNative(t, url)
	r := openNative(t, url)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			v := []byte(fmt.Sprint(i))
			if err := w.Update(ctx, func(tx Tx) error {
				if err := tx.Put(Entry{Bucket: "x", Key: "a", Value: v}); err != nil {
					return err
				}
				return tx.Put(Entry{Bucket: "y", Key: "b", Value: v})
			}); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < 300; i++ {
		err := r.View(context.Background(), func(tx Tx) error {
			a, _, err := tx.Get("x", "a")
			if err != nil {
				return err
			}
			b, _, err := tx.Get("y", "b")
			if err != nil {
				return err
			}
			if string(a.Value) != string(b.Value) {
				t.Errorf("read a=%q b=%q: two states in one transaction", a.Value, b.Value)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
}

// A user entry's metadata decodes to what was encoded, and anything else
// of the wrong length is ErrDamagedKey (del clears it), never a panic.
func FuzzRedisMeta(f *testing.F) {
	f.Add(int64(0), []byte("v"), "")
	f.Add(int64(1796590661658), []byte{}, "\x00\x01")
	f.Fuzz(func(t *testing.T, at int64, value []byte, raw string) {
		e, err := decodeRedisMeta("b", "k", encodeRedisMeta(Entry{ExpiresAt: at, Value: value}))
		if err != nil || e.ExpiresAt != at || e.Size != int64(len(value)) || e.Bucket != "b" || e.Key != "k" {
			t.Fatalf("round trip of (%d, %d bytes) = %+v, %v", at, len(value), e, err)
		}
		if _, err := decodeRedisMeta("b", "k", raw); (err != nil) != (len(raw) != 16) || err != nil && !errors.Is(err, ErrDamagedKey) {
			t.Fatalf("decode of %d bytes: %v", len(raw), err)
		}
	})
}

// Value and shadow key names are unambiguous: two different (bucket, key)
// pairs never share one, whatever bytes they hold.
func FuzzRedisEntryKey(f *testing.F) {
	f.Add("a", "b:c", "a:b", "c")
	f.Add("1", "x", "1:1", "x")
	f.Fuzz(func(t *testing.T, b1, k1, b2, k2 string) {
		s := &redisStore{p: "{p}:"}
		same := b1 == b2 && k1 == k2
		if (s.valueKey(b1, k1) == s.valueKey(b2, k2)) != same {
			t.Fatalf("value keys of (%q,%q) and (%q,%q): %q %q", b1, k1, b2, k2, s.valueKey(b1, k1), s.valueKey(b2, k2))
		}
		if s.valueKey(b1, k1) == s.shadowKey(b2, k2) {
			t.Fatalf("a value key is a shadow key: %q", s.valueKey(b1, k1))
		}
	})
}

// A Redis user whose ACL refuses one of a commit's commands (here the
// PUBLISH on the changes channel: Redis 7 gives a new user no channels)
// gets a store error and nothing written: a script is not rolled back,
// so the refusal must come before the first write. The write once landed
// while the command reported exit 3, and an incr retried by its caller
// counted twice.
func TestRedisACLRefusalWritesNothing(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no")
	admin := srv.Client()
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "app", "on", ">apppw", "~{p}*", "resetchannels", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	s, err := Open("unix://app:apppw@"+srv.Sock+"?prefix=p", Options{BusyTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Update(ctx, func(tx Tx) error { return tx.Put(Entry{Bucket: "b", Key: "k", Value: []byte("v")}) })
	if KindOf(err) != KindStore || !strings.Contains(err.Error(), "NOPERM") || strings.Contains(err.Error(), "apppw") {
		t.Fatalf("put refused by the ACL: err = %v (kind %v)", err, KindOf(err))
	}
	keys, err := admin.Keys(ctx, "{p}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("a refused commit wrote %v", keys)
	}
}

// A user the ACL denies PUBSUB (but lets PUBLISH on the prefix's
// channels) reads and writes: livedict counts someone as listening, so an
// entry with a deadline keeps its shadow copy for an expire event.
func TestRedisNoPubSubStillWorks(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no")
	admin := srv.Client()
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "app", "on", ">apppw", "~{p}*", "&{p}*", "+@all", "-@pubsub", "+publish").Err(); err != nil {
		t.Fatal(err)
	}
	s, err := Open("unix://app:apppw@"+srv.Sock+"?prefix=p", Options{BusyTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Now().Add(time.Hour).UnixMilli()
	update(t, s, func(tx Tx) error { return tx.Put(Entry{Bucket: "b", Key: "k", Value: []byte("v"), ExpiresAt: at}) })
	if e, ok := get(t, s, "b", "k"); !ok || string(e.Value) != "v" {
		t.Fatalf("get: %q %v", e.Value, ok)
	}
	if admin.Exists(ctx, s.(*redisStore).shadowKey("b", "k")).Val() != 1 {
		t.Error("no shadow copy: an expire event would carry no value")
	}
}

// A fence that is not a counter (written by hand) fails a commit before
// any of its writes: the fence's INCR is the script's first write.
func TestRedisDamagedFenceWritesNothing(t *testing.T) {
	rs := openNative(t, redistest.URL(t))
	ctx := context.Background()
	set(t, rs, "b", "a", "v", 0)
	if err := rs.c.Set(ctx, rs.fence(), "abc", 0).Err(); err != nil {
		t.Fatal(err)
	}
	err := rs.Update(ctx, func(tx Tx) error { return tx.Put(Entry{Bucket: "b", Key: "k", Value: []byte("v")}) })
	if KindOf(err) != KindStore {
		t.Fatalf("put on a damaged fence: err = %v (kind %v)", err, KindOf(err))
	}
	if rs.c.Exists(ctx, rs.valueKey("b", "k")).Val() != 0 || rs.c.HExists(ctx, rs.metaKey("b"), "k").Val() {
		t.Fatal("a failed commit wrote its entry")
	}
}

// A rediss:// URL on a port whose server does not speak TLS (it waits
// for a command while the client waits for the handshake): exit 3 once
// connect_timeout passes, one line that says what is likely wrong; it
// once said only "context deadline exceeded".
func TestRedisTLSOnPlainPortSaysSo(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // a plain server: reads, never answers a handshake
		}
	}()
	addr := l.Addr().String()
	for url, want := range map[string]string{
		"rediss://" + addr: "no TLS handshake within connect_timeout (300ms)",
		"redis://" + addr:  "no answer within connect_timeout (300ms)",
	} {
		err := openAndRead(url, Options{Redis: RedisOptions{ConnectTimeout: 300 * time.Millisecond}})
		if KindOf(err) != KindStore || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v (kind %v), want %q", url, err, KindOf(err), want)
		}
	}
}

// A write the server refuses inside the commit script (a read-only
// replica, too few replicas) is one line saying what the server said,
// without the script's SHA and line that Redis 7 appends; a replica's
// refusal says to write to the primary. Nothing is written.
func TestRedisRefusedWriteSaysWhy(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--replicaof", "127.0.0.1", "1"}, ": the server is a read-only replica: write to its primary (READONLY "},
		{[]string{"--min-replicas-to-write", "1"}, ": NOREPLICAS "},
	} {
		srv := redistest.StartServer(t, append([]string{"--save", "", "--appendonly", "no"}, c.args...)...)
		s, err := Open(srv.URL, Options{BusyTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Update(context.Background(), func(tx Tx) error { return tx.Put(Entry{Bucket: "b", Key: "k", Value: []byte("v")}) })
		s.Close()
		if KindOf(err) != KindStore || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "script") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: err = %v (kind %v), want %q", c.args, err, KindOf(err), c.want)
		}
		if n := srv.Client().DBSize(context.Background()).Val(); n != 0 {
			t.Errorf("%v: a refused write left %d keys", c.args, n)
		}
	}
}

// A key of the store replaced outside livedict by one of another type (a
// HASH where the deadline index, a ZSET, was; a HASH for the set of
// buckets) is a corrupt store, in one line naming the key where it can:
// before, Redis's bare "WRONGTYPE Operation against a key holding the
// wrong kind of value" named neither the key nor the cause.
func TestRedisForeignTypeInPrefix(t *testing.T) {
	ctx := context.Background()
	url := redistest.URL(t)
	rs := openNative(t, url)
	if err := rs.Update(ctx, func(tx Tx) error {
		return tx.Put(Entry{Bucket: "b", Key: "k", Value: []byte("v"), ExpiresAt: time.Now().Add(time.Hour).UnixMilli()})
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ key, want string }{
		{rs.p + "dl", `key "` + rs.p + `dl" holds another type`},
		{rs.p + "buckets", "a key under " + strings.TrimSuffix(rs.p, ":") + " holds another type"},
	} {
		if err := rs.c.Rename(ctx, c.key, rs.p+"aside").Err(); err != nil {
			t.Fatal(err)
		}
		if err := rs.c.HSet(ctx, c.key, "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
		err := openAndRead(url, Options{})
		if !errors.Is(err, ErrCorrupt) || KindOf(err) != KindStore || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s a HASH: err = %v (kind %v), want ErrCorrupt saying %q", c.key, err, KindOf(err), c.want)
		}
		rs.c.Del(ctx, c.key)
		if err := rs.c.Rename(ctx, rs.p+"aside", c.key).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := openAndRead(url, Options{}); err != nil {
		t.Fatal(err)
	}
}

// A server that closes the connection at once (a TLS port reached with
// redis://) is one line that says where to look; it said a bare "EOF".
func TestRedisClosedAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, err = Open("redis://"+ln.Addr().String(), Options{Redis: RedisOptions{ConnectTimeout: 10 * time.Second}})
	if KindOf(err) != KindStore || !strings.Contains(err.Error(), ln.Addr().String()) ||
		!strings.Contains(err.Error(), "closed the connection without an answer (a TLS port?") {
		t.Fatalf("err = %v (kind %v)", err, KindOf(err))
	}
}

// A server that closed livedict's connection but answers a new one (a
// CLIENT KILL, a timeout, a proxy dropping it) is not taken for a TLS
// port: the line said "a TLS port? rediss:// speaks TLS" to an operator
// whose plain server had just killed the client (found by the acl
// review).
func TestRedisClosedButAnswering(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for first := true; ; first = false {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if first {
				c.Close() // livedict's own connection: killed
				continue
			}
			go func() { // any later one: a plain Redis (an inline PING)
				defer c.Close()
				if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
					io.WriteString(c, "+PONG\r\n")
				}
			}()
		}
	}()
	_, err = Open("redis://"+ln.Addr().String(), Options{Redis: RedisOptions{ConnectTimeout: 10 * time.Second}})
	if KindOf(err) != KindStore || !strings.Contains(err.Error(), ln.Addr().String()) ||
		strings.Contains(err.Error(), "TLS") || !strings.Contains(err.Error(), "closed the connection without an answer") {
		t.Fatalf("err = %v (kind %v)", err, KindOf(err))
	}
}

// A value Redis freed before the entry's deadline (the server's clock
// ahead of this host's, or a TTL changed with redis-cli) is expired to
// every read: keys and list (a scan without values) listed it while get,
// exists and export said it was gone.
func TestRedisScanSkipsValuesTheServerFreed(t *testing.T) {
	ctx := context.Background()
	rs := openNative(t, redistest.URL(t))
	at := time.Now().Add(time.Hour).UnixMilli()
	if err := rs.Update(ctx, func(tx Tx) error {
		for _, e := range []Entry{{Bucket: "b", Key: "freed", Value: []byte("1"), ExpiresAt: at},
			{Bucket: "b", Key: "kept", Value: []byte("2"), ExpiresAt: at}, {Bucket: "b", Key: "plain", Value: []byte("3")}} {
			if err := tx.Put(e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := rs.c.Do(ctx, "PEXPIRE", rs.valueKey("b", "freed"), 1).Err(); err != nil {
		t.Fatal(err)
	}
	for rs.c.Exists(ctx, rs.valueKey("b", "freed")).Val() != 0 {
		time.Sleep(5 * time.Millisecond)
	}
	for _, withValues := range []bool{false, true} {
		var got []string
		if err := rs.View(ctx, func(tx Tx) error {
			return tx.Scan("b", "", withValues, func(e Entry) error { got = append(got, e.Key); return nil })
		}); err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != "kept,plain" {
			t.Errorf("scan (values %v) = %q, want kept,plain", withValues, got)
		}
	}
}

// serverBusy tells a server that answers nothing in time (busy: a long
// EXEC, a script) from one that cannot be reached, whatever wrapping the
// timeout comes in.
func TestRedisServerBusy(t *testing.T) {
	for _, c := range []struct {
		err  error
		busy bool
	}{
		{os.ErrDeadlineExceeded, true}, // go-redis on TCP: "i/o timeout"
		{fmt.Errorf("CLIENT LIST: %w", os.ErrDeadlineExceeded), true},
		{&net.OpError{Op: "read", Net: "unix", Err: os.ErrDeadlineExceeded}, true},
		{context.DeadlineExceeded, true},
		{errors.New("BUSY Redis is busy running a script."), true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, false},
		{&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, false},
		{io.EOF, false},
		{errors.New("NOPERM this user has no permissions to run the 'client|list' command"), false},
		{nil, false},
	} {
		if got := serverBusy(c.err); got != c.busy {
			t.Errorf("serverBusy(%#v) = %v, want %v", c.err, got, c.busy)
		}
	}
}

// A bulk load given in key order is written in that order unsorted; any
// other load, or one changed after, is sorted (inKeyOrder returns nil).
func TestRedisBucketInKeyOrder(t *testing.T) {
	load := func(keys ...string) *redisBucket {
		b := &redisBucket{dirty: map[string]*Entry{}}
		for _, k := range keys {
			e := &Entry{Key: k}
			b.dirty[k] = e
			b.order = append(b.order, e)
		}
		return b
	}
	if got := load("a", "b", "c").inKeyOrder(3); len(got) != 3 || got[0].Key != "a" || got[2].Key != "c" {
		t.Errorf("sorted load: got %v, want it as given", got)
	}
	if got := load("b", "a", "c").inKeyOrder(3); got != nil {
		t.Errorf("unsorted load: got %v, want nil (sort it)", got)
	}
	if got := load("a", "a").inKeyOrder(2); got != nil {
		t.Errorf("a key loaded twice: got %v, want nil", got)
	}
	b := load("a", "b")
	b.dirty["b"] = &Entry{Key: "b"} // changed after the load
	if got := b.inKeyOrder(2); got != nil {
		t.Errorf("a key changed after the load: got %v, want nil", got)
	}
	b = load("a", "b")
	b.dirty["c"] = &Entry{Key: "c"} // another write beside the load
	if got := b.inKeyOrder(3); got != nil {
		t.Errorf("a write beside the load: got %v, want nil", got)
	}
}

// skewHost makes this host's clock run d off the server's (real) one for
// the rest of the test.
func skewHost(t *testing.T, d time.Duration) {
	t.Helper()
	RedisHostNow = func() time.Time { return time.Now().Add(d) }
	t.Cleanup(func() { RedisHostNow = time.Now })
}

// A store tells time by the server's clock, as Redis's SET EX does. On a
// host whose clock ran 30 s behind, a TTL of 10 s was computed from that
// clock and was already past on the server: the value was freed at once
// and get found nothing. 30 s ahead, it lived 40 s.
func TestRedisDeadlinesOnServerClock(t *testing.T) {
	url := redistest.URL(t)
	ctx := context.Background()
	for _, skew := range []time.Duration{-30 * time.Second, 30 * time.Second} {
		skewHost(t, skew)
		rs := openNative(t, url)
		var now int64
		update(t, rs, func(tx Tx) error {
			now = tx.Now()
			_, err := Set(tx, Limits{}, SetArgs{Bucket: "b", Key: "k", Value: []byte("v"), ExpiresAt: now + 10_000})
			return err
		})
		if d := time.Since(time.UnixMilli(now)); d < -5*time.Second || d > 5*time.Second {
			t.Errorf("skew %v: the transaction's time is %v off the server's", skew, d)
		}
		pttl, err := rs.c.PTTL(ctx, rs.valueKey("b", "k")).Result()
		if err != nil || pttl < 5*time.Second || pttl > 10*time.Second {
			t.Errorf("skew %v: PTTL of a 10 s TTL = %v, %v; want about 10 s", skew, pttl, err)
		}
		view(t, rs, func(tx Tx) error {
			if _, ok, err := tx.Get("b", "k"); err != nil || !ok {
				t.Errorf("skew %v: get = %v, %v; want the value", skew, ok, err)
			}
			return nil
		})
		if c := ClockOf(rs, ttl.System); c.Now().Sub(time.Now()).Abs() > 5*time.Second {
			t.Errorf("skew %v: ClockOf is %v off the server's", skew, c.Now().Sub(time.Now()))
		}
	}
}

// A long-running process measures the server's clock again: a host clock
// stepped after the store opened is followed within redisClockResync.
func TestRedisClockMeasuredAgain(t *testing.T) {
	rs := openNative(t, redistest.URL(t))
	skewHost(t, -time.Hour) // stepped back an hour after the open
	rs.clock.mu.Lock()
	rs.clock.measured = rs.clock.measured.Add(-redisClockResync) // as if 30 s had passed
	rs.clock.mu.Unlock()
	rs.Clock().Now() // starts the measure
	deadline := time.Now().Add(10 * time.Second)
	for rs.Clock().Now().Sub(time.Now()).Abs() > 5*time.Second {
		if time.Now().After(deadline) {
			t.Fatalf("the server's clock is still told %v off after 10 s", rs.Clock().Now().Sub(time.Now()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A TIME reply is two decimal strings, seconds and microseconds; anything
// else is no time, never a panic or a time from garbage.
func FuzzParseRedisTime(f *testing.F) {
	f.Add("1796689262", "123456")
	f.Add("-1", "0")
	f.Add("1", "1000000")
	f.Add("OK", "")
	f.Fuzz(func(t *testing.T, sec, usec string) {
		tm, ok := parseRedisTime([]any{sec, usec})
		if !ok {
			return
		}
		s, err1 := strconv.ParseInt(sec, 10, 64)
		u, err2 := strconv.ParseInt(usec, 10, 64)
		if err1 != nil || err2 != nil || u < 0 || u >= 1e6 || tm.Unix() != s || int64(tm.Nanosecond()) != u*1000 {
			t.Fatalf("parseRedisTime(%q, %q) = %v, true", sec, usec, tm)
		}
	})
}
