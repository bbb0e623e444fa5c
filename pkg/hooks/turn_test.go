package hooks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// WaitTurn queues: a second waiter gets no turn while the first holds it
// (ErrLocked at its deadline, or when its context ends), and gets it as
// soon as the first lets go.
func TestWaitTurnQueues(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s.db.d")
	name := TurnName("main", "job")
	first, err := WaitTurn(context.Background(), dir, name, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WaitTurn(context.Background(), dir, name, 50*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("second waiter while the first holds: %v, want ErrLocked", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := WaitTurn(ctx, dir, name, time.Minute); !errors.Is(err, ErrLocked) {
		t.Fatalf("cancelled waiter: %v, want ErrLocked", err)
	}
	// Another lease's queue is another file.
	other, err := WaitTurn(context.Background(), dir, TurnName("main", "other"), time.Second)
	if err != nil {
		t.Fatalf("another name's turn: %v", err)
	}
	other.Release()
	got := make(chan error, 1)
	go func() {
		second, err := WaitTurn(context.Background(), dir, name, time.Minute)
		if err == nil {
			second.Release()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	first.Release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiter after the release: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the waiter did not get its turn after the release")
	}
}

// The queue's file is opened as every lock in the state dir is: one
// planted as a symlink (to a file of ours elsewhere) is refused, not
// followed.
func TestWaitTurnRefusesSymlink(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s.db.d")
	if err := OpenStateDir(dir); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(target, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	name := TurnName("main", "job")
	if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitTurn(context.Background(), dir, name, time.Second); err == nil {
		t.Fatal("WaitTurn followed a symlink planted as its file")
	}
}
