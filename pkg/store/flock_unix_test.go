//go:build unix

package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FlockWait waits for a held lock, gives up at its timeout, and a wait it
// gave up on leaves nothing held once its holder lets go: the abandoned
// call ran on a descriptor of its own, closed with it.
func TestFlockWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	open := func() int {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	holder := open()
	if err := FlockWait(context.Background(), holder, unix.LOCK_EX, time.Second); err != nil {
		t.Fatal(err)
	}
	waiter := open()
	if err := FlockWait(context.Background(), waiter, unix.LOCK_EX, 50*time.Millisecond); !IsLockTimeout(err) {
		t.Fatalf("wait on a held lock: %v, want the timeout", err)
	}
	unix.Close(waiter) // as callers do; the abandoned call still waits
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := FlockWait(ctx, open(), unix.LOCK_EX, time.Minute); err != context.Canceled {
		t.Fatalf("cancelled wait: %v", err)
	}
	got := make(chan error, 1)
	next := open()
	go func() { got <- FlockWait(context.Background(), next, unix.LOCK_EX, time.Minute) }()
	time.Sleep(20 * time.Millisecond)
	unix.Close(holder)
	if err := <-got; err != nil {
		t.Fatalf("waiter after the release: %v", err)
	}
	unix.Close(next)
	// Whatever the abandoned call got, it let go: a fresh descriptor
	// takes the lock soon.
	last := open()
	defer unix.Close(last)
	if err := FlockWait(context.Background(), last, unix.LOCK_EX, 30*time.Second); err != nil {
		t.Fatalf("lock after every holder closed: %v", err)
	}
}
