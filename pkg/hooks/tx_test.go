package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
)

type outboxRow struct {
	seq uint64
	rec *record
}

// outbox returns the outbox's events in order.
func outbox(t *testing.T, s store.Store) []outboxRow {
	t.Helper()
	var rows []outboxRow
	view(t, s, func(tx store.Tx) error {
		return tx.Scan(outboxBucket, "", true, func(e store.Entry) error {
			seq, err := parseSeqKey(e.Key)
			if err != nil {
				return err
			}
			r, err := decodeRecord(e)
			if err != nil {
				return err
			}
			rows = append(rows, outboxRow{seq, r})
			return nil
		})
	})
	return rows
}

// hookUpdate runs fn in an Update with a hooks.Tx over the store's hooks.
func hookUpdate(t *testing.T, s store.Store, maxValue int, fn func(tx *Tx) error) (*Tx, error) {
	t.Helper()
	var ht *Tx
	err := s.Update(context.Background(), func(raw store.Tx) error {
		rec, err := NewRecorder(raw, maxValue)
		if err != nil {
			return err
		}
		ht = Wrap(raw, rec)
		return fn(ht)
	})
	return ht, err
}

func mustHookUpdate(t *testing.T, s store.Store, fn func(tx *Tx) error) *Tx {
	t.Helper()
	ht, err := hookUpdate(t, s, 0, fn)
	if err != nil {
		t.Fatal(err)
	}
	return ht
}

func describe(rows []outboxRow) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.rec.Event.String() + " " + r.rec.Bucket + "/" + string(r.rec.Key) + "=" + string(r.rec.Value) + "; ")
	}
	return b.String()
}

func TestTxRecordsSet(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store, clk *ttl.Fake) {
		h := addHook(t, s, Hook{Events: Set, Key: "k*"})
		exp := t0.Add(time.Minute).UnixMilli()
		ht := mustHookUpdate(t, s, func(tx *Tx) error {
			if err := tx.Put(store.Entry{Bucket: "main", Key: "k1", Value: []byte("v1"), ExpiresAt: exp}); err != nil {
				return err
			}
			// Not matching the glob: nothing recorded.
			return tx.Put(store.Entry{Bucket: "main", Key: "other", Value: []byte("x")})
		})
		rows := outbox(t, s)
		if len(rows) != 1 {
			t.Fatalf("outbox = %s", describe(rows))
		}
		r := rows[0].rec
		if r.HookID != h.ID || r.Event != Set || r.Bucket != "main" || string(r.Key) != "k1" ||
			string(r.Value) != "v1" || r.ExpiresAt != exp || r.Time != t0.UnixMilli() || r.Truncated || r.Attempts != 0 {
			t.Fatalf("record = %+v", r)
		}
		if len(ht.Events) != 1 || ht.Events[0] != rows[0].seq {
			t.Fatalf("Events = %v, outbox seq %d", ht.Events, rows[0].seq)
		}
		if !ht.Wrote || ht.MinDeadline != exp {
			t.Fatalf("Wrote = %v, MinDeadline = %d", ht.Wrote, ht.MinDeadline)
		}

		// TTLOnly: the Put changes a deadline, not the value.
		ht = mustHookUpdate(t, s, func(tx *Tx) error {
			tx.TTLOnly = true
			return tx.Put(store.Entry{Bucket: "main", Key: "k1", Value: []byte("v1"), ExpiresAt: exp + 1})
		})
		if rows := outbox(t, s); len(rows) != 1 || len(ht.Events) != 0 || !ht.Wrote {
			t.Fatalf("TTLOnly Put recorded: %s, %v", describe(rows), ht.Events)
		}
	})
}

func TestTxMinDeadline(t *testing.T) {
	s, _ := memStore(t)
	ht := mustHookUpdate(t, s, func(tx *Tx) error {
		for _, at := range []int64{0, 5000, 3000, 0, 4000} {
			if err := tx.Put(store.Entry{Bucket: "main", Key: "k", Value: nil, ExpiresAt: t0.UnixMilli() + at}); err != nil {
				return err
			}
		}
		return nil
	})
	if want := t0.UnixMilli(); ht.MinDeadline != want {
		// at 0 means t0 itself, a non-zero deadline; it is the minimum.
		t.Fatalf("MinDeadline = %d, want %d", ht.MinDeadline, want)
	}
	ht = mustHookUpdate(t, s, func(tx *Tx) error {
		for _, at := range []int64{0, 9000, 7000, 0, 8000} {
			if err := tx.Put(store.Entry{Bucket: "main", Key: "k", ExpiresAt: at}); err != nil {
				return err
			}
		}
		return nil
	})
	if ht.MinDeadline != 7000 {
		t.Fatalf("MinDeadline = %d, want 7000", ht.MinDeadline)
	}
	ht = mustHookUpdate(t, s, func(tx *Tx) error {
		return tx.Put(store.Entry{Bucket: "main", Key: "k"})
	})
	if ht.MinDeadline != 0 || !ht.Wrote {
		t.Fatalf("no deadline: MinDeadline = %d, Wrote = %v", ht.MinDeadline, ht.Wrote)
	}
	ht = mustHookUpdate(t, s, func(tx *Tx) error { _, _, err := tx.Get("main", "k"); return err })
	if ht.Wrote {
		t.Fatal("a read set Wrote")
	}
}

func TestTxRecordsDelete(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store, clk *ttl.Fake) {
		addHook(t, s, Hook{Events: Delete})
		exp := t0.Add(time.Second).UnixMilli()
		update(t, s, func(tx store.Tx) error {
			for _, e := range []store.Entry{
				{Bucket: "main", Key: "live", Value: []byte("old"), ExpiresAt: t0.Add(time.Hour).UnixMilli()},
				{Bucket: "main", Key: "dying", Value: []byte("gone"), ExpiresAt: exp},
			} {
				if err := tx.Put(e); err != nil {
					return err
				}
			}
			return nil
		})
		if rows := outbox(t, s); len(rows) != 0 {
			t.Fatalf("a plain store.Tx recorded: %s", describe(rows))
		}
		clk.Advance(2 * time.Second) // "dying" is now expired, not reaped
		ht := mustHookUpdate(t, s, func(tx *Tx) error {
			for _, k := range []string{"live", "missing", "dying"} {
				ok, err := tx.Delete("main", k)
				if err != nil {
					return err
				}
				if ok != (k == "live") {
					t.Errorf("Delete(%q) = %v", k, ok)
				}
			}
			return nil
		})
		rows := outbox(t, s)
		if len(rows) != 1 || len(ht.Events) != 1 {
			t.Fatalf("outbox = %s", describe(rows))
		}
		r := rows[0].rec
		if r.Event != Delete || string(r.Key) != "live" || string(r.Value) != "old" ||
			r.ExpiresAt != t0.Add(time.Hour).UnixMilli() || r.Time != t0.Add(2*time.Second).UnixMilli() {
			t.Fatalf("delete record = %+v", r)
		}
		if !ht.Wrote {
			t.Fatal("Wrote not set")
		}
		// Deleting nothing writes nothing.
		ht = mustHookUpdate(t, s, func(tx *Tx) error { _, err := tx.Delete("main", "missing"); return err })
		if ht.Wrote || len(ht.Events) != 0 {
			t.Fatalf("deleting a missing key: Wrote %v, Events %v", ht.Wrote, ht.Events)
		}
	})
}

func TestTxDeleteWithoutHookStillDeletes(t *testing.T) {
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Delete, Key: "watched"})
	update(t, s, func(tx store.Tx) error { return tx.Put(store.Entry{Bucket: "main", Key: "k", Value: []byte("v")}) })
	ht := mustHookUpdate(t, s, func(tx *Tx) error {
		ok, err := tx.Delete("main", "k")
		if !ok {
			t.Error("Delete reported nothing deleted")
		}
		return err
	})
	if !ht.Wrote || len(ht.Events) != 0 || len(outbox(t, s)) != 0 {
		t.Fatalf("Wrote %v, Events %v", ht.Wrote, ht.Events)
	}
	view(t, s, func(tx store.Tx) error {
		if _, ok, _ := tx.Get("main", "k"); ok {
			t.Fatal("key still there")
		}
		return nil
	})
}

func TestTxRecordsExpireOnReap(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store, clk *ttl.Fake) {
		addHook(t, s, Hook{Events: Expire, Key: "e*"})
		addHook(t, s, Hook{Events: Delete}) // a reap is not a delete
		exp := t0.Add(time.Second).UnixMilli()
		update(t, s, func(tx store.Tx) error {
			for _, e := range []store.Entry{
				{Bucket: "main", Key: "e1", Value: []byte("one"), ExpiresAt: exp},
				{Bucket: "b2", Key: "e2", Value: []byte("two"), ExpiresAt: exp + 1},
				{Bucket: "main", Key: "x", Value: []byte("unwatched"), ExpiresAt: exp},
				{Bucket: "main", Key: "e3", Value: []byte("later"), ExpiresAt: exp + 60_000},
			} {
				if err := tx.Put(e); err != nil {
					return err
				}
			}
			return nil
		})
		clk.Advance(5 * time.Second)
		var seen []string
		ht := mustHookUpdate(t, s, func(tx *Tx) error {
			n, err := tx.Reap(0, func(e store.Entry) error { seen = append(seen, e.Key); return nil })
			if n != 3 {
				t.Errorf("Reap = %d, want 3", n)
			}
			return err
		})
		if len(seen) != 3 {
			t.Fatalf("fn saw %v", seen)
		}
		rows := outbox(t, s)
		if len(rows) != 2 || len(ht.Events) != 2 || !ht.Wrote {
			t.Fatalf("outbox = %s", describe(rows))
		}
		got := map[string]*record{}
		for _, r := range rows {
			if r.rec.Event != Expire || r.rec.HookID != 1 {
				t.Fatalf("record = %+v", r.rec)
			}
			got[r.rec.Bucket+"/"+string(r.rec.Key)] = r.rec
		}
		if r := got["main/e1"]; r == nil || string(r.Value) != "one" || r.ExpiresAt != exp || r.Time != t0.Add(5*time.Second).UnixMilli() {
			t.Fatalf("e1 = %+v", r)
		}
		if r := got["b2/e2"]; r == nil || string(r.Value) != "two" || r.ExpiresAt != exp+1 {
			t.Fatalf("e2 = %+v", r)
		}
		// A second reap finds nothing, records nothing.
		ht = mustHookUpdate(t, s, func(tx *Tx) error {
			n, err := tx.Reap(0, nil)
			if n != 0 {
				t.Errorf("second Reap = %d", n)
			}
			return err
		})
		if len(ht.Events) != 0 || ht.Wrote || len(outbox(t, s)) != 2 {
			t.Fatal("second reap recorded")
		}
	})
}

// A reap writes the event counter once, at its end (eventSeq.hold): the
// numbers it hands out must still be unique and the counter right after
// the commit, also when the reap fails midway and the caller commits
// anyway, and for events recorded after the reap in the same transaction.
func TestTxReapNumbersEventsOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store, clk *ttl.Fake) {
		addHook(t, s, Hook{Events: Expire | Set})
		exp := t0.Add(time.Second).UnixMilli()
		update(t, s, func(tx store.Tx) error {
			for _, k := range []string{"a", "b", "c", "d", "e"} {
				if err := tx.Put(store.Entry{Bucket: "main", Key: k, Value: []byte(k), ExpiresAt: exp}); err != nil {
					return err
				}
			}
			return nil
		})
		clk.Advance(time.Minute)
		// After every commit: each number once, the counter at the last.
		check := func(when string) []outboxRow {
			rows := outbox(t, s)
			seen := map[uint64]bool{}
			var max uint64
			for _, r := range rows {
				if seen[r.seq] {
					t.Fatalf("%s: event number %d given twice: %s", when, r.seq, describe(rows))
				}
				seen[r.seq], max = true, r.seq
			}
			var counter string
			view(t, s, func(tx store.Tx) error {
				e, _, err := tx.Get(metaBucket, "event")
				counter = string(e.Value)
				return err
			})
			if want := strconv.FormatUint(max, 10); counter != want {
				t.Fatalf("%s: counter %q after events up to %d: %s", when, counter, max, describe(rows))
			}
			return rows
		}
		boom := errors.New("boom")
		calls := 0
		mustHookUpdate(t, s, func(tx *Tx) error {
			// The error is ignored: what the reap did before it commits.
			tx.Reap(0, func(store.Entry) error {
				if calls++; calls == 3 {
					return boom
				}
				return nil
			})
			return nil
		})
		if rows := check("after a failed reap"); len(rows) != 2 {
			t.Fatalf("a reap failing at its third key recorded %s", describe(rows))
		}
		mustHookUpdate(t, s, func(tx *Tx) error {
			if _, err := tx.Reap(0, nil); err != nil {
				return err
			}
			// Numbered after the reap's, in the same transaction.
			return tx.Put(store.Entry{Bucket: "main", Key: "after", Value: []byte("v")})
		})
		check("after a reap and a set")
		mustHookUpdate(t, s, func(tx *Tx) error {
			return tx.Put(store.Entry{Bucket: "main", Key: "next", Value: []byte("v")})
		})
		rows := check("after a set")
		if last := rows[len(rows)-1].rec; last.Event != Set || string(last.Key) != "next" {
			t.Fatalf("last event %+v, want the set of next", last)
		}
	})
}

func TestTxReapFnErrorRollsBack(t *testing.T) {
	s, clk := memStore(t)
	addHook(t, s, Hook{Events: Expire})
	update(t, s, func(tx store.Tx) error {
		return tx.Put(store.Entry{Bucket: "main", Key: "k", Value: []byte("v"), ExpiresAt: t0.Add(time.Second).UnixMilli()})
	})
	clk.Advance(time.Minute)
	boom := errors.New("boom")
	_, err := hookUpdate(t, s, 0, func(tx *Tx) error {
		_, err := tx.Reap(0, func(store.Entry) error { return boom })
		return err
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if rows := outbox(t, s); len(rows) != 0 {
		t.Fatalf("outbox = %s", describe(rows))
	}
}

func TestTxRecordsDropBucket(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store, clk *ttl.Fake) {
		addHook(t, s, Hook{Events: Delete, Key: "a*", Bucket: "web"})
		addHook(t, s, Hook{Events: Set}) // does not want deletes
		update(t, s, func(tx store.Tx) error {
			for _, e := range []store.Entry{
				{Bucket: "web", Key: "a1", Value: []byte("1")},
				{Bucket: "web", Key: "a2", Value: []byte("2")},
				{Bucket: "web", Key: "b", Value: []byte("3")},
				{Bucket: "web", Key: "a3", Value: []byte("dead"), ExpiresAt: t0.Add(time.Second).UnixMilli()},
				{Bucket: "main", Key: "a1", Value: []byte("main")},
			} {
				if err := tx.Put(e); err != nil {
					return err
				}
			}
			return nil
		})
		clk.Advance(time.Minute)
		ht := mustHookUpdate(t, s, func(tx *Tx) error {
			ok, err := tx.DropBucket("main")
			if !ok {
				t.Error("DropBucket(main) = false")
			}
			if err != nil {
				return err
			}
			ok, err = tx.DropBucket("web")
			if !ok {
				t.Error("DropBucket(web) = false")
			}
			return err
		})
		rows := outbox(t, s)
		if len(rows) != 2 || len(ht.Events) != 2 || !ht.Wrote {
			t.Fatalf("outbox = %s", describe(rows))
		}
		for i, want := range []string{"a1=1", "a2=2"} {
			r := rows[i].rec
			if r.Event != Delete || r.Bucket != "web" || string(r.Key)+"="+string(r.Value) != want {
				t.Fatalf("row %d = %+v, want %s", i, r, want)
			}
		}
		// Dropping a missing bucket records and writes nothing.
		ht = mustHookUpdate(t, s, func(tx *Tx) error { _, err := tx.DropBucket("web"); return err })
		if ht.Wrote || len(ht.Events) != 0 {
			t.Fatalf("dropping a missing bucket: %v %v", ht.Wrote, ht.Events)
		}
	})
}

func TestTxRecordGet(t *testing.T) {
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Get, Key: "g"})
	ht := mustHookUpdate(t, s, func(tx *Tx) error {
		if !tx.rec.WantsAny(Get) || tx.rec.WantsAny(Set) {
			t.Error("WantsAny is wrong")
		}
		if err := tx.RecordGet(store.Entry{Bucket: "main", Key: "g", Value: []byte("read")}); err != nil {
			return err
		}
		return tx.RecordGet(store.Entry{Bucket: "main", Key: "other", Value: []byte("read")})
	})
	rows := outbox(t, s)
	if len(rows) != 1 || rows[0].rec.Event != Get || string(rows[0].rec.Value) != "read" || ht.Wrote {
		t.Fatalf("outbox = %s, Wrote %v", describe(rows), ht.Wrote)
	}
}

func TestTxRollback(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store, clk *ttl.Fake) {
		addHook(t, s, Hook{Events: All})
		boom := errors.New("boom")
		_, err := hookUpdate(t, s, 0, func(tx *Tx) error {
			if err := tx.Put(store.Entry{Bucket: "main", Key: "k", Value: []byte("v")}); err != nil {
				return err
			}
			if _, err := tx.Delete("main", "k"); err != nil {
				return err
			}
			if err := tx.RecordGet(store.Entry{Bucket: "main", Key: "k"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
		if rows := outbox(t, s); len(rows) != 0 {
			t.Fatalf("rolled back events stayed: %s", describe(rows))
		}
		// The next event gets sequence 1: the counter rolled back too.
		mustHookUpdate(t, s, func(tx *Tx) error {
			return tx.Put(store.Entry{Bucket: "main", Key: "k", Value: []byte("v")})
		})
		if rows := outbox(t, s); len(rows) != 1 || rows[0].seq != 1 {
			t.Fatalf("outbox after rollback = %+v", rows)
		}
	})
}

func TestTxSeveralHooksAndDisabled(t *testing.T) {
	s, _ := memStore(t)
	a := addHook(t, s, Hook{Events: Set})
	b := addHook(t, s, Hook{Events: Set | Delete, Key: "k"})
	c := addHook(t, s, Hook{Events: Set})
	update(t, s, func(tx store.Tx) error { _, err := SetEnabled(tx, c.ID, false, nil); return err })
	mustHookUpdate(t, s, func(tx *Tx) error {
		return tx.Put(store.Entry{Bucket: "main", Key: "k", Value: []byte("v")})
	})
	rows := outbox(t, s)
	if len(rows) != 2 || rows[0].rec.HookID != a.ID || rows[1].rec.HookID != b.ID || rows[0].seq >= rows[1].seq {
		t.Fatalf("outbox = %+v", rows)
	}
	view(t, s, func(tx store.Tx) error {
		if n, err := Pending(tx, []uint64{rows[0].seq, rows[1].seq, 999}); err != nil || n != 2 {
			t.Fatalf("Pending = %d, %v", n, err)
		}
		p, f, err := Counts(tx)
		if err != nil || p != 2 || f != 0 {
			t.Fatalf("Counts = %d, %d, %v", p, f, err)
		}
		return nil
	})
}

func TestTxNilRecorder(t *testing.T) {
	s, clk := memStore(t)
	addHook(t, s, Hook{Events: All})
	err := s.Update(context.Background(), func(raw store.Tx) error {
		tx := Wrap(raw, nil) // --no-hooks
		if err := tx.Put(store.Entry{Bucket: "main", Key: "k", Value: []byte("v"), ExpiresAt: t0.Add(time.Second).UnixMilli()}); err != nil {
			return err
		}
		if err := tx.RecordGet(store.Entry{Bucket: "main", Key: "k"}); err != nil {
			return err
		}
		if tx.rec.WantsAny(Set) {
			t.Error("nil recorder is recording")
		}
		if _, err := tx.Delete("main", "k"); err != nil {
			return err
		}
		return tx.Put(store.Entry{Bucket: "main", Key: "k2", Value: []byte("v"), ExpiresAt: t0.Add(time.Second).UnixMilli()})
	})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	err = s.Update(context.Background(), func(raw store.Tx) error {
		tx := Wrap(raw, nil)
		n, err := tx.Reap(0, nil)
		if n != 1 {
			t.Errorf("Reap = %d", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if rows := outbox(t, s); len(rows) != 0 {
		t.Fatalf("nil recorder recorded %s", describe(rows))
	}
	var r *Recorder
	if !r.Empty() || r.Wants(Set, "main", "k") || r.WantsAny(Set) || r.WantsBucket(Set, "main") {
		t.Fatal("nil Recorder wants something")
	}
}

func TestRecorderWants(t *testing.T) {
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Expire, Bucket: "web", Key: "s:*"})
	view(t, s, func(tx store.Tx) error {
		r, err := NewRecorder(tx, 0)
		if err != nil {
			return err
		}
		if r.Empty() || !r.WantsAny(Expire) || r.WantsAny(Set) ||
			!r.WantsBucket(Expire, "web") || r.WantsBucket(Expire, "main") ||
			!r.Wants(Expire, "web", "s:1") || r.Wants(Expire, "web", "t:1") {
			t.Fatal("Recorder wants the wrong things")
		}
		return nil
	})
	s2, _ := memStore(t)
	view(t, s2, func(tx store.Tx) error {
		r, err := NewRecorder(tx, 0)
		if err != nil || !r.Empty() {
			t.Fatalf("no hooks: Empty = %v, %v", r.Empty(), err)
		}
		return nil
	})
}

func TestTxTruncatesValue(t *testing.T) {
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Set})
	_, err := hookUpdate(t, s, 4, func(tx *Tx) error {
		for _, v := range []string{"abc", "abcd", "abcde", "abcdefghij"} {
			if err := tx.Put(store.Entry{Bucket: "main", Key: v, Value: []byte(v)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rows := outbox(t, s)
	want := []struct {
		v   string
		cut bool
	}{{"abc", false}, {"abcd", false}, {"abcd", true}, {"abcd", true}}
	if len(rows) != len(want) {
		t.Fatalf("outbox = %s", describe(rows))
	}
	for i, w := range want {
		if string(rows[i].rec.Value) != w.v || rows[i].rec.Truncated != w.cut {
			t.Errorf("row %d: value %q truncated %v; want %q %v", i, rows[i].rec.Value, rows[i].rec.Truncated, w.v, w.cut)
		}
	}
	// The stored value is whole.
	view(t, s, func(tx store.Tx) error {
		e, _, err := tx.Get("main", "abcdefghij")
		if string(e.Value) != "abcdefghij" {
			t.Fatalf("stored value = %q", e.Value)
		}
		return err
	})

	// The default cap.
	s2, _ := memStore(t)
	addHook(t, s2, Hook{Events: Set})
	big := bytes.Repeat([]byte("x"), DefaultMaxEventValue+10)
	mustHookUpdate(t, s2, func(tx *Tx) error {
		return tx.Put(store.Entry{Bucket: "main", Key: "big", Value: big})
	})
	rows = outbox(t, s2)
	if len(rows) != 1 || len(rows[0].rec.Value) != DefaultMaxEventValue || !rows[0].rec.Truncated {
		t.Fatalf("default cap: %d bytes, truncated %v", len(rows[0].rec.Value), rows[0].rec.Truncated)
	}
}

// payloadMap decodes a payload into a generic map, so the test sees the
// exact fields.
func payloadMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	if len(b) == 0 || b[len(b)-1] != '\n' || bytes.Count(b, []byte("\n")) != 1 {
		t.Fatalf("payload is not one line: %q", b)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("payload %q: %v", b, err)
	}
	return m
}

func TestPayload(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 678_000_000, time.UTC).UnixMilli()
	r := &record{HookID: 7, Event: Set, Bucket: "main", Key: []byte("k:1"), Value: []byte("héllo\n"), Time: now}
	got := payloadMap(t, r.payload())
	want := map[string]any{
		"version": json.Number("1"), "event": "set", "bucket": "main", "key": "k:1",
		"value": "héllo\n", "value_truncated": false, "ttl_ms": json.Number("-1"),
		"expires_at": nil, "time": "2030-01-02T03:04:05.678Z", "hook_id": json.Number("7"),
	}
	if !mapsEqual(got, want) {
		t.Fatalf("payload = %v\nwant      %v", got, want)
	}

	// A deadline: ttl_ms is what remained at the event, expires_at RFC 3339
	// in UTC to the ms. Binary key and value go as base64.
	r = &record{HookID: 2, Event: Delete, Bucket: "b", Key: []byte("k\xff"), Value: []byte{0, 0xfe, 'a'},
		Truncated: true, Time: now, ExpiresAt: now + 1500}
	got = payloadMap(t, r.payload())
	want = map[string]any{
		"version": json.Number("1"), "event": "delete", "bucket": "b", "key_b64": "a/8=",
		"value_b64": "AP5h", "value_truncated": true, "ttl_ms": json.Number("1500"),
		"expires_at": "2030-01-02T03:04:07.178Z", "time": "2030-01-02T03:04:05.678Z", "hook_id": json.Number("2"),
	}
	if !mapsEqual(got, want) {
		t.Fatalf("payload = %v\nwant      %v", got, want)
	}

	// An expire event: the deadline has passed, ttl_ms is 0, never negative.
	r = &record{HookID: 1, Event: Expire, Bucket: "main", Key: []byte("k"), Value: []byte(""), Time: now, ExpiresAt: now - 250}
	got = payloadMap(t, r.payload())
	if got["ttl_ms"] != json.Number("0") || got["expires_at"] != "2030-01-02T03:04:05.428Z" || got["value"] != "" || got["event"] != "expire" {
		t.Fatalf("expire payload = %v", got)
	}
	if _, ok := got["value_b64"]; ok {
		t.Fatal("an empty value went as value_b64")
	}

	// A nil value (get of an empty value) is "", not null or absent.
	r = &record{HookID: 1, Event: Get, Bucket: "main", Key: []byte("k"), Time: now}
	got = payloadMap(t, r.payload())
	if v, ok := got["value"]; !ok || v != "" {
		t.Fatalf("nil value: %v", got)
	}

	// Control characters in key and value are JSON-escaped, kept exactly.
	r = &record{HookID: 1, Event: Set, Bucket: "main", Key: []byte("a\tb\x01"), Value: []byte("\x1b[31m"), Time: now}
	got = payloadMap(t, r.payload())
	if got["key"] != "a\tb\x01" || got["value"] != "\x1b[31m" {
		t.Fatalf("control chars: %v", got)
	}
}

func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v != w {
			return false
		}
	}
	return true
}

// A UTF-8 value cut at max_event_value_bytes should still be text: cutting
// in the middle of a multi-byte character turns it into invalid UTF-8, and
// the hook then gets value_b64 for what is plainly a text value.
func TestTruncatedUTF8StaysText(t *testing.T) {
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Set})
	_, err := hookUpdate(t, s, 5, func(tx *Tx) error {
		return tx.Put(store.Entry{Bucket: "main", Key: "k", Value: []byte("ééé")}) // 6 bytes
	})
	if err != nil {
		t.Fatal(err)
	}
	rows := outbox(t, s)
	if len(rows) != 1 || !rows[0].rec.Truncated {
		t.Fatalf("outbox = %+v", rows)
	}
	got := payloadMap(t, rows[0].rec.payload())
	if _, ok := got["value"]; !ok {
		t.Errorf("a truncated UTF-8 value is sent as value_b64 %v (cut mid-character: %q); want \"value\": \"éé\"",
			got["value_b64"], rows[0].rec.Value)
	}
}

func TestEnv(t *testing.T) {
	r := &record{HookID: 12, Event: Expire, Bucket: "web", Key: []byte("session:ä"), Value: []byte("secret")}
	env := r.env()
	want := map[string]string{
		"LIVEDICT_EVENT": "expire", "LIVEDICT_BUCKET": "web", "LIVEDICT_KEY": "session:ä", "LIVEDICT_HOOK_ID": "12",
	}
	if len(env) != len(want) {
		t.Fatalf("env = %v", env)
	}
	for k, v := range want {
		if env[k] != v {
			t.Fatalf("env[%s] = %q, want %q", k, env[k], v)
		}
	}
	for _, v := range env {
		if strings.Contains(v, "secret") {
			t.Fatal("the value went into the environment")
		}
	}
	for _, key := range []string{"a\nb", "a\tb", "\x1b[2J", "a\x7f", "bad\xff", "\u0085x"} {
		r := &record{HookID: 1, Event: Set, Bucket: "main", Key: []byte(key)}
		env := r.env()
		if _, ok := env["LIVEDICT_KEY"]; ok {
			t.Errorf("LIVEDICT_KEY set for %q", key)
		}
		if env["LIVEDICT_EVENT"] != "set" || env["LIVEDICT_BUCKET"] != "main" || env["LIVEDICT_HOOK_ID"] != "1" {
			t.Errorf("env for %q = %v", key, env)
		}
	}
	for _, key := range []string{"a b", "-x", "k=v", "日本", "$(rm -rf)"} {
		r := &record{HookID: 1, Event: Set, Bucket: "main", Key: []byte(key)}
		if r.env()["LIVEDICT_KEY"] != key {
			t.Errorf("LIVEDICT_KEY for printable %q = %q", key, r.env()["LIVEDICT_KEY"])
		}
	}
}

// The JSON a record is stored as keeps binary keys exactly.
func TestRecordRoundTrip(t *testing.T) {
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Set})
	key := "k\xff\x01é"
	mustHookUpdate(t, s, func(tx *Tx) error {
		return tx.Put(store.Entry{Bucket: "main", Key: key, Value: []byte{0xff, 0}})
	})
	rows := outbox(t, s)
	if len(rows) != 1 || string(rows[0].rec.Key) != key || !bytes.Equal(rows[0].rec.Value, []byte{0xff, 0}) {
		t.Fatalf("record = %+v", rows[0].rec)
	}
}

// failCounter fails writes of the event counter once a reap has
// returned, until fail is cleared: the store fails the counter's write at
// the end of a reap (eventSeq.release), and only that one.
type failCounter struct {
	store.Tx
	fail bool
}

func (f *failCounter) Reap(limit int, fn func(store.Entry) error) (int, error) {
	n, err := f.Tx.Reap(limit, fn)
	f.fail = true
	return n, err
}

func (f *failCounter) Put(e store.Entry) error {
	if f.fail && e.Bucket == metaBucket && e.Key == "event" {
		return errors.New("injected: counter write failed")
	}
	return f.Tx.Put(e)
}

// When the counter's one write at the end of a reap fails and the caller
// goes on (as TestTxReapNumbersEventsOnce does after a failed reap) and
// commits, later events, in the same transaction or the next, must not
// take numbers the reap already gave out: they would overwrite its events
// in the outbox. A held counter is written ahead (seqReserve) for this.
func TestTxReapCounterWriteFails(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store, clk *ttl.Fake) {
		addHook(t, s, Hook{Events: Expire | Set})
		exp := t0.Add(time.Second).UnixMilli()
		mustHookUpdate(t, s, func(tx *Tx) error { // set events: the counter exists
			for _, k := range []string{"a", "b"} {
				if err := tx.Put(store.Entry{Bucket: "main", Key: k, Value: []byte(k), ExpiresAt: exp}); err != nil {
					return err
				}
			}
			return nil
		})
		clk.Advance(time.Minute)
		var recorded []uint64
		err := s.Update(context.Background(), func(raw store.Tx) error {
			rec, err := NewRecorder(raw, 0)
			if err != nil {
				return err
			}
			f := &failCounter{Tx: raw}
			tx := Wrap(f, rec)
			_, rerr := tx.Reap(0, nil)
			t.Logf("reap: %v", rerr)
			f.fail = false // the store recovers; the caller goes on
			err = tx.Put(store.Entry{Bucket: "main", Key: "c", Value: []byte("c")})
			recorded = tx.Events
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		rows := outbox(t, s)
		// Every number the transaction recorded is its own event.
		seen := map[uint64]bool{}
		for _, n := range recorded {
			if seen[n] {
				t.Errorf("event number %d given twice in %v", n, recorded)
			}
			seen[n] = true
		}
		if len(rows) != 2+len(recorded) {
			t.Fatalf("2 sets and %d events recorded, but the outbox holds %d: %s", len(recorded), len(rows), describe(rows))
		}
		// The counter committed with them is not behind them either: the
		// next transaction's event takes a number of its own.
		mustHookUpdate(t, s, func(tx *Tx) error {
			return tx.Put(store.Entry{Bucket: "main", Key: "d", Value: []byte("d")})
		})
		if rows := outbox(t, s); len(rows) != 3+len(recorded) {
			t.Fatalf("after the next transaction's set of d the outbox holds %d: %s", len(rows), describe(rows))
		}
	})
}

// The event's variables describe the event, whatever a hook passes through
// with --env: a definition naming them (made before hook add refused it)
// must not let the delivering process's environment (which inherits the
// writer's, a hook's own when a hook calls livedict) say another event,
// key or hook, or put a key that is not printable into the environment.
func TestSpecEventEnvWins(t *testing.T) {
	names := []string{"LIVEDICT_EVENT", "LIVEDICT_BUCKET", "LIVEDICT_KEY", "LIVEDICT_HOOK_ID", "LIVEDICT_EVENTS", "SECRET"}
	d := &Deliverer{Getenv: func(name string) (string, bool) { return "spoof", true }}
	h := Hook{ID: 3, Events: Set, Key: "*", Argv: []string{"/bin/true"}, Env: names}
	r := &record{HookID: 3, Event: Set, Bucket: "main", Key: []byte("k\x01")}
	env := d.Spec(h, r).Env
	want := map[string]string{"LIVEDICT_EVENT": "set", "LIVEDICT_BUCKET": "main", "LIVEDICT_HOOK_ID": "3", "SECRET": "spoof"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("Spec: env[%s] = %q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"LIVEDICT_KEY", "LIVEDICT_EVENTS"} {
		if v, ok := env[k]; ok {
			t.Errorf("Spec: env[%s] = %q, want it unset", k, v)
		}
	}

	batch := []*item{{seq: 1, rec: r}, {seq: 2, rec: &record{HookID: 3, Event: Delete, Bucket: "b", Key: []byte("k2")}}}
	env = d.BatchSpec(h, batch).Env
	want = map[string]string{"LIVEDICT_EVENTS": "2", "LIVEDICT_HOOK_ID": "3", "SECRET": "spoof"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("BatchSpec: env[%s] = %q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"LIVEDICT_EVENT", "LIVEDICT_BUCKET", "LIVEDICT_KEY"} {
		if v, ok := env[k]; ok {
			t.Errorf("BatchSpec: env[%s] = %q, want it unset (it would name one event of many)", k, v)
		}
	}
}

// A key that would not read as what it is (bidirectional overrides that
// reorder what follows, as in "Trojan Source"; line and paragraph
// separators that break a line) is not printable text: no LIVEDICT_KEY,
// as for control characters. Joiners in emoji sequences stay.
func TestEnvKeyNotPrintableFormatting(t *testing.T) {
	for _, key := range []string{"user\u202egnp.exe", "a\u2066b\u2069", "a\u200fb", "a\u061cb", "a\u2028b", "a\u2029b"} {
		r := &record{HookID: 1, Event: Set, Bucket: "main", Key: []byte(key)}
		if v, ok := r.env()["LIVEDICT_KEY"]; ok {
			t.Errorf("LIVEDICT_KEY = %q for %q", v, key)
		}
	}
	for _, key := range []string{"👨\u200d👩\u200d👧", "naïve", "a b"} {
		r := &record{HookID: 1, Event: Set, Bucket: "main", Key: []byte(key)}
		if r.env()["LIVEDICT_KEY"] != key {
			t.Errorf("LIVEDICT_KEY for printable %q = %q", key, r.env()["LIVEDICT_KEY"])
		}
	}
}
