//go:build unix

package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fileUpdateNoHang runs fn in an Update and fails the test (rather than hang
// it) when the Update does not return within a generous bound.
func fileUpdateNoHang(t *testing.T, s Store, fn func(Tx) error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Update(context.Background(), fn) }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Update hung")
		return nil
	}
}

// TestFileTempFIFO plants FIFOs at the fixed temporary names a single
// write and the expiry hint go through: a set must not block in open(2)
// waiting for a reader that never comes (it did, holding the store lock).
func TestFileTempFIFO(t *testing.T) {
	s, _ := newTestFile(t)
	mustUpdate(t, s, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("old")}) })
	for _, dir := range []string{s.bucketDir("main"), s.dir} {
		if err := unix.Mkfifo(filepath.Join(dir, fileTempName), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	err := fileUpdateNoHang(t, s, func(tx Tx) error {
		return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("new"), ExpiresAt: fileT0.Add(time.Hour).UnixMilli()})
	})
	if err != nil {
		t.Fatalf("set with a FIFO at the temporary name: %v", err)
	}
	if v, _ := getValue(t, s, "main", "k"); v != "new" {
		t.Errorf("k = %q, want new", v)
	}
	for _, dir := range []string{s.bucketDir("main"), s.dir} {
		if _, err := os.Lstat(filepath.Join(dir, fileTempName)); !os.IsNotExist(err) {
			t.Errorf("%s: temporary name still there: %v", dir, err)
		}
	}
}

// TestFileCreateRace has the store's folder appear between the first
// write's lstat (missing) and its mkdir, as another user can make it in
// /tmp: a folder others can write, or a symlink, must be refused as it is
// when it was there from the start, with nothing written into it.
func TestFileCreateRace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, dir string)
	}{
		{"open folder", func(t *testing.T, dir string) {
			if err := os.Mkdir(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink", func(t *testing.T, dir string) {
			if err := os.Symlink(t.TempDir(), dir); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			st, err := openFile(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			s := st.(*fileStore)
			s.testBeforeMkdir = func() { tc.plant(t, dir) }
			err = s.Update(context.Background(), func(tx Tx) error {
				return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("v")})
			})
			if !errors.Is(err, ErrUntrusted) {
				t.Fatalf("write into a folder made under it: %v, want ErrUntrusted", err)
			}
			if names, _ := readDirNames(dir); len(names) > 0 {
				t.Errorf("wrote into it: %v", names)
			}
		})
	}
}

// TestFileJournaledKeepsHardLinks snapshots the records with hard links
// (cp -al) and then commits several keys at once: the journaled commit
// overwrites files in place, and must not reach through to the snapshot's
// copies, as the rename of a single write never did. A FIFO at a record's
// path is replaced, not waited on.
func TestFileJournaledKeepsHardLinks(t *testing.T) {
	s, _ := newTestFile(t)
	mustUpdate(t, s, func(tx Tx) error {
		for _, k := range []string{"a", "b"} {
			if err := tx.Put(Entry{Bucket: "main", Key: k, Value: []byte("old-" + k)}); err != nil {
				return err
			}
		}
		return nil
	})
	snap := t.TempDir()
	for _, k := range []string{"a", "b"} {
		if err := os.Link(filepath.Join(s.bucketDir("main"), k), filepath.Join(snap, k)); err != nil {
			t.Fatal(err)
		}
	}
	err := fileUpdateNoHang(t, s, func(tx Tx) error {
		for _, k := range []string{"a", "b"} {
			if err := tx.Put(Entry{Bucket: "main", Key: k, Value: []byte("new-" + k)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		if v, _ := getValue(t, s, "main", k); v != "new-"+k {
			t.Errorf("%s = %q, want new-%s", k, v, k)
		}
		rec, ok, err := readRecord(filepath.Join(snap, k), true)
		if err != nil || !ok || string(rec.Value) != "old-"+k {
			t.Errorf("snapshot of %s now holds %q (%v, %v), want old-%s", k, rec.Value, ok, err, k)
		}
	}

	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fileWriteAll(fifo, []byte("data"), false) }()
	select {
	case err := <-done:
		if got, rerr := os.ReadFile(fifo); err != nil || rerr != nil || string(got) != "data" {
			t.Errorf("fileWriteAll over a FIFO: %v; file holds %q (%v)", err, got, rerr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("fileWriteAll blocked on a FIFO")
	}
}

// TestFileSweepsStaleTemps: a process killed while it created the store's
// marker or corrected its expiry hint leaves a uniquely named temporary
// file that nothing else replaces; the next process to open the store
// removes such files once they are old, and leaves young ones (another
// process may be about to rename them) alone.
func TestFileSweepsStaleTemps(t *testing.T) {
	s, _ := newTestFile(t)
	old := time.Now().Add(-2 * fileStaleTemp)
	stale := []string{fileMarkerName + ".tmp-123-456", fileHintName + ".tmp-123-7"}
	young := []string{fileMarkerName + ".tmp-124-456", fileHintName + ".tmp-124-7"}
	for _, name := range append(append([]string{}, stale...), young...) {
		if err := os.WriteFile(s.path(name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range stale {
		if err := os.Chtimes(s.path(name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	openTestFile(t, s.dir, Options{})
	for _, name := range stale {
		if _, err := os.Lstat(s.path(name)); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", name, err)
		}
	}
	for _, name := range young {
		if _, err := os.Lstat(s.path(name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestFileUnreadableRecordSkippedByReap: a record this user cannot read
// (made mode 000, or left owned by root by a `sudo cp -a` restore) is an
// error for the commands that read its key, as a damaged record is. The
// expiry walk every command's lazy reap runs must pass over it too: it
// made every command of the store, reads of other buckets included, exit 3
// once any key anywhere had expired.
func TestFileUnreadableRecordSkippedByReap(t *testing.T) {
	s, clock := newTestFile(t)
	now := fileT0.UnixMilli()
	mustUpdate(t, s, func(tx Tx) error {
		tx.Put(Entry{Bucket: "main", Key: "a", Value: []byte("1")})
		tx.Put(Entry{Bucket: "main", Key: "c", Value: []byte("2"), ExpiresAt: now + 10})
		return tx.Put(Entry{Bucket: "other", Key: "x", Value: []byte("3")})
	})
	path := filepath.Join(s.bucketDir("main"), "a")
	if os.Geteuid() == 0 {
		// root reads any file: one owned by another user is refused by
		// the trust rule instead.
		if err := os.Chown(path, 65534, -1); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	clock.Advance(time.Second)

	// What every command runs first.
	if _, err := LazyReap(context.Background(), s, LazyReapBatch); err != nil {
		t.Errorf("lazy reap: %v", err)
	}
	if v, ok := getValue(t, s, "other", "x"); !ok || v != "3" {
		t.Errorf("other/x = %q %v, want 3", v, ok)
	}
	mustUpdate(t, s, func(tx Tx) error { return tx.Put(Entry{Bucket: "other", Key: "y", Value: []byte("4")}) })
	var reaped int
	mustUpdate(t, s, func(tx Tx) error {
		var err error
		reaped, err = tx.Reap(0, nil)
		return err
	})
	if _, err := os.Lstat(filepath.Join(s.bucketDir("main"), "c")); !os.IsNotExist(err) {
		t.Errorf("expired main/c not reaped (reaped %d): %v", reaped, err)
	}
	// The key's own reads still fail, naming the file.
	err := s.View(context.Background(), func(tx Tx) error {
		_, _, err := tx.Get("main", "a")
		return err
	})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Get of the unreadable record: %v, want an error naming %s", err, path)
	}
}

// TestFileUnreadableBucketSkippedByReap: likewise a whole bucket folder
// this user may not read (chmod 000, another user's) stops only the
// commands of that bucket, not every write of the store once anything
// has expired.
func TestFileUnreadableBucketSkippedByReap(t *testing.T) {
	s, clock := newTestFile(t)
	now := fileT0.UnixMilli()
	mustUpdate(t, s, func(tx Tx) error {
		tx.Put(Entry{Bucket: "shut", Key: "a", Value: []byte("1")})
		tx.Put(Entry{Bucket: "main", Key: "c", Value: []byte("2"), ExpiresAt: now + 10})
		return tx.Put(Entry{Bucket: "other", Key: "x", Value: []byte("3")})
	})
	dir := s.bucketDir("shut")
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, 65534, -1); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Chmod(dir, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chown(dir, os.Geteuid(), -1); os.Chmod(dir, 0o700) })
	clock.Advance(time.Second)

	if _, err := LazyReap(context.Background(), s, LazyReapBatch); err != nil {
		t.Errorf("lazy reap: %v", err)
	}
	if err := s.Update(context.Background(), func(tx Tx) error {
		return tx.Put(Entry{Bucket: "other", Key: "y", Value: []byte("4")})
	}); err != nil {
		t.Errorf("write to another bucket: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(s.bucketDir("main"), "c")); !os.IsNotExist(err) {
		t.Errorf("expired main/c not reaped: %v", err)
	}
	// Listing it still fails (root may read the records themselves, each
	// its own, checked one by one).
	err := s.View(context.Background(), func(tx Tx) error {
		_, err := tx.Count("shut")
		return err
	})
	if err == nil {
		t.Error("Count of the unreadable bucket: no error")
	}
}
