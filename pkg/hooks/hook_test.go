package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
)

// t0 is the fake clock's start: a round number, so expected times are easy
// to write down.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func memStore(t *testing.T) (store.Store, *ttl.Fake) {
	t.Helper()
	clk := ttl.NewFake(t0)
	return openStore(t, "memory:", clk), clk
}

// sqliteStore opens a fresh SQLite store in a temp dir.
func sqliteStore(t *testing.T) (store.Store, *ttl.Fake) {
	t.Helper()
	clk := ttl.NewFake(t0)
	return openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), clk), clk
}

func openStore(t *testing.T, url string, clk ttl.Clock) store.Store {
	t.Helper()
	s, err := store.Open(url, store.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eachStore runs fn against a memory and a SQLite store.
func eachStore(t *testing.T, fn func(t *testing.T, s store.Store, clk *ttl.Fake)) {
	for name, open := range map[string]func(*testing.T) (store.Store, *ttl.Fake){
		"memory": memStore, "sqlite": sqliteStore,
	} {
		t.Run(name, func(t *testing.T) {
			s, clk := open(t)
			fn(t, s, clk)
		})
	}
}

func update(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func addHook(t *testing.T, s store.Store, h Hook) Hook {
	t.Helper()
	if h.Argv == nil {
		h.Argv = []string{"/bin/true"}
	}
	update(t, s, func(tx store.Tx) error {
		var err error
		h, err = Add(tx, h, nil)
		return err
	})
	return h
}

func TestParseEvents(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Event
		str  string
	}{
		{"set", Set, "set"},
		{"get", Get, "get"},
		{"delete", Delete, "delete"},
		{"expire", Expire, "expire"},
		{"all", All, "set,get,delete,expire"},
		{"expire,set", Set | Expire, "set,expire"},
		{" set , delete ", Set | Delete, "set,delete"},
		{"set,set", Set, "set"},
		{"set,all", All, "set,get,delete,expire"},
	} {
		got, err := ParseEvents(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseEvents(%q) = %v, %v; want %v", c.in, got, err, c.want)
			continue
		}
		if got.String() != c.str {
			t.Errorf("ParseEvents(%q).String() = %q, want %q", c.in, got.String(), c.str)
		}
		again, err := ParseEvents(got.String())
		if err != nil || again != got {
			t.Errorf("round trip of %q: %v, %v", got.String(), again, err)
		}
	}
	for _, bad := range []string{"", "sets", "SET", "set,", ",set", "set,,get", "del", "expired", "all,x"} {
		if ev, err := ParseEvents(bad); err == nil || !errors.Is(err, ErrEvents) {
			t.Errorf("ParseEvents(%q) = %v, %v; want ErrEvents", bad, ev, err)
		}
	}
	if Event(0).String() != "" {
		t.Errorf("Event(0).String() = %q", Event(0).String())
	}
	// JSON is the comma list.
	b, err := json.Marshal(Set | Expire)
	if err != nil || string(b) != `"set,expire"` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	var e Event
	if err := json.Unmarshal([]byte(`"get,delete"`), &e); err != nil || e != Get|Delete {
		t.Fatalf("unmarshal = %v, %v", e, err)
	}
	if err := json.Unmarshal([]byte(`"nope"`), &e); err == nil {
		t.Fatal("unmarshal of a bad list succeeded")
	}
	if err := json.Unmarshal([]byte(`3`), &e); err == nil {
		t.Fatal("unmarshal of a number succeeded")
	}
}

func TestMatches(t *testing.T) {
	h := Hook{Enabled: true, Events: Set | Expire, Key: "session:*", Bucket: "web"}
	for _, c := range []struct {
		ev          Event
		bucket, key string
		want        bool
	}{
		{Set, "web", "session:1", true},
		{Expire, "web", "session:", true},
		{Get, "web", "session:1", false},
		{Delete, "web", "session:1", false},
		{Set, "main", "session:1", false},
		{Set, "web", "user:1", false},
		{Set, "web", "xsession:1", false},
		{Set | Get, "web", "session:1", true},
	} {
		if got := h.Matches(c.ev, c.bucket, c.key); got != c.want {
			t.Errorf("Matches(%v, %q, %q) = %v, want %v", c.ev, c.bucket, c.key, got, c.want)
		}
	}
	any := Hook{Enabled: true, Events: All, Key: "*"}
	for _, b := range []string{"main", "web", "x"} {
		if !any.Matches(Delete, b, "k") {
			t.Errorf("a hook with no bucket does not match bucket %q", b)
		}
	}
	glob := Hook{Enabled: true, Events: All, Key: "k[0-9]?"}
	if !glob.Matches(Set, "main", "k1x") || glob.Matches(Set, "main", "kx1") || glob.Matches(Set, "main", "k1") {
		t.Error("glob matching is wrong")
	}
	off := any
	off.Enabled = false
	if off.Matches(Set, "main", "k") {
		t.Error("a disabled hook matches")
	}
	none := any
	none.Events = 0
	if none.Matches(Set, "main", "k") {
		t.Error("a hook with no events matches")
	}
}

func TestAddListLookupRemove(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store, clk *ttl.Fake) {
		h1 := addHook(t, s, Hook{Name: "one", Events: Set, Argv: []string{"/bin/echo", "a b"}, TimeoutMs: 1500, Env: []string{"FOO"}})
		h2 := addHook(t, s, Hook{Events: All, Key: "k*", Bucket: "web"})
		if h1.ID != 1 || h2.ID != 2 {
			t.Fatalf("ids %d, %d; want 1, 2", h1.ID, h2.ID)
		}
		if !h1.Enabled || h1.Key != "*" || h1.Created != t0.UnixMilli() {
			t.Fatalf("Add did not fill defaults: %+v", h1)
		}
		if h1.Timeout() != 1500*time.Millisecond {
			t.Fatalf("Timeout = %v", h1.Timeout())
		}
		view(t, s, func(tx store.Tx) error {
			hs, err := List(tx)
			if err != nil {
				return err
			}
			if len(hs) != 2 || hs[0].ID != 1 || hs[1].ID != 2 {
				t.Fatalf("List = %+v", hs)
			}
			if hs[0].Name != "one" || hs[0].Argv[1] != "a b" || hs[0].Env[0] != "FOO" || hs[1].Bucket != "web" || hs[1].Key != "k*" {
				t.Fatalf("List lost fields: %+v", hs)
			}
			got, err := Lookup(tx, 2)
			if err != nil || got.Events != All {
				t.Fatalf("Lookup(2) = %+v, %v", got, err)
			}
			if _, err := Lookup(tx, 3); !errors.Is(err, ErrNoHook) {
				t.Fatalf("Lookup(3) err = %v", err)
			}
			return nil
		})

		// Enable/disable report changes only.
		update(t, s, func(tx store.Tx) error {
			if ch, err := SetEnabled(tx, 1, true, nil); err != nil || ch {
				t.Fatalf("enable an enabled hook: %v, %v", ch, err)
			}
			if ch, err := SetEnabled(tx, 1, false, nil); err != nil || !ch {
				t.Fatalf("disable: %v, %v", ch, err)
			}
			if ch, err := SetEnabled(tx, 1, false, nil); err != nil || ch {
				t.Fatalf("disable again: %v, %v", ch, err)
			}
			if _, err := SetEnabled(tx, 9, true, nil); !errors.Is(err, ErrNoHook) {
				t.Fatalf("SetEnabled(9) err = %v", err)
			}
			return nil
		})
		view(t, s, func(tx store.Tx) error {
			h, err := Lookup(tx, 1)
			if err != nil || h.Enabled || h.Name != "one" {
				t.Fatalf("after disable: %+v, %v", h, err)
			}
			return nil
		})

		// Remove; ids are never reused.
		update(t, s, func(tx store.Tx) error {
			if err := Remove(tx, 2); err != nil {
				return err
			}
			if err := Remove(tx, 2); !errors.Is(err, ErrNoHook) {
				t.Fatalf("second Remove(2) err = %v", err)
			}
			return nil
		})
		h3 := addHook(t, s, Hook{Events: Get})
		if h3.ID != 3 {
			t.Fatalf("id after rm = %d, want 3", h3.ID)
		}
		update(t, s, func(tx store.Tx) error { return Remove(tx, 3) })
		if h4 := addHook(t, s, Hook{Events: Get}); h4.ID != 4 {
			t.Fatalf("id after removing the newest = %d, want 4", h4.ID)
		}
		view(t, s, func(tx store.Tx) error {
			hs, err := List(tx)
			if err != nil {
				return err
			}
			if len(hs) != 2 || hs[0].ID != 1 || hs[1].ID != 4 {
				t.Fatalf("List = %+v", hs)
			}
			return nil
		})
	})
}

func TestAddRolledBack(t *testing.T) {
	s, _ := memStore(t)
	boom := errors.New("boom")
	err := s.Update(context.Background(), func(tx store.Tx) error {
		if _, err := Add(tx, Hook{Events: Set, Argv: []string{"x"}}, nil); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	view(t, s, func(tx store.Tx) error {
		hs, err := List(tx)
		if err != nil || len(hs) != 0 {
			t.Fatalf("List after rollback = %+v, %v", hs, err)
		}
		return nil
	})
	if h := addHook(t, s, Hook{Events: Set}); h.ID != 1 {
		t.Fatalf("id after a rolled back add = %d, want 1", h.ID)
	}
}

func TestParseID(t *testing.T) {
	if id, err := ParseID("12"); err != nil || id != 12 {
		t.Fatalf("ParseID(12) = %d, %v", id, err)
	}
	for _, bad := range []string{"", "0", "-1", "x", "1.5", "99999999999999999999"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) succeeded", bad)
		}
	}
}

func TestSeqKeyOrder(t *testing.T) {
	prev := ""
	for _, n := range []uint64{1, 2, 9, 10, 15, 16, 255, 256, 1 << 40} {
		k := seqKey(n)
		if k <= prev {
			t.Fatalf("seqKey(%d) = %q sorts before %q", n, k, prev)
		}
		if back, err := parseSeqKey(k); err != nil || back != n {
			t.Fatalf("parseSeqKey(%q) = %d, %v", k, back, err)
		}
		prev = k
	}
}
