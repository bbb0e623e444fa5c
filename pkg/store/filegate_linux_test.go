package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestFileReadersQueueBehindAWaitingWriter: while a reader holds the store
// and a writer waits for it, a new reader waits too, behind the writer,
// instead of joining the first reader: a stream of overlapping readers
// could otherwise keep the writer out for ever (flock alone lets them in).
func TestFileReadersQueueBehindAWaitingWriter(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	first := openTestFile(t, dir, Options{})
	writer := openTestFile(t, dir, Options{BusyTimeout: time.Minute})
	late := openTestFile(t, dir, Options{BusyTimeout: 100 * time.Millisecond})

	reading, release := make(chan struct{}), make(chan struct{})
	readDone := make(chan error)
	go func() {
		readDone <- first.View(context.Background(), func(Tx) error {
			close(reading)
			<-release
			return nil
		})
	}()
	<-reading
	writeDone := make(chan error)
	go func() {
		writeDone <- writer.Update(context.Background(), func(tx Tx) error {
			return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("v")})
		})
	}()
	waitForGate(t, filepath.Join(dir, fileLockName))

	// The writer holds the gate and waits for the first reader: a new
	// reader must not get in before it.
	start := time.Now()
	if err := late.View(context.Background(), func(Tx) error { return nil }); !errors.Is(err, ErrBusy) {
		t.Fatalf("a reader got past a waiting writer (err %v after %v)", err, time.Since(start))
	}
	close(release)
	if err := <-readDone; err != nil {
		t.Fatal(err)
	}
	if err := <-writeDone; err != nil {
		t.Fatal(err)
	}
	if v, _ := getValue(t, late, "main", "k"); v != "v" {
		t.Errorf("after the writer: %q", v)
	}
}

// waitForGate returns once some open file description holds the
// turnstile lock of the lock file at path.
func waitForGate(t *testing.T, path string) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(30 * time.Second)
	for {
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 1}
		if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &lk); err != nil {
			t.Fatal(err)
		}
		if lk.Type != unix.F_UNLCK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer never reached the gate")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFileLockFileRemoved: .lock is unlinked (an aging /tmp cleaner, a
// user removing a "stale lock") while one process holds it and another
// waits on it, and a third then locks the new .lock. When the first lets
// go, the waiter must not take the lock of the unlinked file and write
// beside the third: it locks the file at the path now.
func TestFileLockFileRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s := openTestFile(t, dir, Options{BusyTimeout: time.Minute})
	path := filepath.Join(dir, fileLockName)
	a, err := s.lock(context.Background(), unix.LOCK_EX)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		f   interface{ Close() error }
		ino uint64
		err error
	}
	got := make(chan result, 1)
	go func() {
		f, err := s.lock(context.Background(), unix.LOCK_EX)
		var st unix.Stat_t
		if err == nil {
			unix.Fstat(int(f.Fd()), &st)
		}
		got <- result{f, st.Ino, err}
	}()
	waitForGate(t, path) // the waiter has the old .lock open
	if err := unix.Unlink(path); err != nil {
		t.Fatal(err)
	}
	c, err := s.lock(context.Background(), unix.LOCK_EX)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	select {
	case r := <-got:
		if r.err == nil {
			r.f.Close()
		}
		t.Fatalf("a waiter got the lock (%v) while another process held the new .lock", r.err)
	case <-time.After(time.Second):
	}
	c.Close()
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.f.Close()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil || st.Ino != r.ino {
		t.Errorf("the waiter holds inode %d, .lock is %d (%v)", r.ino, st.Ino, err)
	}
}
