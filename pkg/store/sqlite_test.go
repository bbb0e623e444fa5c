package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/ttl"
)

// writeV1Store makes at path a store as a livedict that knew only
// migration 1 made it, holding what inserts put there.
func writeV1Store(t *testing.T, path string, inserts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	qs := append([]string{sqliteSchema[0], fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = 1", sqliteAppID)}, inserts...)
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

// A store made by a livedict that knew only migration 1 opens, migrates
// to the current schema and keeps its data.
func TestSQLiteMigrateFromV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	writeV1Store(t, path,
		"INSERT INTO entries (bucket, key, value, expires_at) VALUES ('main', CAST('k' AS BLOB), CAST('v' AS BLOB), NULL), ('main', CAST('t' AS BLOB), CAST('w' AS BLOB), 4102444800000)",
		"INSERT INTO policies VALUES ('main', 5, 0, 'reject')")
	if headerUpToDate(path) {
		t.Fatal("a version 1 store counts as up to date")
	}
	s, err := Open("sqlite:"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !headerUpToDate(path) {
		t.Error("not up to date after migrating")
	}
	h, _ := sqliteHeader(path)
	if v := binary.BigEndian.Uint32(h[60:64]); v != 2 || len(sqliteSchema) != 2 {
		t.Errorf("user_version = %d, schema has %d migrations", v, len(sqliteSchema))
	}
	update(t, s, func(tx Tx) error { return tx.Put(Entry{Bucket: "!hooks", Key: "h", Value: []byte("x")}) })
	view(t, s, func(tx Tx) error {
		bs, _ := tx.Buckets()
		p, _ := tx.Policy("main")
		e, ok, err := tx.Get("!hooks", "h")
		if fmt.Sprint(bs) != "[{main 2}]" || p.MaxKeys != 5 || !ok || string(e.Value) != "x" {
			t.Errorf("after migration: buckets %v, policy %+v, internal %v", bs, p, ok)
		}
		ds, _ := tx.(DeadlineLister).Deadlines(ttl.Due{At: math.MinInt64}, 10)
		if len(ds) != 1 || ds[0].At != 4102444800000 {
			t.Errorf("deadlines = %v", ds)
		}
		return err
	})
	// Opening again takes the header fast path and finds everything.
	s2, err := Open("sqlite:"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if e, ok := get(t, s2, "!hooks", "h"); !ok || string(e.Value) != "x" {
		t.Errorf("reopened: %q %v", e.Value, ok)
	}
}

// queryPlan returns EXPLAIN QUERY PLAN's details for q, one per line.
func queryPlan(t *testing.T, s *sqliteStore, q string, args ...any) string {
	t.Helper()
	rows, err := s.conn.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n")
}

// The deadline and cursor queries must be range reads of an index: a full
// scan or a sort would make the daemon's refills cost the store's size.
func TestSQLiteQueryPlans(t *testing.T) {
	s, err := Open("sqlite:"+filepath.Join(t.TempDir(), "p.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ss := s.(*sqliteStore)
	// Some rows and statistics, so the planner is not choosing for an
	// empty table.
	update(t, s, func(tx Tx) error {
		for i := range 2000 {
			exp := int64(0)
			if i%2 == 0 {
				exp = 4102444800000 + int64(i)
			}
			tx.Put(Entry{Bucket: fmt.Sprint("b", i%5), Key: fmt.Sprint("k", i), Value: []byte("v"), ExpiresAt: exp})
			tx.Put(Entry{Bucket: "!outbox", Key: fmt.Sprint("k", i), Value: []byte("v")})
		}
		return nil
	})
	for _, analyze := range []bool{false, true} {
		if analyze {
			if _, err := ss.conn.ExecContext(context.Background(), "ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		plan := queryPlan(t, ss, sqliteDeadlines, int64(1), int64(2), 100)
		if !strings.Contains(plan, "INDEX entries_expiry (expires_at>?)") || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("analyze %v: Deadlines plan:\n%s", analyze, plan)
		}
		q, args, _ := (&sqliteTx{s: ss, ctx: context.Background()}).scanFrom("!outbox", true)
		plan = queryPlan(t, ss, q+" AND key > ? ORDER BY key LIMIT ?", append(args, []byte("k"), 10)...)
		if !strings.Contains(plan, "SEARCH internal USING PRIMARY KEY (bucket=? AND key>?)") || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("analyze %v: internal ScanAfter plan:\n%s", analyze, plan)
		}
		q, args, _ = (&sqliteTx{s: ss, ctx: context.Background()}).scanFrom("b1", true)
		plan = queryPlan(t, ss, q+" AND key > ? ORDER BY key LIMIT ?", append(args, []byte("k"), 10)...)
		if !strings.Contains(plan, "(bucket=? AND key>?)") || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("analyze %v: user ScanAfter plan:\n%s", analyze, plan)
		}
	}
}

// loadTTLKeys fills a SQLite store with n keys with TTLs, many sharing a
// millisecond, through the bulk loader.
func loadTTLKeys(tb testing.TB, path string, n int) Store {
	s, err := Open("sqlite:"+path, Options{Clock: ttl.NewFake(t0)})
	if err != nil {
		tb.Fatal(err)
	}
	entries := make([]Entry, n)
	for i := range entries {
		entries[i] = Entry{Bucket: fmt.Sprint("b", i%7), Key: fmt.Sprintf("key:%08d", i), Value: []byte("v"), ExpiresAt: ms(time.Hour) + int64(i/3)}
	}
	if err := s.Update(context.Background(), func(tx Tx) error {
		_, err := tx.(BulkLoader).LoadMany(entries, FailOnExisting)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkSQLiteDeadlines1M reads deadlines from the middle of 1M keys
// with TTLs: a window of 1000, as the daemon's refill does, and the single
// next one. Both are index range reads, so neither grows with the store.
//
//	go test -run=NONE -bench=SQLiteDeadlines1M ./pkg/store/
func BenchmarkSQLiteDeadlines1M(b *testing.B) {
	const n = 1_000_000
	path := filepath.Join(b.TempDir(), "d.db")
	s := loadTTLKeys(b, path, n)
	defer s.Close()
	ctx := context.Background()
	start := time.Now()
	var all []ttl.Due
	after := ttl.Due{At: math.MinInt64}
	for {
		page, err := NextDeadlines(ctx, s, after, 100_000)
		if err != nil {
			b.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < 100_000 {
			break
		}
		after = page[len(page)-1]
	}
	if len(all) != n {
		b.Fatalf("listed %d deadlines", len(all))
	}
	if fi, err := os.Stat(path); err == nil {
		b.Logf("store: %d keys, %d MB; listing every deadline took %v", n, fi.Size()>>20, time.Since(start).Round(time.Millisecond))
	}
	for _, limit := range []int{1000, 1} {
		b.Run(fmt.Sprint("limit=", limit), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				from := all[(i*7919)%(n-limit)]
				page, err := NextDeadlines(ctx, s, from, limit)
				if err != nil || len(page) != limit {
					b.Fatalf("%d deadlines, %v", len(page), err)
				}
			}
		})
	}
}

// TestSQLiteCanceledTransactionsLeaveNoneOpen: a transaction whose context
// ends while it starts, runs or commits leaves the connection with no
// transaction open, so the next one can begin. (A daemon that restarted
// its delivery, cancelling the old loop's context, got "cannot start a
// transaction within a transaction" on every later write.)
func TestSQLiteCanceledTransactionsLeaveNoneOpen(t *testing.T) {
	s, err := Open("sqlite:"+filepath.Join(t.TempDir(), "c.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 300 {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(time.Duration(i%40) * 5 * time.Microsecond)
			cancel()
		}()
		_ = s.Update(ctx, func(tx Tx) error {
			return tx.Put(Entry{Bucket: "main", Key: fmt.Sprintf("k%d", i), Value: []byte("v")})
		})
		_ = s.View(ctx, func(tx Tx) error {
			_, _, err := tx.Get("main", "k0")
			return err
		})
		cancel()
		if err := s.Update(context.Background(), func(tx Tx) error {
			return tx.Put(Entry{Bucket: "main", Key: "after", Value: []byte("v")})
		}); err != nil {
			t.Fatalf("round %d: a write after a canceled one: %v", i, err)
		}
	}
}

// TestSQLiteFullIsNoSpace: SQLite's SQLITE_FULL (a full disk or quota;
// here its page limit, which gives the same code without filling a disk)
// is ENOSPC, which the command line explains, not "database or disk is
// full (13)", which read as if the store had a size limit of its own.
func TestSQLiteFullIsNoSpace(t *testing.T) {
	s, err := Open("sqlite:"+filepath.Join(t.TempDir(), "f.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(context.Background(), func(tx Tx) error {
		return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("v")})
	}); err != nil {
		t.Fatal(err)
	}
	ss := Base(s).(*sqliteStore)
	if _, err := ss.conn.ExecContext(context.Background(), "PRAGMA max_page_count = 1"); err != nil {
		t.Fatal(err)
	}
	err = s.Update(context.Background(), func(tx Tx) error {
		return tx.Put(Entry{Bucket: "main", Key: "big", Value: make([]byte, 1<<16)})
	})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a write past the page limit: %v, want ENOSPC", err)
	}
	if !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("message %q", err)
	}
}

// A v1 store that appears after Open found nothing (a daemon started
// before the user restored an old backup there) is migrated by the first
// transaction: that migration's own write transaction waited for the lock
// the first one held, and the process hung.
func TestSQLiteMigrateStoreThatAppeared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "late.db")
	s, err := Open("sqlite:"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	writeV1Store(t, path, "INSERT INTO entries (bucket, key, value, expires_at) VALUES ('main', CAST('k' AS BLOB), CAST('v' AS BLOB), NULL)")
	for name, ctx := range map[string]context.Context{"view": context.Background(), "update": context.Background(), "nocreate": NoCreate(context.Background())} {
		done := make(chan error, 1)
		go func() {
			var ok bool
			fn := func(tx Tx) (err error) { _, ok, err = tx.Get("main", "k"); return err }
			if name == "view" {
				done <- s.View(ctx, fn)
			} else {
				done <- s.Update(ctx, fn)
			}
			if !ok {
				t.Errorf("%s: k not found", name)
			}
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: hung migrating a store that appeared after Open", name)
		}
	}
}
