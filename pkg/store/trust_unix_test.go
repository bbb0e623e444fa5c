//go:build unix

package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// SQLite's side files that fail the trust rule are refused before SQLite
// can use them, at open and before later transactions.
func TestSQLiteSideFilesRefused(t *testing.T) {
	ctx := context.Background()
	for _, suffix := range []string{"-journal", "-wal", "-shm"} {
		for _, c := range []struct {
			name  string
			plant func(path string) error
		}{
			{"world-writable", func(p string) error { return writeMode(p, 0o666) }},
			{"group-writable", func(p string) error { return writeMode(p, 0o620) }},
			{"symlink", func(p string) error { return os.Symlink("/etc/passwd", p) }},
			{"fifo", func(p string) error { return unix.Mkfifo(p, 0o600) }},
		} {
			t.Run(suffix+"/"+c.name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "s.db")
				s, err := Open(path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if err := s.Update(ctx, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("v")}) }); err != nil {
					t.Fatal(err)
				}
				if err := c.plant(path + suffix); err != nil {
					t.Fatal(err)
				}
				err = s.View(ctx, func(Tx) error { return nil })
				if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), path+suffix) {
					t.Fatalf("View with a planted %s: %v", suffix, err)
				}
				if _, err := Open(path, Options{}); !errors.Is(err, ErrUntrusted) {
					t.Fatalf("Open with a planted %s: %v", suffix, err)
				}
			})
		}
	}
}

func writeMode(p string, mode os.FileMode) error {
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

// Many processes' worth of openers creating one new store at once: every
// one succeeds (none sees an empty file and refuses it), and no temporary
// file is left.
func TestSQLiteConcurrentCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(path, Options{})
			if err == nil {
				err = s.Update(context.Background(), func(Tx) error { return nil })
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	names, _ := os.ReadDir(dir)
	for _, n := range names {
		if n.Name() != "s.db" {
			t.Errorf("left behind: %s", n.Name())
		}
	}
}

// The same in a folder every user can write, sticky like /tmp, where a
// store file with two links is refused: the new store was linked at its
// name while still linked at its temporary one, and an opener then (the
// first write of each of several jobs on a new --store /tmp/job.db)
// failed with "has other hard links (2)". Readers and writers, rounds of
// them, so the moment is met.
func TestSQLiteConcurrentCreateInPublicFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 20; round++ {
		path := filepath.Join(dir, fmt.Sprintf("s%d.db", round))
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := Open(path, Options{})
				if err == nil {
					if i%2 == 0 {
						err = s.Update(context.Background(), func(Tx) error { return nil })
					} else {
						err = s.View(context.Background(), func(Tx) error { return nil })
					}
					s.Close()
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	names, _ := os.ReadDir(dir)
	for _, n := range names {
		if strings.Contains(n.Name(), ".tmp-") {
			t.Errorf("left behind: %s", n.Name())
		}
	}
}

// A file-store record or folder that fails the rule is refused.
func TestFileStoreUntrustedRecord(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "fs")
	s, err := Open("file:"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(k string) error {
		return s.Update(ctx, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: k, Value: []byte("v")}) })
	}
	if err := put("k"); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(dir, "b", "main", "k")
	os.Chmod(rec, 0o666)
	err = s.View(ctx, func(tx Tx) error { _, _, err := tx.Get("main", "k"); return err })
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), rec) {
		t.Fatalf("Get of a world-writable record: %v", err)
	}
	os.Chmod(rec, 0o600)
	os.Chmod(filepath.Dir(rec), 0o777)
	err = s.View(ctx, func(tx Tx) error { return tx.Scan("main", "", false, func(Entry) error { return nil }) })
	if !errors.Is(err, ErrUntrusted) {
		t.Fatalf("Scan of a world-writable bucket folder: %v", err)
	}
	if err := put("k2"); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("Put into a world-writable bucket folder: %v", err)
	}
	os.Chmod(filepath.Dir(rec), 0o700)
	os.Chmod(filepath.Join(dir, "b"), 0o777)
	s2, err := Open("file:"+dir, Options{})
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), filepath.Join(dir, "b")) {
		t.Fatalf("Open with a world-writable b/: %v", err)
	}
	if s2 != nil {
		s2.Close()
	}
}

// hotJournal builds a SQLite rollback journal that, rolled back, makes a
// database of db's pages: what another user plants as STORE-journal.
func hotJournal(db []byte) []byte {
	pageSize := int(binary.BigEndian.Uint16(db[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	n := len(db) / pageSize
	const sector, nonce = 512, 0x1badcafe
	j := make([]byte, sector)
	copy(j, []byte{0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7})
	binary.BigEndian.PutUint32(j[8:], uint32(n))
	binary.BigEndian.PutUint32(j[12:], nonce)
	binary.BigEndian.PutUint32(j[16:], uint32(n))
	binary.BigEndian.PutUint32(j[20:], sector)
	binary.BigEndian.PutUint32(j[24:], uint32(pageSize))
	for p := 0; p < n; p++ {
		page := db[p*pageSize : (p+1)*pageSize]
		j = binary.BigEndian.AppendUint32(j, uint32(p+1))
		j = append(j, page...)
		sum := uint32(nonce)
		for i := pageSize - 200; i > 0; i -= 200 {
			sum += uint32(page[i])
		}
		j = binary.BigEndian.AppendUint32(j, sum)
	}
	return j
}

// The side files are checked by name before each transaction, and SQLite
// opens the journal by name a moment later: in a sticky /tmp another user
// who plants a hot journal in between (flapping it in a loop wins within
// a few dozen commands) had it rolled back into the store, their data
// replacing the owner's. The descriptor SQLite opens is checked itself,
// so a journal that appears after the check is refused all the same.
func TestSQLiteJournalPlantedAfterCheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	theirs := filepath.Join(dir, "theirs.db")
	o, err := Open(theirs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Update(ctx, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("theirs")}) }); err != nil {
		t.Fatal(err)
	}
	o.Close()
	db, err := os.ReadFile(theirs)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "s.db")
	for _, write := range []bool{false, true} {
		os.Remove(path)
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Update(ctx, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("mine")}) }); err != nil {
			t.Fatal(err)
		}
		planted := false
		s.(*sqliteStore).testAfterSideCheck = func() {
			if !planted {
				planted = true
				// Mode 0666: what another user's file would be to a
				// non-root owner's SQLite, which must open it read-write.
				if err := writeMode(path+"-journal", 0o666); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path+"-journal", hotJournal(db), 0o666); err != nil {
					t.Fatal(err)
				}
			}
		}
		var got []byte
		op := func(tx Tx) error {
			e, _, err := tx.Get("main", "k")
			got = e.Value
			return err
		}
		if write {
			err = s.Update(ctx, op)
		} else {
			err = s.View(ctx, op)
		}
		if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), path+"-journal") {
			t.Errorf("write %v: a journal planted after the check: got %q, err %v; want ErrUntrusted naming the journal", write, got, err)
		}
		s.Close()
		os.Remove(path + "-journal")
		s, err = Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.View(ctx, op); err != nil || string(got) != "mine" {
			t.Errorf("write %v: the store was replaced by the planted journal: k = %q, %v", write, got, err)
		}
		s.Close()
	}
}

// The store file is checked by name and SQLite opens it by name after:
// where another user can rename in its folder (one every user can write,
// not sticky), a file of theirs swapped in between was opened by SQLite
// and read as the store. The descriptor SQLite opens is checked itself.
func TestSQLiteStoreSwappedAfterCheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	theirs := filepath.Join(dir, "theirs.db")
	for _, p := range []string{path, theirs} {
		s, err := Open(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Update(ctx, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte(filepath.Base(p))}) }); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	// Writable by every user: what another user's file is to the rule.
	if err := os.Chmod(theirs, 0o666); err != nil {
		t.Fatal(err)
	}
	testBeforeConnect = func(string) { os.Rename(theirs, path) }
	defer func() { testBeforeConnect = nil }()
	s, err := Open(path, Options{})
	if err == nil {
		var got []byte
		err = s.View(ctx, func(tx Tx) error {
			e, _, err := tx.Get("main", "k")
			got = e.Value
			return err
		})
		s.Close()
		t.Fatalf("a store swapped after its check was used: k = %q, %v", got, err)
	}
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of a store swapped after its check: %v; want ErrUntrusted naming it", err)
	}
}

// A new store whose folder is not there yet, in a sticky /tmp: another
// user who makes that folder a symlink (to one of the owner's own folders)
// after the path was resolved and before it is made had the new store
// made, or an existing one used, wherever the link points.
func TestSQLiteCreateThroughPlantedFolderLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a symlink another user owns")
	}
	ctx := context.Background()
	dir := t.TempDir()
	private := filepath.Join(dir, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "work", "s.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	testBeforeMkdir = func(string) {
		link := filepath.Join(dir, "work")
		if err := os.Symlink(private, link); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(link, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { testBeforeMkdir = nil }()
	err = s.Update(ctx, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("v")}) })
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), filepath.Join(dir, "work")) {
		t.Errorf("a store made through another user's symlink: %v; want ErrUntrusted naming it", err)
	}
	if ents, _ := os.ReadDir(private); len(ents) != 0 {
		t.Errorf("files were made in the folder the link points to: %v", ents)
	}
}

// The file store's TestSQLiteCreateThroughPlantedFolderLink.
func TestFileCreateThroughPlantedFolderLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a symlink another user owns")
	}
	dir := t.TempDir()
	private := filepath.Join(dir, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := openFile(filepath.Join(dir, "work", "fs"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.(*fileStore).testBeforeMkdir = func() {
		link := filepath.Join(dir, "work")
		if err := os.Symlink(private, link); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(link, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	err = st.Update(context.Background(), func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("v")}) })
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), filepath.Join(dir, "work")) {
		t.Errorf("a store made through another user's symlink: %v; want ErrUntrusted naming it", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(private, "fs")); len(ents) != 0 {
		t.Errorf("files were made in the folder the link points to: %v", ents)
	}
}

// Where the kernel lets any user hard-link any file they can reach
// (fs.protected_hardlinks=0), another user links one of the owner's files
// as STORE-journal beside a store in a sticky /tmp: it belongs to the
// owner and nobody else can write it, so the trust rule passed it, and
// SQLite wrote its journal into it (or rolled it back and removed it),
// destroying the owner's file. A side file with other links is refused.
func TestSQLiteHardLinkedJournal(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	put := func() error {
		n++
		return s.Update(ctx, func(tx Tx) error {
			return tx.Put(Entry{Bucket: "main", Key: "k", Value: bytes.Repeat([]byte{'v'}, n*5000)})
		})
	}
	if err := put(); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(dir, "victim")
	want := []byte("\x00the owner's precious file (a first byte of 0, as in many binary formats)\n")
	if err := os.WriteFile(victim, want, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(victim, path+"-journal"); err != nil {
		t.Fatal(err)
	}
	err = put()
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), path+"-journal") {
		t.Errorf("a write beside a hard-linked journal: %v; want ErrUntrusted naming it", err)
	}
	if got, _ := os.ReadFile(victim); !bytes.Equal(got, want) {
		t.Errorf("the file linked as the journal was changed: now %d bytes, starting %q", len(got), got[:min(len(got), 16)])
	}
}

// evalTrustedSymlinks resolves what filepath.EvalSymlinks resolves, for
// links of the user's own: absolute and relative, chained, with "..", to
// folders and to files; a loop is an error, and a missing tail is kept.
func TestEvalTrustedSymlinks(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a/b/c", "x"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "a/b/c/s.db"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"x/abs":   filepath.Join(dir, "a/b"),
		"x/rel":   "../a/b/c",
		"x/chain": "rel",
		"x/up":    "../a/b/c/..",
		"x/file":  "chain/s.db",
		"x/loop1": "loop2",
		"x/loop2": "loop1",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"x/abs/c/s.db", "x/rel/s.db", "x/chain/s.db", "x/up/c/s.db", "x/file", "a/./b//c/s.db"} {
		want, err := filepath.EvalSymlinks(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		got, err := evalTrustedSymlinks(filepath.Join(dir, p))
		if err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", p, got, err, want)
		}
	}
	if got, err := evalTrustedSymlinks(filepath.Join(dir, "x/rel/new/s.db")); err != nil || got != filepath.Join(dir, "a/b/c/new/s.db") {
		t.Errorf("a missing tail: %q, %v", got, err)
	}
	if _, err := evalTrustedSymlinks(filepath.Join(dir, "x/loop1/s.db")); !errors.Is(err, unix.ELOOP) {
		t.Errorf("a loop: %v", err)
	}
}

// In a folder others can write, a store file with other hard links is
// refused, unless they are its creator's temporary names (create links
// PATH.tmp-PID-N into place and then removes it): a process that lost the
// race to create the store opens it in between and must not refuse it.
// A link under any other name, or one more beside the creator's, is.
func TestSQLiteStoreLinksInOpenFolder(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	made := filepath.Join(t.TempDir(), "made.db")
	s, err := Open(made, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx Tx) error { return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("v")}) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, "job.db")
	tmp := path + ".tmp-123-456"
	if err := os.Rename(made, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(tmp, path); err != nil {
		t.Fatal(err)
	}
	get := func() error {
		s, err := Open(path, Options{})
		if err != nil {
			return err
		}
		defer s.Close()
		return s.View(ctx, func(tx Tx) error {
			_, ok, err := tx.Get("main", "k")
			if err == nil && !ok {
				err = errors.New("k not found")
			}
			return err
		})
	}
	if err := get(); err != nil {
		t.Fatalf("open between the creator's link and its removal: %v", err)
	}
	other := filepath.Join(dir, "elsewhere.db")
	if err := os.Link(tmp, other); err != nil {
		t.Fatal(err)
	}
	if err := get(); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("a store with a link beside the creator's: %v; want ErrUntrusted", err)
	}
	os.Remove(tmp)
	if err := get(); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "other hard links (2)") {
		t.Fatalf("a store linked under another name: %v; want ErrUntrusted", err)
	}
}
