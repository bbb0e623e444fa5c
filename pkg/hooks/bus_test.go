package hooks

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/store"
)

// busStore is a shared store with an in-process event bus, standing in
// for what Redis pub/sub gives the watchers of a shared store.
type busStore struct {
	store.Store
	mu        sync.Mutex
	subs      map[chan []byte]bool
	published int
	asked     int
}

func (b *busStore) Shared() bool { return true }

func (b *busStore) Listening(context.Context) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.asked++
	return len(b.subs) > 0, nil
}

func (b *busStore) Publish(_ context.Context, msg []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published++
	for c := range b.subs {
		select {
		case c <- msg:
		default:
		}
	}
	return nil
}

func (b *busStore) Subscribe(ctx context.Context) (<-chan []byte, error) {
	c := make(chan []byte, 16)
	b.mu.Lock()
	b.subs[c] = true
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		delete(b.subs, c)
		b.mu.Unlock()
		close(c)
	}()
	return c, nil
}

// On a shared store, writers publish to the store's bus (so watchers on
// every host hear them) and only while someone listens.
func TestWatchersOfASharedStoreUseItsBus(t *testing.T) {
	mem, _ := memStore(t)
	b := &busStore{Store: mem, subs: map[chan []byte]bool{}}
	sess := &Session{Store: b, NoHooks: true}
	put := func(key string) {
		t.Helper()
		err := sess.Update(context.Background(), func(tx *Tx) error {
			return tx.Put(store.Entry{Bucket: "main", Key: key, Value: []byte("v")})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	put("before")
	if b.published != 0 || b.asked == 0 {
		t.Fatalf("no watcher: published %d, asked %d", b.published, b.asked)
	}
	w, err := WatchStore(b, store.Info{})
	if err != nil {
		t.Fatal(err)
	}
	put("during")
	select {
	case line := <-w.C:
		if !strings.Contains(string(line), `"key":"during"`) || !strings.Contains(string(line), `"event":"set"`) {
			t.Fatalf("event line %s", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher heard nothing")
	}
	w.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b.mu.Lock()
		n := len(b.subs)
		b.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Close left the subscription")
		}
	}
	n := b.published
	put("after")
	if b.published != n {
		t.Fatal("published with no watcher left")
	}
}
