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
