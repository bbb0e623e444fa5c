//go:build unix

package store

import (
	"context"
	"os"
	"path/filepath"
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
