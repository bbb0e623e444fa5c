package wake

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/seal"
	"github.com/livedict/livedict/pkg/store"
)

// TestWakesOnCommit: a waiter on a real store wakes when another handle
// (as another process would) commits to the bucket, on both backends,
// including a file-store bucket whose folder does not exist yet; and so
// does one on the store as every command opens it, inside encryption's
// wrapper (once, that wrapper hid the store's folders, and lock --wait and
// wait slept until their once-a-second re-check).
func TestWakesOnCommit(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("inotify is Linux-only; elsewhere Waker only re-checks on a timer")
	}
	for _, sealed := range []bool{false, true} {
		for _, url := range []string{"sqlite:" + filepath.Join(t.TempDir(), "s.db"), "file:" + filepath.Join(t.TempDir(), "f")} {
			name := url[:4]
			if sealed {
				name += "+sealed"
			}
			t.Run(name, func(t *testing.T) { testWakesOnCommit(t, url, sealed) })
		}
	}
}

func testWakesOnCommit(t *testing.T, url string, sealed bool) {
	s, err := store.Open(url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if sealed {
		s = seal.Wrap(s, &seal.FileKeys{IdentityFile: filepath.Join(t.TempDir(), "identity.txt")})
	}
	writer, err := store.Open(url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	wk := ForStore(nil, s, "b")
	defer wk.Close()
	for i := 0; i < 3; i++ { // again after the bucket folder appeared
		done := make(chan error, 1)
		go func() {
			// A new value each round: rewriting identical bytes
			// may legitimately write nothing.
			done <- writer.Update(context.Background(), func(tx store.Tx) error {
				return tx.Put(store.Entry{Bucket: "b", Key: "k", Value: []byte{byte(i)}})
			})
		}()
		// A long deadline: only an event can end this Wait early
		// with true (the fallback ends it with false).
		woken := false
		for tries := 0; tries < 30 && !woken; tries++ {
			if woken, err = wk.Wait(context.Background(), time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !woken {
			t.Fatalf("round %d: no wake-up after a commit", i)
		}
	}
}

// TestDeadlineAndCancel: Wait returns false at the deadline, and the
// context's error when cancelled, without any event.
func TestDeadlineAndCancel(t *testing.T) {
	wk := New(nil, store.Watch{Dir: filepath.Join(t.TempDir(), "nothing")})
	defer wk.Close()
	if woken, err := wk.Wait(context.Background(), time.Now().Add(10*time.Millisecond)); woken || err != nil {
		t.Fatalf("Wait past deadline = %v, %v; want false, nil", woken, err)
	}
	if woken, err := wk.Wait(context.Background(), time.Now().Add(-time.Second)); woken || err != nil {
		t.Fatalf("Wait with a past deadline = %v, %v", woken, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := wk.Wait(ctx, time.Time{}); err != context.Canceled {
		t.Fatalf("cancelled Wait: %v", err)
	}
}

// feedStore is a store with a change feed, as a shared (Redis) store has.
type feedStore struct {
	store.Store
	ch      chan struct{}
	stopped chan struct{}
}

func (f *feedStore) Changes(ctx context.Context) (<-chan struct{}, error) {
	go func() { <-ctx.Done(); close(f.stopped) }()
	return f.ch, nil
}

// TestWakesOnChangeFeed: a store's change feed wakes a waiter (no folder
// changes), a change sent between two Waits is not lost, and Close stops
// the feed.
func TestWakesOnChangeFeed(t *testing.T) {
	mem, err := store.Open("memory:", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fs := &feedStore{Store: mem, ch: make(chan struct{}, 1), stopped: make(chan struct{})}
	wk := ForStore(nil, fs, "b")
	go func() { time.Sleep(10 * time.Millisecond); fs.ch <- struct{}{} }()
	if woken, err := wk.Wait(context.Background(), time.Now().Add(time.Hour)); err != nil || !woken {
		t.Fatalf("Wait = %v, %v; want woken by the feed", woken, err)
	}
	fs.ch <- struct{}{} // arrives while nobody waits
	if woken, _ := wk.Wait(context.Background(), time.Now().Add(-time.Second)); !woken {
		t.Fatal("a change sent before Wait was lost")
	}
	if woken, _ := wk.Wait(context.Background(), time.Now().Add(20*time.Millisecond)); woken {
		t.Fatal("woken with no change")
	}
	wk.Close()
	select {
	case <-fs.stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Close left the feed running")
	}
}

// TestWakesAfterFolderMoved: a watched folder moved away (a file store's
// dropped bucket goes to its trash and is deleted only later) is watched
// again at its path, so a commit to the bucket made anew wakes the waiter.
func TestWakesAfterFolderMoved(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("inotify is Linux-only; elsewhere Waker only re-checks on a timer")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "b")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	wk := New(nil, store.Watch{Dir: path})
	defer wk.Close()
	if err := os.Rename(path, filepath.Join(dir, "trash")); err != nil {
		t.Fatal(err)
	}
	if woken, err := wk.Wait(context.Background(), time.Now().Add(time.Minute)); err != nil || !woken {
		t.Fatalf("move: woken %v, %v", woken, err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	wk.arm()
	if err := os.WriteFile(filepath.Join(path, "k"), []byte("v"), 0o600); err != nil {
		t.Fatal(err)
	}
	woken := false
	for tries := 0; tries < 3 && !woken; tries++ {
		var err error
		if woken, err = wk.Wait(context.Background(), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if !woken {
		t.Fatal("no wake-up for a write into the folder made anew at the path")
	}
}
