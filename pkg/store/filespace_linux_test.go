package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// mountTiny mounts a tmpfs with room for only a few inodes, or skips the
// test where that is not allowed (not root, no tmpfs).
func mountTiny(t *testing.T, inodes int) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=4m,nr_inodes=%d,mode=0700", inodes)); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// TestSQLiteNoInodes: a SQLite store on a filesystem with no inode left
// cannot create its -journal, which SQLite reports as "unable to open";
// that is a full disk (ENOSPC), not a permission problem to check.
func TestSQLiteNoInodes(t *testing.T) {
	dir := mountTiny(t, 3) // the root folder, the store, one more
	s, err := Open("sqlite:"+filepath.Join(dir, "s.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(v string) error {
		return s.Update(context.Background(), func(tx Tx) error {
			return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte(v)})
		})
	}
	if err := put("1"); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ { // use up the inodes
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint("fill", i)), nil, 0o600); err != nil {
			break
		}
	}
	err = put("2")
	if !errors.Is(err, syscall.ENOSPC) || errors.Is(err, fs.ErrPermission) {
		t.Errorf("write with no inode left: %v", err)
	}
}

// TestFileNoInodes: a journaled commit that needs more files than the
// filesystem has inodes for is refused before its commit point, with
// nothing written, so the store stays usable; one that only replaces
// files still commits.
func TestFileNoInodes(t *testing.T) {
	dir := mountTiny(t, 16)
	s := openTestFile(t, filepath.Join(dir, "store"), Options{})
	putAll := func(prefix string, n int) error {
		return s.Update(context.Background(), func(tx Tx) error {
			for i := 0; i < n; i++ {
				if err := tx.Put(Entry{Bucket: "main", Key: fmt.Sprint(prefix, i), Value: []byte(prefix)}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := putAll("k", 4); err != nil {
		t.Fatal(err)
	}
	err := putAll("new", 20)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("commit of more files than inodes: %v", err)
	}
	for _, name := range []string{fileJournalName, fileJournalName + ".tmp"} {
		if _, err := os.Lstat(filepath.Join(s.dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", name, err)
		}
	}
	if v, ok := getValue(t, s, "main", "k3"); !ok || v != "k" {
		t.Errorf("k3 = %q, %v after a refused commit", v, ok)
	}
	for i := 0; ; i++ { // use up the inodes but the journal's
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint("fill", i)), nil, 0o600); err != nil {
			os.Remove(filepath.Join(dir, fmt.Sprint("fill", i-1)))
			break
		}
	}
	if err := putAll("k", 4); err != nil {
		t.Errorf("commit that replaces files, no inode left: %v", err)
	}
}

// fillLeaving fills dir's filesystem with empty files, then removes
// enough of them to leave exactly leave inodes free.
func fillLeaving(t *testing.T, dir string, leave int) {
	t.Helper()
	i := 0
	for ; ; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint("fill", i)), nil, 0o600); err != nil {
			break
		}
	}
	if i < leave {
		t.Fatalf("only %d files fitted", i)
	}
	for j := 1; j <= leave; j++ {
		os.Remove(filepath.Join(dir, fmt.Sprint("fill", i-j)))
	}
}

// A commit into a new bucket needs an inode for the bucket's folder as
// well as one per key: with inodes for the journal and the keys but not
// the folder, it is refused before its commit point, and the store still
// reads (it used to fail half applied and leave a journal that every
// later command failed to replay).
func TestFileNewBucketFolderCounted(t *testing.T) {
	dir := mountTiny(t, 32)
	s := openTestFile(t, filepath.Join(dir, "store"), Options{})
	mustUpdate(t, s, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "a", Value: []byte("v")}) })
	fillLeaving(t, dir, 3) // the journal and two keys, no folder
	err := s.Update(context.Background(), func(tx Tx) error {
		tx.Put(Entry{Bucket: "newb", Key: "x", Value: []byte("1")})
		return tx.Put(Entry{Bucket: "newb", Key: "y", Value: []byte("2")})
	})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("commit into a new bucket with no inode for its folder: %v, want ENOSPC", err)
	}
	if _, err := os.Lstat(filepath.Join(s.dir, fileJournalName)); err == nil {
		t.Fatal("a refused commit left its journal")
	}
	if e, ok := get(t, s, "main", "a"); !ok || string(e.Value) != "v" {
		t.Fatalf("read after the refusal: %q %v", e.Value, ok)
	}
}

// The first drop of a store makes DIR/.trash before its commit point: on
// a filesystem with an inode for the journal only, it is refused with
// nothing written and the store still reads and writes.
func TestFileDropTrashMadeBeforeCommit(t *testing.T) {
	dir := mountTiny(t, 32)
	s := openTestFile(t, filepath.Join(dir, "store"), Options{})
	mustUpdate(t, s, func(tx Tx) error {
		tx.Put(Entry{Bucket: "main", Key: "a", Value: []byte("v")})
		return tx.Put(Entry{Bucket: "gone", Key: "a", Value: []byte("v")})
	})
	fillLeaving(t, dir, 1) // the journal only
	err := s.Update(context.Background(), func(tx Tx) error { _, err := tx.DropBucket("gone"); return err })
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("drop with no inode for the trash: %v, want ENOSPC", err)
	}
	if e, ok := get(t, s, "gone", "a"); !ok || string(e.Value) != "v" {
		t.Fatalf("the refused drop dropped: %q %v", e.Value, ok)
	}
	if err := s.Update(context.Background(), func(tx Tx) error { _, err := tx.Delete("main", "a"); return err }); err != nil {
		t.Fatalf("a later delete: %v", err)
	}
}
