package lease

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
)

func open(t *testing.T) (store.Store, *ttl.Fake) {
	t.Helper()
	clock := ttl.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s, err := store.Open("memory:", store.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, clock
}

func update(t *testing.T, s store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// TestProtocol walks one lease through acquire, a full semaphore, renew,
// expiry, delete and release, checking that tokens only grow.
func TestProtocol(t *testing.T) {
	s, clock := open(t)
	r := Ref{Bucket: "main", Name: "job"}
	acquire := func(limit int) (Holder, bool) {
		var h Holder
		var ok bool
		update(t, s, func(tx store.Tx) (err error) {
			h, ok, _, err = Acquire(tx, r, NewOwner(), limit, 10_000)
			return err
		})
		return h, ok
	}
	a, ok := acquire(2)
	b, ok2 := acquire(2)
	if !ok || !ok2 || a.Token != 1 || b.Token != 2 {
		t.Fatalf("two holders of a 2-semaphore: %v %v %v %v", a, ok, b, ok2)
	}
	if _, ok := acquire(2); ok {
		t.Fatal("a third holder got into a 2-semaphore")
	}
	clock.Advance(8 * time.Second)
	update(t, s, func(tx store.Tx) error {
		if _, ok, err := Renew(tx, r, a, 10_000); !ok || err != nil {
			t.Errorf("renew a: %v %v", ok, err)
		}
		return nil
	})
	clock.Advance(5 * time.Second) // b's deadline passed, a's did not
	c, ok := acquire(2)
	if !ok || c.Token != 3 {
		t.Fatalf("after b expired: %v %v", c, ok)
	}
	update(t, s, func(tx store.Tx) error {
		if ok, _ := Release(tx, r, b); ok {
			t.Error("an expired holder released")
		}
		if ok, _ := Release(tx, r, Holder{Owner: NewOwner(), Token: a.Token}); ok {
			t.Error("a forged owner released")
		}
		st, _ := Status(tx, r)
		if len(st.Holders) != 2 || st.Holders[0].Token != 1 || st.Holders[1].Token != 3 {
			t.Errorf("status: %+v", st)
		}
		_, err := tx.Delete("main", "job")
		return err
	})
	d, ok := acquire(1)
	if !ok || d.Token != 4 {
		t.Fatalf("after delete: %v %v; the token must keep growing", d, ok)
	}
	update(t, s, func(tx store.Tx) error {
		if ok, err := Release(tx, r, d); !ok || err != nil {
			t.Errorf("release: %v %v", ok, err)
		}
		if _, ok, _ := tx.Get("main", "job"); ok {
			t.Error("the key outlived its last holder")
		}
		return nil
	})
}

func TestNotALease(t *testing.T) {
	s, _ := open(t)
	update(t, s, func(tx store.Tx) error {
		return tx.Put(store.Entry{Bucket: "main", Key: "v", Value: []byte("hello")})
	})
	err := s.Update(context.Background(), func(tx store.Tx) error {
		_, _, _, err := Acquire(tx, Ref{Bucket: "main", Name: "v"}, NewOwner(), 1, 1000)
		return err
	})
	if !errors.Is(err, ErrNotLease) {
		t.Fatalf("Acquire over a plain value: %v", err)
	}
}

func TestHandle(t *testing.T) {
	h := Holder{Owner: NewOwner(), Token: 42}
	got, err := ParseHandle(h.Handle())
	if err != nil || got.Owner != h.Owner || got.Token != 42 {
		t.Fatalf("ParseHandle(%q) = %v, %v", h.Handle(), got, err)
	}
	for _, bad := range []string{"", "42", "42.", "x.0123456789abcdef0123456789abcdef", "0.0123456789abcdef0123456789abcdef", "1.zz23456789abcdef0123456789abcdef"} {
		if _, err := ParseHandle(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("ParseHandle(%q) = %v", bad, err)
		}
	}
}

// A waiter queues through Turn for what is left of its wait, measured on
// the Locker's clock (here years from the system's): a time on that clock
// handed to the system's would be long past.
func TestAcquireQueuesForItsWait(t *testing.T) {
	s, clock := open(t)
	r := Ref{Bucket: "main", Name: "job"}
	update(t, s, func(tx store.Tx) error {
		_, _, _, err := Acquire(tx, r, NewOwner(), 1, time.Hour.Milliseconds())
		return err
	})
	var asked time.Duration
	l := &Locker{
		Update: func(fn func(store.Tx) error) error { return s.Update(context.Background(), fn) },
		View:   func(fn func(store.Tx) error) error { return s.View(context.Background(), fn) },
		Clock:  clock,
		Turn: func(ctx context.Context, r Ref, within time.Duration) (func(), error) {
			asked = within
			return nil, ErrNoTurn
		},
	}
	_, ok, err := l.Acquire(context.Background(), r, NewOwner(), 1, time.Minute, 5*time.Second)
	if err != nil || ok {
		t.Fatalf("Acquire of a held lease with no turn = %v, %v", ok, err)
	}
	if asked != 5*time.Second {
		t.Fatalf("Turn asked to wait %v, want the whole 5s wait", asked)
	}
}

// A store that stops answering a renewal (a network partition: a Redis
// connection that hangs rather than fails) loses the lease at its
// deadline, not whenever the store answers again: by then another holder
// may have it, and CMD must already be stopped.
func TestKeepLosesAtTheDeadlineWhenTheStoreHangs(t *testing.T) {
	s, err := store.Open("memory:", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := Ref{Bucket: "main", Name: "job"}
	const ttlD = 300 * time.Millisecond
	var h Holder
	update(t, s, func(tx store.Tx) error {
		var err error
		h, _, _, err = Acquire(tx, r, NewOwner(), 1, ttlD.Milliseconds())
		return err
	})
	hang := make(chan struct{})
	defer close(hang) // let the stuck renewal go at the end
	l := &Locker{
		Update: func(fn func(store.Tx) error) error { <-hang; return errors.New("store came back") },
		Clock:  ttl.System,
	}
	start := time.Now()
	lost, stop := l.Keep(r, h, ttlD)
	select {
	case err := <-lost:
		if !errors.Is(err, ErrLost) {
			t.Fatalf("lost with %v, want ErrLost", err)
		}
		if d := time.Until(time.UnixMilli(h.Deadline)); d > 0 {
			t.Fatalf("lost %v before the deadline", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still holding %v after the deadline of a hung store", time.Since(start))
	}
	stop()
}

// A store that answers every renewal with an error (a Redis server at its
// maxmemory refusing the write with OOM) loses the lease at its deadline
// with that error, not "did not answer": the last renewal raced the
// deadline and the message hid the refusal (found by the acl review).
func TestKeepLostSaysWhyRenewalsFailed(t *testing.T) {
	s, err := store.Open("memory:", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := Ref{Bucket: "main", Name: "job"}
	const ttlD = 300 * time.Millisecond
	var h Holder
	update(t, s, func(tx store.Tx) error {
		var err error
		h, _, _, err = Acquire(tx, r, NewOwner(), 1, ttlD.Milliseconds())
		return err
	})
	oom := errors.New("OOM command not allowed when used memory > 'maxmemory'")
	l := &Locker{
		// The refusal comes back at once, but the renewal that meets
		// the deadline may still be on its way: a slow answer.
		Update: func(fn func(store.Tx) error) error { time.Sleep(50 * time.Millisecond); return oom },
		Clock:  ttl.System,
	}
	lost, stop := l.Keep(r, h, ttlD)
	defer stop()
	select {
	case err := <-lost:
		if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "OOM command not allowed") {
			t.Fatalf("lost with %v, want ErrLost saying why the renewals failed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still holding after the deadline")
	}
}

// TestRenewKeepsItsTTL: a renewal that names no TTL renews for the one
// the lease last took, as consul and etcd do; it used lock's 30s default,
// so a script's 5m lease shrank at its first renewal. A lease an older
// livedict wrote (no ttl_ms) renews for DefaultTTL.
func TestRenewKeepsItsTTL(t *testing.T) {
	s, clock := open(t)
	r := Ref{Bucket: "main", Name: "job"}
	var h Holder
	update(t, s, func(tx store.Tx) (err error) {
		h, _, _, err = Acquire(tx, r, NewOwner(), 1, 300_000)
		return err
	})
	renew := func(ttlMs int64) int64 {
		var got Holder
		update(t, s, func(tx store.Tx) error {
			var ok bool
			var err error
			if got, ok, err = Renew(tx, r, h, ttlMs); !ok || err != nil {
				t.Fatalf("renew: %v %v", ok, err)
			}
			return nil
		})
		return got.Deadline - clock.Now().UnixMilli()
	}
	clock.Advance(time.Minute)
	if left := renew(0); left != 300_000 {
		t.Errorf("renewed without a TTL: %d ms left, want the 300000 it took", left)
	}
	if left := renew(120_000); left != 120_000 {
		t.Errorf("renewed for 2m: %d ms left", left)
	}
	if left := renew(0); left != 120_000 {
		t.Errorf("renewed again without a TTL: %d ms left, want the 120000 it last took", left)
	}
	update(t, s, func(tx store.Tx) error { // as an older livedict wrote it
		return tx.Put(store.Entry{Bucket: "main", Key: "job", Value: []byte(`{"holders":[{"owner":"` + h.Owner + `","token":1,"deadline":` +
			strconv.FormatInt(clock.Now().UnixMilli()+5000, 10) + `}]}`), ExpiresAt: clock.Now().UnixMilli() + 5000})
	})
	if left := renew(0); left != DefaultTTL.Milliseconds() {
		t.Errorf("an old lease renewed without a TTL: %d ms left, want %d", left, DefaultTTL.Milliseconds())
	}
}
