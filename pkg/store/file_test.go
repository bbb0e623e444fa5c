//go:build unix

package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/ttl"
)

var fileT0 = time.UnixMilli(1_700_000_000_000)

func openTestFile(t *testing.T, dir string, opts Options) *fileStore {
	t.Helper()
	s, err := openFile(dir, opts)
	if err != nil {
		t.Fatalf("openFile: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	// Open creates nothing; the first write makes the store.
	if _, err := s.(*fileStore).ensure(true); err != nil {
		t.Fatalf("create: %v", err)
	}
	return s.(*fileStore)
}

func newTestFile(t *testing.T) (*fileStore, *ttl.Fake) {
	t.Helper()
	clock := ttl.NewFake(fileT0)
	return openTestFile(t, filepath.Join(t.TempDir(), "store"), Options{Clock: clock}), clock
}

func mustUpdate(t *testing.T, s Store, fn func(Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func mustView(t *testing.T, s Store, fn func(Tx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func getValue(t *testing.T, s Store, bucket, key string) (string, bool) {
	t.Helper()
	var v string
	var found bool
	mustView(t, s, func(tx Tx) error {
		e, ok, err := tx.Get(bucket, key)
		v, found = string(e.Value), ok
		return err
	})
	return v, found
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestFileLayoutAndModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b", "store")
	s := openTestFile(t, dir, Options{})
	mustUpdate(t, s, func(tx Tx) error { return tx.Put(Entry{Bucket: "Main", Key: "k", Value: []byte("v")}) })
	for path, want := range map[string]os.FileMode{
		filepath.Join(root, "a"):               0o700,
		dir:                                    0o700,
		filepath.Join(dir, fileMarkerName):     0o600,
		filepath.Join(dir, fileLockName):       0o600,
		filepath.Join(dir, fileHintName):       0o600,
		filepath.Join(dir, "b"):                0o700,
		filepath.Join(dir, "b", "%4Dain"):      0o700,
		filepath.Join(dir, "b", "%4Dain", "k"): 0o600,
	} {
		if got := mode(t, path); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
	}
	info, err := s.Info()
	if err != nil || info.Backend != "file" || info.Location != dir || info.SizeBytes <= 0 {
		t.Errorf("Info = %+v, %v", info, err)
	}
	// Reopening an existing store works, and sees the data.
	s2 := openTestFile(t, dir, Options{})
	if v, ok := getValue(t, s2, "Main", "k"); !ok || v != "v" {
		t.Errorf("reopened: %q %v", v, ok)
	}
}

func TestFileOpenRefuses(t *testing.T) {
	root := t.TempDir()
	write := func(path, data string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "other", "notes.txt"), "mine")
	write(filepath.Join(root, "newer", fileMarkerName), `{"format":"livedict-file","version":2}`)
	write(filepath.Join(root, "garbled", fileMarkerName), "{nope")
	write(filepath.Join(root, "afile"), "x")
	for name, want := range map[string]error{
		"other":   ErrNotStore,
		"newer":   ErrNewerStore,
		"garbled": ErrCorrupt,
		"afile":   ErrNotStore,
	} {
		_, err := openFile(filepath.Join(root, name), Options{})
		if !errors.Is(err, want) || !strings.Contains(err.Error(), root) {
			t.Errorf("%s: err = %v, want %v naming the path", name, err, want)
		}
	}
	// Nothing was created over the foreign folder.
	if _, err := os.Stat(filepath.Join(root, "other", fileMarkerName)); err == nil {
		t.Error("marker written into a foreign folder")
	}
	// An empty existing folder becomes a store.
	os.Mkdir(filepath.Join(root, "empty"), 0o700)
	if _, err := openFile(filepath.Join(root, "empty"), Options{}); err != nil {
		t.Errorf("empty folder: %v", err)
	}
}

func TestFileCRUDAndExpiry(t *testing.T) {
	s, clock := newTestFile(t)
	now := fileT0.UnixMilli()
	mustUpdate(t, s, func(tx Tx) error {
		if tx.Now() != now {
			t.Errorf("Now = %d, want %d", tx.Now(), now)
		}
		for _, e := range []Entry{
			{Bucket: "main", Key: "plain", Value: []byte("1")},
			{Bucket: "main", Key: "soon", Value: []byte("2"), ExpiresAt: now + 1000},
			{Bucket: "main", Key: "later", Value: []byte("3"), ExpiresAt: now + 5000},
			{Bucket: "main", Key: "empty", Value: nil},
		} {
			if err := tx.Put(e); err != nil {
				return err
			}
		}
		// Reads inside the transaction see its writes.
		if e, ok, err := tx.Get("main", "soon"); err != nil || !ok || string(e.Value) != "2" || e.ExpiresAt != now+1000 || e.Size != 1 {
			t.Errorf("Get in tx: %+v %v %v", e, ok, err)
		}
		if n, _ := tx.Count("main"); n != 4 {
			t.Errorf("Count in tx = %d", n)
		}
		return nil
	})
	if v, ok := getValue(t, s, "main", "empty"); !ok || v != "" {
		t.Errorf("empty value: %q %v", v, ok)
	}
	clock.Advance(time.Second) // "soon" expires exactly now
	mustView(t, s, func(tx Tx) error {
		if _, ok, _ := tx.Get("main", "soon"); ok {
			t.Error("expired entry returned")
		}
		if n, _ := tx.Count("main"); n != 3 {
			t.Errorf("Count = %d, want 3", n)
		}
		if e, ok, _ := tx.Soonest("main"); !ok || e.Key != "later" || string(e.Value) != "3" {
			t.Errorf("Soonest = %+v %v", e, ok)
		}
		if has, err := tx.HasExpired(); err != nil || !has {
			t.Errorf("HasExpired = %v %v", has, err)
		}
		return nil
	})
	mustUpdate(t, s, func(tx Tx) error {
		if ok, err := tx.Delete("main", "soon"); err != nil || ok {
			t.Errorf("Delete of an expired key = %v %v, want false", ok, err)
		}
		if ok, err := tx.Delete("main", "plain"); err != nil || !ok {
			t.Errorf("Delete = %v %v", ok, err)
		}
		if ok, _ := tx.Delete("main", "nothing"); ok {
			t.Error("Delete of a missing key reported true")
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(s.dir, "b", "main", "soon")); !os.IsNotExist(err) {
		t.Errorf("expired key's file not removed: %v", err)
	}
	mustView(t, s, func(tx Tx) error {
		if has, err := tx.HasExpired(); err != nil || has {
			t.Errorf("HasExpired after deleting the expired key = %v %v", has, err)
		}
		return nil
	})
	// That View corrected the stale hint, so later commands skip the walk.
	if data, _ := os.ReadFile(filepath.Join(s.dir, fileHintName)); string(data) != fmt.Sprintln(now+5000) {
		t.Errorf("hint after a View's walk = %q, want %d", data, now+5000)
	}
}

func TestFileRollback(t *testing.T) {
	s, _ := newTestFile(t)
	boom := errors.New("boom")
	for _, n := range []int{1, 3} {
		err := s.Update(context.Background(), func(tx Tx) error {
			for i := range n {
				tx.Put(Entry{Bucket: "main", Key: fmt.Sprint("k", i), Value: []byte("v"), ExpiresAt: 1})
			}
			tx.SetPolicy("main", Policy{MaxKeys: 3})
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
	}
	mustView(t, s, func(tx Tx) error {
		if n, _ := tx.CountAll(); n != 0 {
			t.Errorf("rolled back writes landed: %d keys", n)
		}
		if b, _ := tx.Buckets(); len(b) != 0 {
			t.Errorf("Buckets = %v", b)
		}
		return nil
	})
	if data, _ := os.ReadFile(filepath.Join(s.dir, fileHintName)); string(data) != "0\n" {
		t.Errorf("hint changed by a rolled-back tx: %q", data)
	}
}

func TestFileScan(t *testing.T) {
	s, clock := newTestFile(t)
	now := fileT0.UnixMilli()
	keys := []string{"b", "a", "ab", "a/b", "A", "\xff", "é", "..", strings.Repeat("z", 300), strings.Repeat("\x01", 100), "dead"}
	mustUpdate(t, s, func(tx Tx) error {
		for _, k := range keys {
			e := Entry{Bucket: "main", Key: k, Value: []byte("v" + k)}
			if k == "dead" {
				e.ExpiresAt = now + 1
			}
			if err := tx.Put(e); err != nil {
				return err
			}
		}
		return nil
	})
	clock.Advance(time.Millisecond)
	scan := func(tx Tx, prefix string, withValues bool) []string {
		var got []string
		err := tx.Scan("main", prefix, withValues, func(e Entry) error {
			if withValues != (e.Value != nil) || withValues && string(e.Value) != "v"+e.Key || e.Size != int64(len(e.Key)+1) {
				t.Errorf("%q: value %q with withValues=%v", e.Key, e.Value, withValues)
			}
			got = append(got, e.Key)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := []string{strings.Repeat("\x01", 100), "..", "A", "a", "a/b", "ab", "b", strings.Repeat("z", 300), "é", "\xff"}
	mustView(t, s, func(tx Tx) error {
		if got := scan(tx, "", true); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Scan = %q\nwant %q", got, want)
		}
		if got := scan(tx, "a", false); fmt.Sprint(got) != fmt.Sprint([]string{"a", "a/b", "ab"}) {
			t.Errorf("Scan a = %q", got)
		}
		n := 0
		err := tx.Scan("main", "", false, func(Entry) error { n++; return ErrStopScan })
		if err != nil || n != 1 {
			t.Errorf("ErrStopScan: n=%d err=%v", n, err)
		}
		return nil
	})
	// Buffered writes merge into the order, and fn may write.
	mustUpdate(t, s, func(tx Tx) error {
		tx.Put(Entry{Bucket: "main", Key: "aa", Value: []byte("vaa")})
		tx.Delete("main", "ab")
		got := scan(tx, "a", true)
		if fmt.Sprint(got) != fmt.Sprint([]string{"a", "a/b", "aa"}) {
			t.Errorf("merged Scan = %q", got)
		}
		return tx.Scan("main", "", false, func(e Entry) error {
			_, err := tx.Delete("main", e.Key)
			return err
		})
	})
	mustView(t, s, func(tx Tx) error {
		if n, _ := tx.Count("main"); n != 0 {
			t.Errorf("Count after deleting during scan = %d", n)
		}
		return nil
	})
}

func TestFileBucketsPoliciesStats(t *testing.T) {
	s, _ := newTestFile(t)
	now := fileT0.UnixMilli()
	mustUpdate(t, s, func(tx Tx) error {
		tx.Put(Entry{Bucket: "main", Key: "a", Value: []byte("1")})
		tx.Put(Entry{Bucket: "main", Key: "b", Value: []byte("1"), ExpiresAt: now + 50})
		tx.Put(Entry{Bucket: "Cache.v2", Key: "x", Value: []byte("1"), ExpiresAt: now + 10})
		tx.Put(Entry{Bucket: "gone", Key: "x", Value: []byte("1"), ExpiresAt: now - 1})
		return tx.SetPolicy("limits", Policy{MaxKeys: 5, DefaultTTL: 1000, OnFull: EvictSoonest})
	})
	mustView(t, s, func(tx Tx) error {
		b, err := tx.Buckets()
		if want := "[{Cache.v2 1} {limits 0} {main 2}]"; err != nil || fmt.Sprint(b) != want {
			t.Errorf("Buckets = %v %v, want %s", b, err, want)
		}
		if p, _ := tx.Policy("limits"); p != (Policy{MaxKeys: 5, DefaultTTL: 1000, OnFull: EvictSoonest}) {
			t.Errorf("Policy = %+v", p)
		}
		if p, _ := tx.Policy("main"); p != (Policy{}) {
			t.Errorf("Policy of main = %+v", p)
		}
		st, err := tx.Stats()
		if want := (Stats{Keys: 3, Buckets: 2, KeysWithTTL: 2, NextExpiry: now + 10}); err != nil || st != want {
			t.Errorf("Stats = %+v %v, want %+v", st, err, want)
		}
		if n, _ := tx.CountAll(); n != 3 {
			t.Errorf("CountAll = %d", n)
		}
		return nil
	})
	mustUpdate(t, s, func(tx Tx) error {
		if had, err := tx.DropBucket("main"); err != nil || !had {
			t.Errorf("DropBucket(main) = %v %v", had, err)
		}
		if had, _ := tx.DropBucket("nothing"); had {
			t.Error("DropBucket(nothing) = true")
		}
		if had, _ := tx.DropBucket("gone"); had {
			t.Error("DropBucket of a bucket with only expired keys = true")
		}
		// A dropped bucket can be written again in the same transaction.
		tx.Put(Entry{Bucket: "main", Key: "new", Value: []byte("n")})
		if n, _ := tx.Count("main"); n != 1 {
			t.Errorf("Count after drop+put = %d", n)
		}
		return tx.SetPolicy("limits", Policy{})
	})
	mustView(t, s, func(tx Tx) error {
		b, _ := tx.Buckets()
		if want := "[{Cache.v2 1} {main 1}]"; fmt.Sprint(b) != want {
			t.Errorf("Buckets = %v, want %s", b, want)
		}
		if _, ok, _ := tx.Get("main", "a"); ok {
			t.Error("dropped key survived")
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(s.dir, "b", "gone")); !os.IsNotExist(err) {
		t.Errorf("dropped folder remains: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "b", "limits", filePolicyName)); !os.IsNotExist(err) {
		t.Errorf("removed policy remains: %v", err)
	}
}

func TestFileReapAndHint(t *testing.T) {
	s, clock := newTestFile(t)
	now := fileT0.UnixMilli()
	hint := func() string {
		data, _ := os.ReadFile(filepath.Join(s.dir, fileHintName))
		return strings.TrimSpace(string(data))
	}
	mustUpdate(t, s, func(tx Tx) error {
		for i := range 5 {
			tx.Put(Entry{Bucket: "b" + strconv.Itoa(i%2), Key: fmt.Sprint("k", i), Value: []byte{byte(i)}, ExpiresAt: now + int64(10*(i+1))})
		}
		return tx.Put(Entry{Bucket: "b0", Key: "forever", Value: []byte("f")})
	})
	if got := hint(); got != strconv.FormatInt(now+10, 10) {
		t.Errorf("hint = %s, want the earliest deadline", got)
	}
	mustUpdate(t, s, func(tx Tx) error {
		if n, err := tx.Reap(0, nil); n != 0 || err != nil {
			t.Errorf("Reap before any deadline = %d %v", n, err)
		}
		return nil
	})
	clock.Advance(35 * time.Millisecond) // k0 k1 k2 expired
	var reaped []string
	collect := func(e Entry) error {
		if len(e.Value) != 1 {
			t.Errorf("Reap gave %q without its value", e.Key)
		}
		reaped = append(reaped, e.Bucket+"/"+e.Key)
		return nil
	}
	mustUpdate(t, s, func(tx Tx) error {
		n, err := tx.Reap(2, collect)
		if n != 2 || err != nil {
			t.Errorf("Reap(2) = %d %v", n, err)
		}
		return nil
	})
	if got := hint(); got != strconv.FormatInt(now+10, 10) {
		t.Errorf("hint after a limited reap = %s, want it unchanged", got)
	}
	mustUpdate(t, s, func(tx Tx) error {
		n, err := tx.Reap(0, collect)
		if n != 1 || err != nil {
			t.Errorf("Reap(0) = %d %v", n, err)
		}
		if has, _ := tx.HasExpired(); has {
			t.Error("HasExpired after a full reap")
		}
		return nil
	})
	if want := "[b0/k0 b0/k2 b1/k1]"; fmt.Sprint(reaped) != want {
		t.Errorf("reaped %v, want %s", reaped, want)
	}
	if got := hint(); got != strconv.FormatInt(now+40, 10) {
		t.Errorf("hint after a full reap = %s, want the next deadline", got)
	}
	// A hint left stale by deletes is corrected by the next walk.
	mustUpdate(t, s, func(tx Tx) error {
		tx.Delete("b1", "k3")
		tx.Delete("b0", "k4")
		return nil
	})
	clock.Advance(time.Hour)
	mustUpdate(t, s, func(tx Tx) error {
		if has, _ := tx.HasExpired(); has {
			t.Error("HasExpired with nothing expired")
		}
		return nil
	})
	if got := hint(); got != "0" {
		t.Errorf("hint = %s, want 0 (no deadlines)", got)
	}
	// An unreadable hint counts as due: nothing is missed.
	os.WriteFile(filepath.Join(s.dir, fileHintName), []byte("garbage"), 0o600)
	mustUpdate(t, s, func(tx Tx) error {
		return tx.Put(Entry{Bucket: "b0", Key: "x", Value: []byte("x"), ExpiresAt: clock.Now().UnixMilli() + 1})
	})
	clock.Advance(time.Millisecond)
	mustUpdate(t, s, func(tx Tx) error {
		if n, _ := tx.Reap(0, nil); n != 1 {
			t.Errorf("Reap with a garbled hint = %d", n)
		}
		return nil
	})
}

func TestFileCorruptRecord(t *testing.T) {
	s, _ := newTestFile(t)
	mustUpdate(t, s, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("value")}) })
	path := filepath.Join(s.dir, "b", "main", "k")
	data, _ := os.ReadFile(path)
	data[len(data)-6] ^= 1
	os.WriteFile(path, data, 0o600)
	err := s.View(context.Background(), func(tx Tx) error {
		_, _, err := tx.Get("main", "k")
		return err
	})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Errorf("Get of a damaged record: %v", err)
	}
	err = s.View(context.Background(), func(tx Tx) error {
		_, err := tx.Count("main")
		return err
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("Count over a damaged record: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Error("damaged record was changed")
	}
	// A file holding another key is damage too.
	os.WriteFile(path, fileRecordEncode(0, "other", []byte("v")), 0o600)
	err = s.View(context.Background(), func(tx Tx) error {
		_, _, err := tx.Get("main", "k")
		return err
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("misplaced record: %v", err)
	}
}

// TestFileRecordGrownSparse: a record extended to a terabyte (truncate -s
// 1T, a sparse file) is damage reported as ErrCorrupt; reading it must not
// allocate the file's size first, which killed the process with "fatal
// error: runtime: out of memory".
func TestFileRecordGrownSparse(t *testing.T) {
	s, _ := newTestFile(t)
	mustUpdate(t, s, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("value")}) })
	path := filepath.Join(s.dir, "b", "main", "k")
	if err := os.Truncate(path, 1<<40); err != nil {
		t.Skipf("cannot make a sparse file here: %v", err)
	}
	err := s.View(context.Background(), func(tx Tx) error {
		_, _, err := tx.Get("main", "k")
		return err
	})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Errorf("Get of a record grown to 1 TiB: %v", err)
	}
}

// TestFileJournalNoRoom: a journaled commit the filesystem cannot hold is
// refused before its commit point, with nothing written. Renaming the
// journal first left a commit that failed half applied, wedged every later
// command (reads too) replaying it, and landed once space was freed, after
// its command had exited 3.
func TestFileJournalNoRoom(t *testing.T) {
	s, _ := newTestFile(t)
	mustUpdate(t, s, func(tx Tx) error {
		tx.Put(Entry{Bucket: "main", Key: "a", Value: []byte("old a")})
		return tx.Put(Entry{Bucket: "main", Key: "b", Value: []byte("old b")})
	})
	defer func(f func(string) (fileRoom, bool)) { fileFreeSpace = f }(fileFreeSpace)
	fileFreeSpace = func(string) (fileRoom, bool) { return fileRoom{4096, 3 * 4096, -1}, true }
	big := bytes.Repeat([]byte("v"), 5000) // two blocks each: four in all
	err := s.Update(context.Background(), func(tx Tx) error {
		tx.Put(Entry{Bucket: "main", Key: "a", Value: big})
		return tx.Put(Entry{Bucket: "main", Key: "b", Value: big})
	})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("commit over the free space: %v", err)
	}
	for _, name := range []string{fileJournalName, fileJournalName + ".tmp"} {
		if _, err := os.Lstat(filepath.Join(s.dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", name, err)
		}
	}
	for _, k := range []string{"a", "b"} {
		if v, _ := getValue(t, s, "main", k); v != "old "+k {
			t.Errorf("%s = %q after a refused commit", k, v)
		}
	}
	// With room (or a filesystem that does not say) it commits.
	fileFreeSpace = func(string) (fileRoom, bool) { return fileRoom{4096, 4 * 4096, -1}, true }
	mustUpdate(t, s, func(tx Tx) error {
		tx.Put(Entry{Bucket: "main", Key: "a", Value: big})
		return tx.Put(Entry{Bucket: "main", Key: "b", Value: big})
	})
	if v, _ := getValue(t, s, "main", "b"); v != string(big) {
		t.Errorf("commit with room: b has %d bytes", len(v))
	}
}

func TestFileJournalReplay(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s := openTestFile(t, dir, Options{})
	mustUpdate(t, s, func(tx Tx) error {
		tx.Put(Entry{Bucket: "main", Key: "old", Value: []byte("o")})
		return tx.Put(Entry{Bucket: "drop", Key: "x", Value: []byte("x")})
	})
	s.crashAfterJournal = true
	err := s.Update(context.Background(), func(tx Tx) error {
		tx.Delete("main", "old")
		tx.DropBucket("drop")
		tx.SetPolicy("main", Policy{MaxKeys: 7})
		for i := range 100 {
			tx.Put(Entry{Bucket: "main", Key: fmt.Sprint("k", i), Value: []byte(fmt.Sprint(i)), ExpiresAt: 1})
		}
		return nil
	})
	if !errors.Is(err, errFileTestCrash) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, fileJournalName)); err != nil {
		t.Fatalf("no journal after the simulated crash: %v", err)
	}
	// Nothing was applied yet...
	if _, err := os.Stat(filepath.Join(dir, "b", "main", "old")); err != nil {
		t.Fatal("writes applied before the crash point")
	}
	// ...and the next opener, even a reader, replays the journal.
	s2 := openTestFile(t, dir, Options{Clock: ttl.NewFake(time.UnixMilli(0))})
	mustView(t, s2, func(tx Tx) error {
		if n, _ := tx.Count("main"); n != 100 {
			t.Errorf("Count after replay = %d, want 100", n)
		}
		if _, ok, _ := tx.Get("main", "old"); ok {
			t.Error("deleted key survived replay")
		}
		if n, _ := tx.Count("drop"); n != 0 {
			t.Error("dropped bucket survived replay")
		}
		if p, _ := tx.Policy("main"); p.MaxKeys != 7 {
			t.Errorf("policy after replay = %+v", p)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(dir, fileJournalName)); !os.IsNotExist(err) {
		t.Errorf("journal left after replay: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, fileHintName)); string(data) != "1\n" {
		t.Errorf("hint after replay = %q", data)
	}
}

// TestFileDamagedJournal: a committed journal that fails its checksum was
// damaged after its commit (no crash leaves one), perhaps half applied, so
// it is refused as corrupt and kept, never silently discarded. A torn
// .journal.tmp was never committed and goes.
func TestFileDamagedJournal(t *testing.T) {
	for _, damage := range []string{"truncate", "flip"} {
		t.Run(damage, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			s := openTestFile(t, dir, Options{})
			mustUpdate(t, s, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "a", Value: []byte("old")}) })
			s.crashAfterJournal = true
			err := s.Update(context.Background(), func(tx Tx) error {
				tx.Put(Entry{Bucket: "main", Key: "a", Value: []byte("a")})
				return tx.Put(Entry{Bucket: "main", Key: "b", Value: []byte("b")})
			})
			if !errors.Is(err, errFileTestCrash) {
				t.Fatal(err)
			}
			// The writer died half way: b is in place, a is not.
			os.WriteFile(filepath.Join(dir, "b", "main", "b"), fileRecordEncode(0, "b", []byte("b")), 0o600)
			jpath := filepath.Join(dir, fileJournalName)
			data, _ := os.ReadFile(jpath)
			if damage == "truncate" {
				data = data[:len(data)-3]
			} else {
				data[len(data)/2] ^= 0x10
			}
			os.WriteFile(jpath, data, 0o600)
			s.crashAfterJournal = false
			err = s.View(context.Background(), func(tx Tx) error {
				_, err := tx.Count("main")
				return err
			})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), jpath) {
				t.Errorf("View over a damaged journal: %v", err)
			}
			err = s.Update(context.Background(), func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "c", Value: []byte("c")}) })
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Update over a damaged journal: %v", err)
			}
			if after, err := os.ReadFile(jpath); err != nil || !bytes.Equal(after, data) {
				t.Errorf("damaged journal not kept as it was: %v", err)
			}
			// Moved aside, the store is usable as it is.
			os.Rename(jpath, jpath+".saved")
			if v, _ := getValue(t, s, "main", "a"); v != "old" {
				t.Errorf("a = %q", v)
			}
		})
	}
	t.Run("tmp", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "store")
		s := openTestFile(t, dir, Options{})
		mustUpdate(t, s, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "a", Value: []byte("old")}) })
		os.WriteFile(filepath.Join(dir, fileJournalName+".tmp"), []byte("LDJL\x01P"), 0o600)
		if v, _ := getValue(t, s, "main", "a"); v != "old" {
			t.Errorf("a = %q", v)
		}
		mustUpdate(t, s, func(tx Tx) error { return nil })
		if _, err := os.Stat(filepath.Join(dir, fileJournalName+".tmp")); !os.IsNotExist(err) {
			t.Errorf("torn .journal.tmp not removed: %v", err)
		}
	})
}

func TestFileCorruptJournalKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s := openTestFile(t, dir, Options{})
	// A checksum that matches over ops that make no sense is not a torn
	// write: refuse to go on and leave it for a human.
	err := s.writeJournal(func(yield func(fileOp) error) error {
		return yield(fileOp{kind: fileOpDel, bucket: "bad/bucket", key: "k"})
	}, fileJournalVersion)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(context.Background(), func(Tx) error { return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("Update over a corrupt journal: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, fileJournalName)); err != nil {
		t.Errorf("corrupt journal removed: %v", err)
	}
}

func TestFileConcurrentIncrements(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	stores := []*fileStore{openTestFile(t, dir, Options{}), openTestFile(t, dir, Options{})}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[g%2]
			for range 100 {
				err := s.Update(context.Background(), func(tx Tx) error {
					e, _, err := tx.Get("main", "counter")
					if err != nil {
						return err
					}
					n, _ := strconv.Atoi(string(e.Value))
					if err := tx.Put(Entry{Bucket: "main", Key: "counter", Value: []byte(strconv.Itoa(n + 1))}); err != nil {
						return err
					}
					// A second write makes half the commits journaled.
					if n%2 == 0 {
						return tx.Put(Entry{Bucket: "main", Key: "last", Value: []byte(strconv.Itoa(g))})
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				// Readers run alongside.
				if err := s.View(context.Background(), func(tx Tx) error { _, err := tx.Count("main"); return err }); err != nil {
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
	if v, _ := getValue(t, stores[0], "main", "counter"); v != "800" {
		t.Errorf("counter = %s, want 800", v)
	}
}

func TestFileBusyAndCancel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	holder := openTestFile(t, dir, Options{})
	waiter := openTestFile(t, dir, Options{BusyTimeout: 50 * time.Millisecond})
	locked, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- holder.Update(context.Background(), func(Tx) error {
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	start := time.Now()
	err := waiter.Update(context.Background(), func(Tx) error { return nil })
	if !errors.Is(err, ErrBusy) || time.Since(start) < 50*time.Millisecond {
		t.Errorf("Update while locked: %v after %v", err, time.Since(start))
	}
	if err := waiter.View(context.Background(), func(Tx) error { return nil }); !errors.Is(err, ErrBusy) {
		t.Errorf("View while locked: %v", err)
	}
	slow := openTestFile(t, dir, Options{BusyTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := slow.Update(ctx, func(Tx) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Update with a cancelled context: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Readers share the lock.
	mustView(t, holder, func(Tx) error {
		mustView(t, waiter, func(Tx) error { return nil })
		return nil
	})
}

func TestFileLargeImportIsLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	s, _ := newTestFile(t)
	const n = 20000
	start := time.Now()
	mustUpdate(t, s, func(tx Tx) error {
		tx.SetPolicy("main", Policy{MaxKeys: n})
		for i := range n {
			// What an import does per line: look, check room, write.
			key := fmt.Sprintf("key-%06d", i)
			if _, ok, err := tx.Get("main", key); err != nil || ok {
				return fmt.Errorf("get %s: %v %v", key, ok, err)
			}
			if c, err := tx.Count("main"); err != nil || c != int64(i) {
				return fmt.Errorf("count = %d %v", c, err)
			}
			if c, err := tx.CountAll(); err != nil || c != int64(i) {
				return fmt.Errorf("count all = %d %v", c, err)
			}
			if err := tx.Put(Entry{Bucket: "main", Key: key, Value: []byte("value")}); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("%d keys in %v", n, time.Since(start))
	mustView(t, s, func(tx Tx) error {
		if c, _ := tx.Count("main"); c != n {
			t.Errorf("Count = %d", c)
		}
		return nil
	})
}

// A journaled commit overwrites a record that is there in place
// (fileWriteAll): every rewritten file holds exactly its new record,
// whether it was longer, shorter or as long before, on the small path
// (an fsync per file) and the large one (one syncfs).
func TestFileJournaledRewrite(t *testing.T) {
	for _, n := range []int{3, fileSmallCommit + 10} {
		t.Run(fmt.Sprint(n, "keys"), func(t *testing.T) {
			s, _ := newTestFile(t)
			values := []string{strings.Repeat("long ", 200), "short", "", strings.Repeat("x", 9000), "mid"}
			for round, v := range values {
				mustUpdate(t, s, func(tx Tx) error {
					for i := range n {
						if err := tx.Put(Entry{Bucket: "main", Key: fmt.Sprint("k", i), Value: []byte(fmt.Sprint(v, i))}); err != nil {
							return err
						}
					}
					return nil
				})
				for i := range n {
					want := fmt.Sprint(v, i)
					path := filepath.Join(s.dir, "b", "main", fileKeyEncode(fmt.Sprint("k", i)))
					data, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					if rec := fileRecordEncode(0, fmt.Sprint("k", i), []byte(want)); !bytes.Equal(data, rec) {
						t.Fatalf("round %d: %s holds %d bytes, want its record of %d", round, path, len(data), len(rec))
					}
					if got, ok := getValue(t, s, "main", fmt.Sprint("k", i)); !ok || got != want {
						t.Fatalf("round %d: k%d = %.20q %v, want %.20q", round, i, got, ok, want)
					}
				}
			}
		})
	}
}

// fileWriteAll leaves exactly data in the file, whatever was there.
func TestFileWriteAll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	for _, data := range []string{"", "hello world", "hi", "hi", strings.Repeat("z", 70000), "", "end"} {
		for _, sync := range []bool{false, true} {
			if err := fileWriteAll(path, []byte(data), sync); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(path); err != nil || string(got) != data {
				t.Fatalf("after writing %d bytes the file holds %d (%v)", len(data), len(got), err)
			}
		}
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("mode %v", m)
	}
}

// A commit killed while it overwrote records in place leaves files that
// are a new record's start over an old record's tail, or still old: the
// replay of its journal rewrites each whole, and the next reader sees
// exactly the new values.
func TestFileJournalReplayOverTornRecords(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s := openTestFile(t, dir, Options{})
	const n = 100
	mustUpdate(t, s, func(tx Tx) error {
		for i := range n {
			tx.Put(Entry{Bucket: "main", Key: fmt.Sprint("k", i), Value: []byte(strings.Repeat("old", 50))})
		}
		return nil
	})
	s.crashAfterJournal = true
	err := s.Update(context.Background(), func(tx Tx) error {
		for i := range n {
			tx.Put(Entry{Bucket: "main", Key: fmt.Sprint("k", i), Value: []byte(fmt.Sprint("new", i))})
		}
		return nil
	})
	if !errors.Is(err, errFileTestCrash) {
		t.Fatalf("err = %v", err)
	}
	// Play the crash inside the apply: the first third fully rewritten
	// but not cut, the second third half written, the rest untouched.
	for i := range 2 * n / 3 {
		key := fmt.Sprint("k", i)
		rec := fileRecordEncode(0, key, []byte(fmt.Sprint("new", i)))
		if i >= n/3 {
			rec = rec[:len(rec)/2]
		}
		f, err := os.OpenFile(filepath.Join(dir, "b", "main", fileKeyEncode(key)), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(rec, 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	s2 := openTestFile(t, dir, Options{})
	mustView(t, s2, func(tx Tx) error {
		for i := range n {
			e, ok, err := tx.Get("main", fmt.Sprint("k", i))
			if err != nil || !ok || string(e.Value) != fmt.Sprint("new", i) {
				t.Errorf("k%d after replay = %q %v %v", i, e.Value, ok, err)
			}
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(dir, fileJournalName)); !os.IsNotExist(err) {
		t.Errorf("journal left after replay: %v", err)
	}
}

func TestFileFullDurability(t *testing.T) {
	s := openTestFile(t, filepath.Join(t.TempDir(), "store"), Options{Durability: Full})
	mustUpdate(t, s, func(tx Tx) error {
		return tx.Put(Entry{Bucket: "new", Key: "k", Value: []byte("v"), ExpiresAt: 1 << 60})
	})
	mustUpdate(t, s, func(tx Tx) error { _, err := tx.Delete("new", "k"); return err })
	mustUpdate(t, s, func(tx Tx) error { return tx.SetPolicy("new", Policy{MaxKeys: 1}) })
	mustView(t, s, func(tx Tx) error {
		if p, _ := tx.Policy("new"); p.MaxKeys != 1 {
			t.Errorf("policy = %+v", p)
		}
		return nil
	})
}

// Internal buckets live under i/, where nothing that lists b/ looks, in
// the same records as user keys.
func TestFileInternalLayout(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "store")
	s := openTestFile(t, dir, Options{})
	mustUpdate(t, s, func(tx Tx) error { return tx.Put(Entry{Bucket: "!hooks", Key: "on-set", Value: []byte("def")}) })
	for path, want := range map[string]os.FileMode{
		filepath.Join(dir, "i"):                       0o700,
		filepath.Join(dir, "i", "%21hooks"):           0o700,
		filepath.Join(dir, "i", "%21hooks", "on-set"): 0o600,
	} {
		if got := mode(t, path); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
	}
	if names, _ := readDirNames(filepath.Join(dir, "b")); len(names) != 0 {
		t.Errorf("b/ holds %v", names)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "i", "%21hooks", "on-set"))
	if rec, err := fileRecordDecode(data); err != nil || rec.Key != "on-set" || string(rec.Value) != "def" {
		t.Errorf("record = %+v, %v", rec, err)
	}
	// A full-durability store creates i/ on first use too.
	full := openTestFile(t, filepath.Join(t.TempDir(), "full"), Options{Durability: Full})
	mustUpdate(t, full, func(tx Tx) error { return tx.Put(Entry{Bucket: "!outbox", Key: "1", Value: []byte("e")}) })
	if v, ok := getValue(t, full, "!outbox", "1"); !ok || v != "e" {
		t.Errorf("full durability: %q %v", v, ok)
	}
}

// A commit writing an internal and a user record goes through the journal
// as one: after a crash at the commit point both are replayed, neither
// before. Only such a journal carries version 2.
func TestFileJournalInternal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s := openTestFile(t, dir, Options{})
	jpath := filepath.Join(dir, fileJournalName)
	s.crashAfterJournal = true
	err := s.Update(context.Background(), func(tx Tx) error {
		tx.Put(Entry{Bucket: "main", Key: "a", Value: []byte("1")})
		return tx.Put(Entry{Bucket: "main", Key: "b", Value: []byte("2")})
	})
	if data, _ := os.ReadFile(jpath); !errors.Is(err, errFileTestCrash) || len(data) < 5 || data[4] != fileJournalVersion {
		t.Fatalf("user-only journal: %v, %q", err, data[:min(len(data), 5)])
	}
	s.crashAfterJournal = false
	mustUpdate(t, s, func(tx Tx) error { return tx.Put(Entry{Bucket: "!outbox", Key: "0", Value: []byte("old")}) })
	s.crashAfterJournal = true
	err = s.Update(context.Background(), func(tx Tx) error {
		tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("v")})
		tx.Delete("!outbox", "0")
		return tx.Put(Entry{Bucket: "!outbox", Key: "1", Value: []byte("set k")})
	})
	if !errors.Is(err, errFileTestCrash) {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(jpath); len(data) < 5 || data[4] != fileJournalVersionInternal {
		t.Fatalf("journal with internal records: %q", data[:min(len(data), 5)])
	}
	if _, err := os.Stat(filepath.Join(dir, "i", "%21outbox", "1")); err == nil {
		t.Fatal("internal write applied before the commit point")
	}
	s2 := openTestFile(t, dir, Options{})
	mustView(t, s2, func(tx Tx) error {
		_, user, _ := tx.Get("main", "k")
		_, old, _ := tx.Get("!outbox", "0")
		e, event, err := tx.Get("!outbox", "1")
		if !user || old || !event || string(e.Value) != "set k" {
			t.Errorf("after replay: user %v, old event %v, event %v %q", user, old, event, e.Value)
		}
		return err
	})
	if _, err := os.Stat(jpath); !os.IsNotExist(err) {
		t.Errorf("journal left after replay: %v", err)
	}
}

// The journal parser takes internal buckets only where a version 2 journal
// may hold them: puts and deletes.
func TestFileJournalInternalNames(t *testing.T) {
	rec := fileRecordEncode(0, "k", []byte("v"))
	journal := func(version, kind byte, bucket string, body []byte) []byte {
		j := append([]byte(fileJournalMagic), version, kind, byte(len(bucket)))
		j = append(j, bucket...)
		if body != nil {
			j = append(j, byte(len(body)))
			j = append(j, body...)
		}
		return append(j, fileOpEnd, 1)
	}
	for _, c := range []struct {
		journal []byte
		ok      bool
	}{
		{journal(2, fileOpPut, "!outbox", rec), true},
		{journal(2, fileOpDel, "!outbox", []byte("k")), true},
		{journal(2, fileOpPut, "main", rec), true},
		{journal(1, fileOpPut, "!outbox", rec), false},
		{journal(2, fileOpDrop, "!outbox", nil), false},
		{journal(2, fileOpPolicy, "!outbox", []byte(`{"max_keys":1,"default_ttl_ms":0}`)), false},
		{journal(2, fileOpPut, "!Outbox", rec), false},
		{journal(2, fileOpPut, "!", rec), false},
		{journal(3, fileOpPut, "main", rec), false},
	} {
		jr := &fileJournalReader{r: bufio.NewReader(bytes.NewReader(c.journal)), left: int64(len(c.journal))}
		if err := jr.read(func(fileOp) error { return nil }); (err == nil) != c.ok {
			t.Errorf("%q: err = %v, want ok %v", c.journal, err, c.ok)
		}
	}
}

func TestFileErrors(t *testing.T) {
	s, _ := newTestFile(t)
	mustUpdate(t, s, func(tx Tx) error {
		if err := tx.Put(Entry{Bucket: "bad/name", Key: "k"}); !errors.Is(err, ErrInvalidBucket) {
			t.Errorf("bad bucket: %v", err)
		}
		if err := tx.Put(Entry{Bucket: "main", Key: ""}); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("empty key: %v", err)
		}
		if err := tx.Put(Entry{Bucket: "main", Key: "a\x00b"}); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("NUL key: %v", err)
		}
		return nil
	})
	mustView(t, s, func(tx Tx) error {
		if err := tx.Put(Entry{Bucket: "main", Key: "k"}); err == nil {
			t.Error("Put in a View succeeded")
		}
		return nil
	})
	var leaked Tx
	mustView(t, s, func(tx Tx) error { leaked = tx; return nil })
	if _, _, err := leaked.Get("main", "k"); err == nil {
		t.Error("transaction usable after it ended")
	}
	if os.Geteuid() != 0 {
		os.Chmod(filepath.Join(s.dir, "b"), 0o500)
		defer os.Chmod(filepath.Join(s.dir, "b"), 0o700)
		err := s.Update(context.Background(), func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "k"}) })
		if err == nil || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrBusy) {
			t.Errorf("write into a read-only folder: %v", err)
		}
	}
	s.Close()
	if err := s.View(context.Background(), func(Tx) error { return nil }); err == nil {
		t.Error("View after Close succeeded")
	}
}

// TestFileKillDuringImport kills a writer with SIGKILL in the middle of
// large transactions and checks that each one landed completely or not at
// all.
func TestFileKillDuringImport(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := filepath.Join(t.TempDir(), "store")
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFileHelperImporter$")
		cmd.Env = append(os.Environ(), "LIVEDICT_FILE_HELPER="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(150+round*70) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		s := openTestFile(t, dir, Options{})
		mustView(t, s, func(tx Tx) error {
			seen := map[string]int{}
			err := tx.Scan("main", "", true, func(e Entry) error {
				seen[string(e.Value)]++
				return nil
			})
			if len(seen) > 1 {
				t.Errorf("round %d: mixed generations %v", round, seen)
			}
			for gen, n := range seen {
				if n != 2000 {
					t.Errorf("round %d: generation %s has %d of 2000 keys", round, gen, n)
				}
			}
			return err
		})
		if t.Failed() {
			t.Logf("helper stderr: %s", stderr.String())
			return
		}
	}
}

// TestFileHelperImporter is the process TestFileKillDuringImport kills: it
// rewrites 2000 keys per transaction, forever.
func TestFileHelperImporter(t *testing.T) {
	dir := os.Getenv("LIVEDICT_FILE_HELPER")
	if dir == "" {
		t.Skip("helper process only")
	}
	s, err := openFile(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for gen := 0; ; gen++ {
		err := s.Update(context.Background(), func(tx Tx) error {
			for i := range 2000 {
				if err := tx.Put(Entry{Bucket: "main", Key: fmt.Sprint("key", i), Value: []byte(fmt.Sprint(os.Getpid(), "-", gen))}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkFileImport imports b.N keys in one transaction; ns/op is the
// cost per key, which stays flat as b.N grows if the import is linear.
func BenchmarkFileImport(b *testing.B) {
	s, err := openFile(filepath.Join(b.TempDir(), "store"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	entries := make([]Entry, b.N)
	for i := range entries {
		entries[i] = Entry{Bucket: "main", Key: fmt.Sprintf("key-%09d", i), Value: []byte("some value"), ExpiresAt: time.Now().Add(time.Hour).UnixMilli()}
	}
	b.ResetTimer()
	err = s.Update(context.Background(), func(tx Tx) error {
		for _, e := range entries { // what an import does per entry
			if _, had, err := tx.Get(e.Bucket, e.Key); err != nil || had {
				return fmt.Errorf("get: %v %v", had, err)
			}
			if err := tx.Put(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFileGet is one read-only command's worth of store work: a lazy
// reap check and a Get, each a transaction as LazyReap and get make them.
func BenchmarkFileGet(b *testing.B) {
	s, err := openFile(filepath.Join(b.TempDir(), "store"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	s.Update(ctx, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("v")}) })
	b.ResetTimer()
	for range b.N {
		s.View(ctx, func(tx Tx) error {
			_, err := tx.HasExpired()
			return err
		})
		s.View(ctx, func(tx Tx) error {
			_, _, err := tx.Get("main", "k")
			return err
		})
	}
}
