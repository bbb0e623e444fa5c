//go:build unix

package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fillBucket puts n live keys into bucket in one commit.
func fillBucket(t *testing.T, s Store, bucket string, n int) {
	t.Helper()
	mustUpdate(t, s, func(tx Tx) error {
		for i := range n {
			if err := tx.Put(Entry{Bucket: bucket, Key: fmt.Sprintf("k%05d", i), Value: []byte("v")}); err != nil {
				return err
			}
		}
		return nil
	})
}

// trashNames lists DIR/.trash (nil when it does not exist).
func trashNames(t *testing.T, s *fileStore) []string {
	t.Helper()
	names, err := readDirNames(s.path(fileTrashDir))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestFileDropReadsFirstLiveKey: learning whether a dropped bucket had a
// live key reads records only up to the first live one, not the whole
// bucket (a 50,000-key drop read every file under the lock); a bucket of
// expired keys is still read through and reports false.
func TestFileDropReadsFirstLiveKey(t *testing.T) {
	s, clock := newTestFile(t)
	fillBucket(t, s, "big", 500)
	mustUpdate(t, s, func(tx Tx) error {
		for i := range 20 {
			tx.Put(Entry{Bucket: "old", Key: fmt.Sprint("e", i), Value: []byte("v"), ExpiresAt: clock.Now().UnixMilli() + 10})
		}
		tx.Put(Entry{Bucket: "pol", Key: "a", Value: []byte("v")})
		return tx.SetPolicy("pol", Policy{MaxKeys: 5})
	})
	clock.Advance(time.Second)
	reads := 0
	s.testRecordRead = func() { reads++ }
	for _, c := range []struct {
		bucket   string
		had      bool
		maxReads int
	}{{"big", true, 1}, {"pol", true, 0}, {"old", false, 20}, {"none", false, 0}} {
		reads = 0
		var had bool
		mustUpdate(t, s, func(tx Tx) error {
			var err error
			had, err = tx.DropBucket(c.bucket)
			return err
		})
		if had != c.had || reads > c.maxReads {
			t.Errorf("DropBucket(%s) = %v reading %d records, want %v reading at most %d", c.bucket, had, reads, c.had, c.maxReads)
		}
	}
	// Buffered writes count as the merged view has them.
	fillBucket(t, s, "mix", 3)
	reads = 0
	mustUpdate(t, s, func(tx Tx) error {
		for i := range 3 {
			tx.Delete("mix", fmt.Sprintf("k%05d", i))
		}
		if had, err := tx.DropBucket("mix"); err != nil || had {
			t.Errorf("DropBucket of a bucket whose keys were all deleted = %v %v", had, err)
		}
		tx.Put(Entry{Bucket: "mix", Key: "n", Value: []byte("v")})
		if had, err := tx.DropBucket("mix"); err != nil || !had {
			t.Errorf("DropBucket of a bucket with a buffered put = %v %v", had, err)
		}
		return nil
	})
	mustView(t, s, func(tx Tx) error {
		if b, _ := tx.Buckets(); len(b) != 0 {
			t.Errorf("Buckets after the drops = %v", b)
		}
		return nil
	})
}

// TestFileDropReleasesLockFirst: a drop commits with one rename into
// DIR/.trash and deletes the moved files only after the lock is released,
// so another writer with a short busy timeout commits while that deletion
// is still to come, and sees the bucket gone.
func TestFileDropReleasesLockFirst(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s := openTestFile(t, dir, Options{})
	fillBucket(t, s, "big", 2000)
	other := openTestFile(t, dir, Options{BusyTimeout: 50 * time.Millisecond})
	ran := false
	s.testBeforeEmptyTrash = func() {
		ran = true
		names := trashNames(t, s)
		if len(names) != 1 {
			t.Fatalf("trash before deletion = %v, want the moved folder", names)
		}
		if keys, _ := readDirNames(filepath.Join(s.path(fileTrashDir), names[0])); len(keys) != 2000 {
			t.Errorf("moved folder holds %d files, want 2000", len(keys))
		}
		if err := other.Update(context.Background(), func(tx Tx) error {
			return tx.Put(Entry{Bucket: "x", Key: "x", Value: []byte("1")})
		}); err != nil {
			t.Errorf("a writer waiting on the drop: %v", err)
		}
		mustView(t, other, func(tx Tx) error {
			if b, _ := tx.Buckets(); fmt.Sprint(b) != "[{x 1}]" {
				t.Errorf("Buckets while the moved folder waits = %v", b)
			}
			if _, ok, _ := tx.Get("big", "k00001"); ok {
				t.Error("a dropped key is still read")
			}
			return nil
		})
	}
	var had bool
	mustUpdate(t, s, func(tx Tx) error {
		var err error
		had, err = tx.DropBucket("big")
		return err
	})
	if !ran || !had {
		t.Fatalf("drop: had %v, deletion after the lock ran: %v", had, ran)
	}
	if names := trashNames(t, s); len(names) != 0 {
		t.Errorf("trash after the drop = %v", names)
	}
	if _, err := os.Lstat(filepath.Join(dir, "b", "big")); !os.IsNotExist(err) {
		t.Errorf("dropped folder: %v", err)
	}
}

// TestFileTrashLeftByCrash: a writer killed between the rename and the
// deletion leaves its folder in DIR/.trash. The store reads as if it were
// gone, the next write transaction deletes it (but not one another live
// writer is deleting), and a journal replayed after the rename happened
// finds nothing to move and still applies.
func TestFileTrashLeftByCrash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s := openTestFile(t, dir, Options{})
	fillBucket(t, s, "a", 10)
	fillBucket(t, s, "busy", 3)
	fillBucket(t, s, "d", 3)
	// Killed after the rename of a journaled drop, before the journal went.
	s.crashAfterJournal = true
	err := s.Update(context.Background(), func(tx Tx) error {
		tx.DropBucket("d")
		tx.Put(Entry{Bucket: "d", Key: "new", Value: []byte("n")})
		return tx.Put(Entry{Bucket: "main", Key: "m", Value: []byte("m")})
	})
	if !errors.Is(err, errFileTestCrash) {
		t.Fatalf("err = %v", err)
	}
	s.crashAfterJournal = false
	// The journal's rename of d happened; the others were dropped earlier.
	// (The commit made DIR/.trash before its commit point.)
	if err := os.MkdirAll(s.path(fileTrashDir), 0o700); err != nil {
		t.Fatal(err)
	}
	// Killed after the commit, before the deletion: journal gone.
	if err := os.Rename(s.bucketDir("a"), filepath.Join(s.path(fileTrashDir), "1-dead-1")); err != nil {
		t.Fatal(err)
	}
	// Another writer still deleting its folder holds a flock on it.
	held := filepath.Join(s.path(fileTrashDir), "2-live-1")
	if err := os.Rename(s.bucketDir("busy"), held); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(held, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(s.bucketDir("d"), filepath.Join(s.path(fileTrashDir), "3-dead-1")); err != nil {
		t.Fatal(err)
	}

	// Reads see none of it, and replay the journal with nothing to move.
	s2 := openTestFile(t, dir, Options{})
	mustView(t, s2, func(tx Tx) error {
		b, err := tx.Buckets()
		if want := "[{d 1} {main 1}]"; err != nil || fmt.Sprint(b) != want {
			t.Errorf("Buckets = %v %v, want %s", b, err, want)
		}
		if _, ok, _ := tx.Get("a", "k00001"); ok {
			t.Error("a key of a dropped bucket is read from the trash")
		}
		if _, ok, _ := tx.Get("d", "k00001"); ok {
			t.Error("a key dropped by the replayed journal survived")
		}
		if n, _ := tx.CountAll(); n != 2 {
			t.Errorf("CountAll = %d, want 2", n)
		}
		return nil
	})
	if _, err := os.Lstat(s.path(fileJournalName)); !os.IsNotExist(err) {
		t.Errorf("journal after replay: %v", err)
	}
	if names := trashNames(t, s2); len(names) != 3 {
		t.Errorf("trash after reads = %v, want the 3 leftovers", names)
	}
	mustUpdate(t, s2, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "n", Value: []byte("n")}) })
	if names := trashNames(t, s2); fmt.Sprint(names) != "[2-live-1]" {
		t.Errorf("trash after the next write = %v, want only the folder still held", names)
	}
	unix.Close(fd)
	mustUpdate(t, s2, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "o", Value: []byte("o")}) })
	if names := trashNames(t, s2); len(names) != 0 {
		t.Errorf("trash once its writer is gone = %v", names)
	}

	// The trash is deleted from, so it must be ours like b/ and i/.
	if err := os.Chmod(s.path(fileTrashDir), 0o770); err != nil {
		t.Fatal(err)
	}
	if _, err := openFile(dir, Options{}); !errors.Is(err, ErrUntrusted) {
		t.Errorf("open with a group-writable trash: %v", err)
	}
}

// TestFileLookupsInNewBucket: an import looks every key up before writing
// it; in a bucket with no folder yet the first miss lists the (missing)
// folder, so the other lookups cost no open each. A miss in a bucket that
// exists lists nothing.
func TestFileLookupsInNewBucket(t *testing.T) {
	s, _ := newTestFile(t)
	fillBucket(t, s, "old", 3)
	mustUpdate(t, s, func(tx Tx) error {
		ftx := tx.(*fileTx)
		if _, ok, err := tx.Get("fresh", "a"); ok || err != nil {
			t.Fatalf("Get in a new bucket = %v %v", ok, err)
		}
		if tb := ftx.buckets["fresh"]; !tb.loaded {
			t.Error("a miss in a bucket with no folder did not list it")
		}
		tx.Put(Entry{Bucket: "fresh", Key: "a", Value: []byte("v")})
		if e, ok, _ := tx.Get("fresh", "a"); !ok || string(e.Value) != "v" {
			t.Errorf("Get after Put = %v %v", e, ok)
		}
		if n, _ := tx.Count("fresh"); n != 1 {
			t.Errorf("Count = %d", n)
		}
		if _, ok, err := tx.Get("old", "nope"); ok || err != nil {
			t.Fatalf("Get of a missing key = %v %v", ok, err)
		}
		if _, ok, _ := tx.Get("old", "k00001"); !ok {
			t.Error("existing key not found")
		}
		if tb := ftx.buckets["old"]; tb.loaded {
			t.Error("a miss in an existing bucket listed it")
		}
		return nil
	})
	if v, ok := getValue(t, s, "fresh", "a"); !ok || v != "v" {
		t.Errorf("after commit: %q %v", v, ok)
	}
}
