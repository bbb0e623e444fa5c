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
