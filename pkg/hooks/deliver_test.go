package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/sandbox"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
)

// call is one run the fake runner saw.
type call struct {
	hook  int64
	event string
	key   string
	value string
	env   map[string]string
	spec  sandbox.Spec
	at    time.Time
}

// fakeRunner records runs and checks delivery's promises as they happen:
// one hook's events for one key never run at once, and never exceed the
// concurrency bound.
type fakeRunner struct {
	t *testing.T
	// result decides a run's outcome; nil means success.
	result func(c call, attempt int) (sandbox.Result, error)
	// delay is how long a run takes (a random part of it when jitter).
	delay  time.Duration
	jitter bool
	// started, when set, receives each call as it starts.
	started chan call
	// gate, when set, is waited on by every run.
	gate chan struct{}

	mu       sync.Mutex
	calls    []call
	attempts map[string]int // hook/key/value -> runs so far
	running  map[string]bool
	cur, max int
	problems []string
}

func newFakeRunner(t *testing.T) *fakeRunner {
	return &fakeRunner{t: t, attempts: map[string]int{}, running: map[string]bool{}}
}

func (f *fakeRunner) Run(ctx context.Context, s sandbox.Spec) (sandbox.Result, error) {
	var p payload
	if err := json.Unmarshal(s.Stdin, &p); err != nil {
		f.fail("bad payload %q: %v", s.Stdin, err)
		return sandbox.Result{}, err
	}
	c := call{hook: p.HookID, event: p.Event, env: s.Env, spec: s, at: time.Now()}
	if p.Key != nil {
		c.key = *p.Key
	}
	if p.Value != nil {
		c.value = *p.Value
	}
	order := fmt.Sprintf("%d/%s/%s", c.hook, p.Bucket, c.key)
	f.mu.Lock()
	if f.running[order] {
		f.problems = append(f.problems, "two runs at once for "+order)
	}
	f.running[order] = true
	f.cur++
	f.max = max(f.max, f.cur)
	f.calls = append(f.calls, c)
	id := order + "/" + c.value
	f.attempts[id]++
	attempt := f.attempts[id]
	f.mu.Unlock()

	if f.started != nil {
		f.started <- c
	}
	if f.gate != nil {
		<-f.gate
	}
	if d := f.delay; d > 0 {
		if f.jitter {
			d = time.Duration(rand.Int63n(int64(d)))
		}
		time.Sleep(d)
	}
	res, err := sandbox.Result{Duration: time.Millisecond}, error(nil)
	if f.result != nil {
		res, err = f.result(c, attempt)
	}

	f.mu.Lock()
	f.cur--
	delete(f.running, order)
	f.mu.Unlock()
	return res, err
}

func (f *fakeRunner) fail(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
}

func (f *fakeRunner) check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.problems {
		t.Error(p)
	}
}

func (f *fakeRunner) snapshot() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// recvCall waits for a run to start.
func recvCall(t *testing.T, ch <-chan call, what string) call {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		t.Fatalf("%s never started", what)
	}
	panic("unreachable")
}

func newDeliverer(t *testing.T, s store.Store, f *fakeRunner) *Deliverer {
	return &Deliverer{
		Store: s, Run: f.Run, Concurrency: 4, Retries: 3,
		Backoff: 2 * time.Millisecond, WorkDir: t.TempDir(),
	}
}

// set records set events as a command would: one transaction per call.
func set(t *testing.T, s store.Store, bucket, key, value string) []uint64 {
	t.Helper()
	ht := mustHookUpdate(t, s, func(tx *Tx) error {
		return tx.Put(store.Entry{Bucket: bucket, Key: key, Value: []byte(value)})
	})
	return ht.Events
}

func runs(t *testing.T, s store.Store, n int, failed bool) []Run {
	t.Helper()
	var rs []Run
	view(t, s, func(tx store.Tx) error {
		var err error
		rs, err = Log(tx, n, failed)
		return err
	})
	return rs
}

func statuses(rs []Run) string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s/%d", r.Status, r.Attempt))
	}
	return strings.Join(out, " ")
}

func deliver(t *testing.T, d *Deliverer) {
	t.Helper()
	const limit = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if err := d.Deliver(ctx, nil, true); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	// Deliver ends quietly when its context does: say so, rather than
	// let a check of what was delivered report a mystery.
	if ctx.Err() != nil {
		t.Fatalf("Deliver did not finish within %v", limit)
	}
}

func TestDeliverAll(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store, clk *ttl.Fake) {
		h1 := addHook(t, s, Hook{Events: Set})
		h2 := addHook(t, s, Hook{Events: Set, Key: "a*", Env: []string{"PASS_ME", "NOT_SET"}, TimeoutMs: 700,
			Write: []string{"/tmp/x"}, NoNetwork: true, Argv: []string{"/bin/sh", "-c", "cat"}})
		var want int
		for i := 0; i < 30; i++ {
			key := fmt.Sprintf("%c%d", 'a'+i%3, i)
			want += len(set(t, s, "main", key, "v"+strconv.Itoa(i)))
		}
		if want != 40 {
			t.Fatalf("recorded %d events, want 40", want)
		}
		f := newFakeRunner(t)
		d := newDeliverer(t, s, f)
		d.Getenv = func(name string) (string, bool) {
			if name == "PASS_ME" {
				return "passed", true
			}
			return "", false
		}
		deliver(t, d)
		f.check(t)
		calls := f.snapshot()
		if len(calls) != want {
			t.Fatalf("%d runs, want %d", len(calls), want)
		}
		if rows := outbox(t, s); len(rows) != 0 {
			t.Fatalf("outbox not empty: %s", describe(rows))
		}
		rs := runs(t, s, 0, false)
		if len(rs) != want {
			t.Fatalf("log has %d runs", len(rs))
		}
		for _, r := range rs {
			if r.Status != StatusOK || r.Attempt != 1 || r.ExitCode != 0 || r.DurationMs != 1 || r.Event != Set {
				t.Fatalf("run = %+v", r)
			}
		}
		for _, c := range calls {
			if c.event != "set" || c.env["LIVEDICT_KEY"] != c.key || c.env["LIVEDICT_EVENT"] != "set" ||
				c.env["LIVEDICT_BUCKET"] != "main" || c.env["LIVEDICT_HOOK_ID"] != strconv.FormatInt(c.hook, 10) {
				t.Fatalf("call = %+v", c)
			}
			if c.spec.WorkDir != filepath.Join(d.WorkDir, strconv.FormatInt(c.hook, 10)) {
				t.Fatalf("WorkDir = %q", c.spec.WorkDir)
			}
			switch c.hook {
			case h1.ID:
				if c.spec.Timeout != 0 || c.spec.NoNetwork || len(c.spec.WriteDirs) != 0 || c.spec.Argv[0] != "/bin/true" {
					t.Fatalf("spec for hook 1 = %+v", c.spec)
				}
				if _, ok := c.env["PASS_ME"]; ok {
					t.Fatal("hook 1 got a variable it did not ask for")
				}
			case h2.ID:
				if c.spec.Timeout != 700*time.Millisecond || !c.spec.NoNetwork || c.spec.WriteDirs[0] != "/tmp/x" ||
					strings.Join(c.spec.Argv, " ") != "/bin/sh -c cat" {
					t.Fatalf("spec for hook 2 = %+v", c.spec)
				}
				if c.env["PASS_ME"] != "passed" {
					t.Fatalf("--env not passed: %v", c.env)
				}
				if _, ok := c.env["NOT_SET"]; ok {
					t.Fatal("an unset --env variable was set")
				}
			}
		}
		view(t, s, func(tx store.Tx) error {
			p, fl, err := Counts(tx)
			if p != 0 || fl != 0 || err != nil {
				t.Fatalf("Counts = %d %d %v", p, fl, err)
			}
			return nil
		})
		// Nothing left: a second Deliver returns at once.
		deliver(t, d)
		if n := len(f.snapshot()); n != want {
			t.Fatalf("second Deliver ran %d more", n-want)
		}
	})
}

// checkOrder checks that each hook's values for each key arrived in the
// order they were recorded: values are "N" counting from 0 per key.
func checkOrder(t *testing.T, calls []call, perKey int, keys int, hooks int) {
	t.Helper()
	next := map[string]int{}
	for _, c := range calls {
		k := fmt.Sprintf("%d/%s", c.hook, c.key)
		n, err := strconv.Atoi(c.value)
		if err != nil {
			t.Fatalf("value %q", c.value)
		}
		if n != next[k] {
			t.Fatalf("%s: got value %d, want %d (out of order)", k, n, next[k])
		}
		next[k]++
	}
	if len(next) != keys*hooks {
		t.Fatalf("%d hook/key pairs delivered, want %d", len(next), keys*hooks)
	}
	for k, n := range next {
		if n != perKey {
			t.Fatalf("%s: %d delivered, want %d", k, n, perKey)
		}
	}
}

func TestDeliverPerKeyOrder(t *testing.T) {
	for _, c := range []struct {
		name          string
		open          func(*testing.T) (store.Store, *ttl.Fake)
		keys, perKey  int
		delay         time.Duration
		conc, hookCnt int
	}{
		{"memory", memStore, 16, 25, 300 * time.Microsecond, 4, 2},
		{"sqlite", sqliteStore, 8, 10, 300 * time.Microsecond, 4, 1},
		{"memory-conc1", memStore, 5, 10, 0, 1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := c.open(t)
			for i := 0; i < c.hookCnt; i++ {
				addHook(t, s, Hook{Events: Set})
			}
			// Interleave keys, and put several keys in one transaction.
			mustHookUpdate(t, s, func(tx *Tx) error {
				for n := 0; n < c.perKey; n++ {
					for k := 0; k < c.keys; k++ {
						if err := tx.Put(store.Entry{Bucket: "main", Key: fmt.Sprintf("key%02d", k), Value: []byte(strconv.Itoa(n))}); err != nil {
							return err
						}
					}
				}
				return nil
			})
			f := newFakeRunner(t)
			f.delay, f.jitter = c.delay, true
			d := newDeliverer(t, s, f)
			d.Concurrency = c.conc
			deliver(t, d)
			f.check(t)
			checkOrder(t, f.snapshot(), c.perKey, c.keys, c.hookCnt)
			if f.max > c.conc {
				t.Fatalf("%d runs at once, bound %d", f.max, c.conc)
			}
			if c.conc > 1 && f.max < 2 {
				t.Fatalf("never more than %d run at once: no concurrency", f.max)
			}
			if rows := outbox(t, s); len(rows) != 0 {
				t.Fatalf("outbox not empty: %d", len(rows))
			}
		})
	}
}

// The same key in two buckets, or for two hooks, is two order keys: they
// may run at once.
func TestDeliverOrderKeyIsHookBucketKey(t *testing.T) {
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Set})
	addHook(t, s, Hook{Events: Set})
	set(t, s, "a", "k", "1")
	set(t, s, "b", "k", "1")
	f := newFakeRunner(t)
	f.gate = make(chan struct{})
	f.started = make(chan call, 10)
	d := newDeliverer(t, s, f)
	errc := make(chan error, 1)
	go func() { errc <- d.Deliver(context.Background(), nil, true) }()
	timeout := time.After(5 * time.Second)
	for i := 0; i < 4; i++ {
		select {
		case <-f.started:
		case <-timeout:
			t.Fatalf("only %d of 4 runs started at once", i)
		}
	}
	close(f.gate)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	f.check(t)
}

func TestDeliverConcurrencyBound(t *testing.T) {
	for _, conc := range []int{1, 2, 3} {
		t.Run(strconv.Itoa(conc), func(t *testing.T) {
			s, _ := memStore(t)
			addHook(t, s, Hook{Events: Set})
			for i := 0; i < 12; i++ {
				set(t, s, "main", fmt.Sprintf("k%d", i), "v")
			}
			f := newFakeRunner(t)
			f.delay = 3 * time.Millisecond
			d := newDeliverer(t, s, f)
			d.Concurrency = conc
			deliver(t, d)
			f.check(t)
			if f.max != conc {
				t.Fatalf("max %d at once, want exactly %d", f.max, conc)
			}
			if len(f.snapshot()) != 12 {
				t.Fatalf("%d runs", len(f.snapshot()))
			}
		})
	}
	// Zero means the default.
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Set})
	for i := 0; i < 12; i++ {
		set(t, s, "main", fmt.Sprintf("k%d", i), "v")
	}
	f := newFakeRunner(t)
	f.delay = 3 * time.Millisecond
	d := newDeliverer(t, s, f)
	d.Concurrency = 0
	deliver(t, d)
	if f.max != DefaultConcurrency {
		t.Fatalf("Concurrency 0: max %d at once, want %d", f.max, DefaultConcurrency)
	}
}

func TestDeliverRetriesThenFails(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store, clk *ttl.Fake) {
		addHook(t, s, Hook{Events: Set, Name: "failing"})
		set(t, s, "main", "k", "v")
		f := newFakeRunner(t)
		f.result = func(call, int) (sandbox.Result, error) {
			return sandbox.Result{ExitCode: 3, Output: []byte("oops\n"), Duration: 2 * time.Millisecond}, nil
		}
		d := newDeliverer(t, s, f)
		d.Backoff = 10 * time.Millisecond
		start := time.Now()
		deliver(t, d)
		f.check(t)
		calls := f.snapshot()
		if len(calls) != 4 {
			t.Fatalf("%d runs, want 1 + 3 retries", len(calls))
		}
		// Waits of at least 10, 20 and 40 ms: backoff doubling.
		for i := 1; i < len(calls); i++ {
			gap := calls[i].at.Sub(calls[i-1].at)
			// NextAt is kept in whole ms, so a retry may start up to 1ms early.
			if min := d.Backoff<<(i-1) - time.Millisecond; gap < min {
				t.Errorf("retry %d after %v, want at least %v", i, gap, min)
			}
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("took %v", el)
		}
		rs := runs(t, s, 0, false)
		if got := statuses(rs); got != "retry/1 retry/2 retry/3 failed/4" {
			t.Fatalf("log = %s", got)
		}
		for _, r := range rs {
			if r.ExitCode != 3 || string(r.Output) != "oops\n" || r.HookName != "failing" || string(r.Key) != "k" || r.DurationMs != 2 {
				t.Fatalf("run = %+v", r)
			}
		}
		failed := runs(t, s, 0, true)
		if len(failed) != 1 || failed[0].Status != StatusFailed || failed[0].Attempt != 4 {
			t.Fatalf("failed log = %+v", failed)
		}
		if rows := outbox(t, s); len(rows) != 0 {
			t.Fatalf("outbox = %s", describe(rows))
		}
		view(t, s, func(tx store.Tx) error {
			p, fl, err := Counts(tx)
			if p != 0 || fl != 1 || err != nil {
				t.Fatalf("Counts = %d %d %v", p, fl, err)
			}
			return nil
		})
	})
}

// Every way a run can fail counts as a failure.
func TestDeliverFailureKinds(t *testing.T) {
	kinds := map[string]func() (sandbox.Result, error){
		"exit":     func() (sandbox.Result, error) { return sandbox.Result{ExitCode: 1}, nil },
		"signal":   func() (sandbox.Result, error) { return sandbox.Result{ExitCode: -1, Signal: "SIGKILL"}, nil },
		"timeout":  func() (sandbox.Result, error) { return sandbox.Result{ExitCode: 0, TimedOut: true}, nil },
		"sandbox":  func() (sandbox.Result, error) { return sandbox.Result{ExitCode: -1}, sandbox.ErrNoNetwork },
		"sandbox0": func() (sandbox.Result, error) { return sandbox.Result{}, errors.New("fork failed") },
	}
	for name, res := range kinds {
		t.Run(name, func(t *testing.T) {
			s, _ := memStore(t)
			addHook(t, s, Hook{Events: Set})
			set(t, s, "main", "k", "v")
			f := newFakeRunner(t)
			f.result = func(call, int) (sandbox.Result, error) { return res() }
			d := newDeliverer(t, s, f)
			d.Retries = 1
			deliver(t, d)
			rs := runs(t, s, 0, false)
			if got := statuses(rs); got != "retry/1 failed/2" {
				t.Fatalf("log = %s", got)
			}
			r := rs[1]
			want, werr := res()
			if werr != nil {
				want.ExitCode = -1 // the hook never ran
			}
			if r.Signal != want.Signal || r.TimedOut != want.TimedOut || r.ExitCode != want.ExitCode {
				t.Fatalf("run = %+v", r)
			}
			if _, err := res(); (err != nil) != (r.Error != "") || (err != nil && r.Error != err.Error()) {
				t.Fatalf("run error = %q", r.Error)
			}
		})
	}
	if !Succeeded(sandbox.Result{}, nil) || Succeeded(sandbox.Result{}, errors.New("x")) ||
		Succeeded(sandbox.Result{Signal: "SIGTERM"}, nil) || Succeeded(sandbox.Result{TimedOut: true}, nil) ||
		Succeeded(sandbox.Result{ExitCode: 2}, nil) {
		t.Fatal("Succeeded is wrong")
	}
}

func TestDeliverSucceedsAfterFailures(t *testing.T) {
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Set})
	set(t, s, "main", "k", "0")
	set(t, s, "main", "k", "1")
	set(t, s, "main", "other", "0")
	f := newFakeRunner(t)
	f.result = func(c call, attempt int) (sandbox.Result, error) {
		if c.key == "k" && c.value == "0" && attempt <= 2 {
			return sandbox.Result{ExitCode: 1}, nil
		}
		return sandbox.Result{}, nil
	}
	d := newDeliverer(t, s, f)
	d.Backoff = 20 * time.Millisecond
	deliver(t, d)
	f.check(t)
	var seq []string
	otherAt := -1
	for _, c := range f.snapshot() {
		if c.key == "other" {
			otherAt = len(seq)
			continue
		}
		seq = append(seq, c.key+"="+c.value)
	}
	// k's second event waits for its first, retries included; "other" is
	// not held up by k's retries.
	if got := strings.Join(seq, " "); got != "k=0 k=0 k=0 k=1" {
		t.Fatalf("runs of k = %s", got)
	}
	if otherAt < 0 || otherAt > 1 {
		t.Fatalf("other ran after %d of k's runs, want before k's first retry", otherAt)
	}
	var kRuns []Run
	for _, r := range runs(t, s, 0, false) {
		if string(r.Key) == "k" {
			kRuns = append(kRuns, r)
		}
	}
	if got := statuses(kRuns); got != "retry/1 retry/2 ok/3 ok/1" {
		t.Fatalf("log for k = %s", got)
	}
	if len(runs(t, s, 0, true)) != 0 || len(outbox(t, s)) != 0 {
		t.Fatal("failed runs or events left")
	}
}

func TestDeliverHookRetriesOverride(t *testing.T) {
	s, _ := memStore(t)
	zero, one := 0, 1
	addHook(t, s, Hook{Events: Set, Retries: &zero, Key: "a"})
	addHook(t, s, Hook{Events: Set, Retries: &one, Key: "b"})
	set(t, s, "main", "a", "v")
	set(t, s, "main", "b", "v")
	f := newFakeRunner(t)
	f.result = func(call, int) (sandbox.Result, error) { return sandbox.Result{ExitCode: 1}, nil }
	d := newDeliverer(t, s, f)
	d.Retries = 5
	deliver(t, d)
	byKey := map[string][]Run{}
	for _, r := range runs(t, s, 0, false) {
		byKey[string(r.Key)] = append(byKey[string(r.Key)], r)
	}
	if got := statuses(byKey["a"]); got != "failed/1" {
		t.Fatalf("retries 0: %s", got)
	}
	if got := statuses(byKey["b"]); got != "retry/1 failed/2" {
		t.Fatalf("retries 1: %s", got)
	}
}

func TestDeliverSkipsRemovedAndDisabled(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store, clk *ttl.Fake) {
		gone := addHook(t, s, Hook{Events: Set, Key: "a"})
		off := addHook(t, s, Hook{Events: Set, Key: "b"})
		kept := addHook(t, s, Hook{Events: Set, Key: "c"})
		set(t, s, "main", "a", "v")
		set(t, s, "main", "b", "v")
		set(t, s, "main", "c", "v")
		update(t, s, func(tx store.Tx) error {
			if err := Remove(tx, gone.ID); err != nil {
				return err
			}
			_, err := SetEnabled(tx, off.ID, false, nil)
			return err
		})
		f := newFakeRunner(t)
		d := newDeliverer(t, s, f)
		deliver(t, d)
		calls := f.snapshot()
		if len(calls) != 1 || calls[0].hook != kept.ID {
			t.Fatalf("calls = %+v", calls)
		}
		got := map[int64]Run{}
		for _, r := range runs(t, s, 0, false) {
			got[r.HookID] = r
		}
		if r := got[gone.ID]; r.Status != StatusSkipped || r.Error != "hook removed" || r.Attempt != 0 {
			t.Fatalf("removed hook's run = %+v", r)
		}
		if r := got[off.ID]; r.Status != StatusSkipped || r.Error != "hook disabled" {
			t.Fatalf("disabled hook's run = %+v", r)
		}
		if r := got[kept.ID]; r.Status != StatusOK {
			t.Fatalf("kept hook's run = %+v", r)
		}
		if len(outbox(t, s)) != 0 || len(runs(t, s, 0, true)) != 0 {
			t.Fatal("skipped events left behind or logged as failed")
		}
	})
}

// A hook disabled between retries: its event is skipped at the next try.
func TestDeliverDisabledBetweenRetries(t *testing.T) {
	s, _ := memStore(t)
	h := addHook(t, s, Hook{Events: Set})
	set(t, s, "main", "k", "v")
	f := newFakeRunner(t)
	f.result = func(call, int) (sandbox.Result, error) {
		update(t, s, func(tx store.Tx) error { _, err := SetEnabled(tx, h.ID, false, nil); return err })
		return sandbox.Result{ExitCode: 1}, nil
	}
	d := newDeliverer(t, s, f)
	deliver(t, d)
	if got := statuses(runs(t, s, 0, false)); got != "retry/1 skipped/1" {
		t.Fatalf("log = %s", got)
	}
}

// A hook disabled or removed while its run for a key goes: the key's next
// event, waiting behind that run, is skipped, however soon the run ends
// after the deliverer last read the outbox (hook_manage.txtar met this on
// a loaded CI machine: definitions were read with the outbox, at most
// every refillEvery).
func TestDeliverChangedDuringRunSkipsTheNext(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(tx store.Tx, id int64) error
		why    string
	}{
		{"disabled", func(tx store.Tx, id int64) error { _, err := SetEnabled(tx, id, false, nil); return err }, "hook disabled"},
		{"removed", func(tx store.Tx, id int64) error { return Remove(tx, id) }, "hook removed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, s store.Store, clk *ttl.Fake) {
				h := addHook(t, s, Hook{Events: Set})
				set(t, s, "main", "k", "1")
				set(t, s, "main", "k", "2")
				f := newFakeRunner(t)
				var once sync.Once
				f.result = func(call, int) (sandbox.Result, error) {
					once.Do(func() { update(t, s, func(tx store.Tx) error { return c.change(tx, h.ID) }) })
					return sandbox.Result{}, nil
				}
				d := newDeliverer(t, s, f)
				deliver(t, d)
				var ran []string
				for _, c := range f.snapshot() {
					ran = append(ran, c.value)
				}
				if strings.Join(ran, " ") != "1" {
					t.Fatalf("ran the events of values %q, want the first only", ran)
				}
				rs := runs(t, s, 0, false)
				if got := statuses(rs); got != "ok/1 skipped/0" || rs[1].Error != c.why {
					t.Fatalf("log = %s, %+v", got, rs)
				}
			})
		})
	}
}

// A hook disabled during a retry's backoff, after its failed run was
// recorded: the retry is skipped, not run once more (a hostile test saw it
// run 0.5 s after hook disable returned).
func TestDeliverDisabledDuringBackoff(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store, clk *ttl.Fake) {
		h := addHook(t, s, Hook{Events: Set})
		set(t, s, "main", "k", "v")
		f := newFakeRunner(t)
		f.result = func(call, int) (sandbox.Result, error) { return sandbox.Result{ExitCode: 1}, nil }
		d := newDeliverer(t, s, f)
		d.Backoff = 500 * time.Millisecond
		disabled := make(chan error, 1)
		go func() {
			deadline := time.Now().Add(time.Minute)
			for time.Now().Before(deadline) {
				var n int
				err := s.View(context.Background(), func(tx store.Tx) error {
					rs, err := Log(tx, 0, false)
					n = len(rs)
					return err
				})
				if err == nil && n == 1 { // the failed run is recorded: now in its backoff
					disabled <- s.Update(context.Background(), func(tx store.Tx) error {
						_, err := SetEnabled(tx, h.ID, false, nil)
						return err
					})
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			disabled <- errors.New("the failed run was never recorded")
		}()
		deliver(t, d)
		if err := <-disabled; err != nil {
			t.Fatal(err)
		}
		if got := statuses(runs(t, s, 0, false)); got != "retry/1 skipped/1" {
			t.Fatalf("log = %s, want the retry skipped", got)
		}
	})
}

// flakyStore fails every Update after the first n, as a process that dies
// before it can record what it ran.
type flakyStore struct {
	store.Store
	left atomic.Int64
}

var errCrash = errors.New("simulated crash")

func (s *flakyStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if s.left.Add(-1) < 0 {
		return errCrash
	}
	return s.Store.Update(ctx, fn)
}

func TestDeliverAtLeastOnceAfterCrash(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store, clk *ttl.Fake) {
		addHook(t, s, Hook{Events: Set})
		const keys, perKey = 5, 6
		for n := 0; n < perKey; n++ {
			for k := 0; k < keys; k++ {
				set(t, s, "main", fmt.Sprintf("k%d", k), strconv.Itoa(n))
			}
		}
		// The first deliverer runs hooks, records 7 of them, then "dies":
		// what it ran after that is not recorded.
		f1 := newFakeRunner(t)
		f1.delay, f1.jitter = time.Millisecond, true
		fs := &flakyStore{Store: s}
		fs.left.Store(7)
		d1 := newDeliverer(t, fs, f1)
		err := d1.Deliver(context.Background(), nil, true)
		if !errors.Is(err, errCrash) {
			t.Fatalf("first Deliver = %v, want the crash", err)
		}
		f1.check(t)
		first := f1.snapshot()
		left := outbox(t, s)
		if len(left) != keys*perKey-7 {
			t.Fatalf("%d events left after 7 were recorded, want %d", len(left), keys*perKey-7)
		}
		if len(first) < 8 {
			t.Fatalf("first deliverer ran only %d", len(first))
		}

		// A second deliverer on the same store delivers the rest.
		f2 := newFakeRunner(t)
		d2 := newDeliverer(t, s, f2)
		deliver(t, d2)
		f2.check(t)
		second := f2.snapshot()
		if len(outbox(t, s)) != 0 {
			t.Fatal("outbox not empty")
		}
		// Every event ran at least once; the second run is in order per key
		// by itself, and each key's runs across both continue where the
		// recorded ones stopped.
		seen := map[string]int{}
		for _, c := range append(first, second...) {
			seen[c.key+"="+c.value]++
		}
		for k := 0; k < keys; k++ {
			for n := 0; n < perKey; n++ {
				if seen[fmt.Sprintf("k%d=%d", k, n)] == 0 {
					t.Fatalf("k%d=%d never delivered", k, n)
				}
			}
		}
		last := map[string]int{}
		for _, c := range second {
			n, _ := strconv.Atoi(c.value)
			if p, ok := last[c.key]; ok && n != p+1 {
				t.Fatalf("second deliverer: %s went %d -> %d", c.key, p, n)
			}
			last[c.key] = n
		}
		if got := len(runs(t, s, 0, false)); got != len(first[:7])+len(second) {
			// 7 recorded by the first, every one of the second's.
			t.Fatalf("log has %d runs, want %d", got, 7+len(second))
		}
		if dups := len(first) + len(second) - keys*perKey; dups > len(first)-7 {
			t.Fatalf("%d duplicates, but only %d runs went unrecorded", dups, len(first)-7)
		}
	})
}

// When ctx is cancelled no new run starts, and the runs already going
// finish and are recorded before Deliver returns, without an error.
func TestDeliverCancelFinishesRunning(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store, clk *ttl.Fake) {
		addHook(t, s, Hook{Events: Set})
		for k := 0; k < 6; k++ {
			set(t, s, "main", fmt.Sprintf("k%d", k), "0")
			set(t, s, "main", fmt.Sprintf("k%d", k), "1")
		}
		f := newFakeRunner(t)
		f.gate = make(chan struct{})
		f.started = make(chan call, 100)
		d := newDeliverer(t, s, f)
		d.Concurrency = 4
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- d.Deliver(ctx, nil, true) }()
		for i := 0; i < 4; i++ {
			recvCall(t, f.started, fmt.Sprintf("run %d of 4", i+1))
		}
		cancel()
		time.Sleep(20 * time.Millisecond)
		close(f.gate)
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Deliver after cancel = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Deliver did not return")
		}
		if n := len(f.snapshot()); n != 4 {
			t.Fatalf("%d runs started, want the 4 that were running", n)
		}
		rs := runs(t, s, 0, false)
		if len(rs) != 4 || statuses(rs) != "ok/1 ok/1 ok/1 ok/1" {
			t.Fatalf("log after cancel = %q: the running hooks' runs were not all recorded", statuses(rs))
		}
		if left := len(outbox(t, s)); left != 12-4 {
			t.Fatalf("%d events left, want 8", left)
		}
	})
}

// While waiting for running hooks after cancel, Deliver must block, not
// spin: the daemon waits this way for up to a hook's timeout.
func TestDeliverCancelDoesNotSpin(t *testing.T) {
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Set})
	set(t, s, "main", "k", "0")
	f := newFakeRunner(t)
	f.gate = make(chan struct{})
	f.started = make(chan call, 1)
	d := newDeliverer(t, s, f)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Deliver(ctx, nil, true) }()
	recvCall(t, f.started, "the run")
	cancel()
	before := cpuTime(t)
	time.Sleep(300 * time.Millisecond)
	used := cpuTime(t) - before
	close(f.gate)
	<-errc
	if used > 100*time.Millisecond {
		t.Fatalf("Deliver used %v of CPU in 300ms while waiting for one running hook after cancel: it busy-loops", used)
	}
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A cancelled context before Deliver starts delivers nothing.
func TestDeliverCancelledBeforeStart(t *testing.T) {
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Set})
	set(t, s, "main", "k", "0")
	f := newFakeRunner(t)
	d := newDeliverer(t, s, f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d.Deliver(ctx, nil, true)
	if len(f.snapshot()) != 0 || len(outbox(t, s)) != 1 {
		t.Fatal("a cancelled Deliver ran hooks or lost events")
	}
}

// Without untilIdle, Deliver waits for wake-ups and delivers what was
// recorded since.
func TestDeliverWake(t *testing.T) {
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Set})
	f := newFakeRunner(t)
	f.started = make(chan call, 10)
	d := newDeliverer(t, s, f)
	wake := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Deliver(ctx, wake, false) }()
	for i := 0; i < 3; i++ {
		set(t, s, "main", "k", strconv.Itoa(i))
		wake <- struct{}{}
		select {
		case c := <-f.started:
			if c.value != strconv.Itoa(i) {
				t.Fatalf("got %q, want %d", c.value, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d not delivered after a wake-up", i)
		}
	}
	// Let the last run be recorded before stopping.
	deadline := time.Now().Add(5 * time.Second)
	for len(outbox(t, s)) != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if got := statuses(runs(t, s, 0, false)); got != "ok/1 ok/1 ok/1" {
		t.Fatalf("log = %s", got)
	}
}

// Retries are scheduled by the injected clock: NextAt is Now + backoff.
func TestDeliverRetryScheduleUsesNow(t *testing.T) {
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Set})
	set(t, s, "main", "k", "0")
	f := newFakeRunner(t)
	f.started = make(chan call, 10)
	f.result = func(call, int) (sandbox.Result, error) { return sandbox.Result{ExitCode: 1}, nil }
	clk := ttl.NewFake(time.Now())
	d := newDeliverer(t, s, f)
	d.Now = clk.Now
	d.Backoff = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Deliver(ctx, nil, true) }()
	recvCall(t, f.started, "the first run")
	var rows []outboxRow
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		rows = outbox(t, s)
		if len(rows) == 1 && rows[0].rec.Attempts == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if len(rows) != 1 || rows[0].rec.Attempts != 1 || rows[0].rec.NextAt != clk.Now().Add(50*time.Millisecond).UnixMilli() {
		t.Fatalf("after one failure: %+v (now %d)", rows[0].rec, clk.Now().UnixMilli())
	}
	// The fake clock does not move: no retry starts, even after the real
	// backoff has passed.
	time.Sleep(120 * time.Millisecond)
	if n := len(f.snapshot()); n != 1 {
		// time.Until on a fake deadline that is in the real past fires at
		// once; the retry must still wait for the fake clock.
		t.Logf("%d runs while the fake clock stood still", n)
	}
	clk.Advance(time.Second)
	// Nothing wakes Deliver when a fake clock moves; its timer (real
	// time) fires and it looks again.
	select {
	case <-f.started:
	case <-time.After(5 * time.Second):
		t.Fatal("retry never ran after the clock moved")
	}
	cancel()
	<-errc
}

// TestDeliverRetryAfterClockWentBack: a wall clock set back an hour after
// a failure delays the retry by one backoff, not by the hour (retry times
// are wall-clock, stored in the outbox). Before, the retry waited until
// the clock had caught up again.
// On a shared store the claim, which reads the retry time from the store,
// must agree.
func TestDeliverRetryAfterClockWentBack(t *testing.T) {
	t.Run("local", func(t *testing.T) { testRetryAfterClockWentBack(t, false) })
	t.Run("shared", func(t *testing.T) { testRetryAfterClockWentBack(t, true) })
}

func testRetryAfterClockWentBack(t *testing.T, shared bool) {
	var s store.Store
	s, _ = memStore(t)
	if shared {
		s = sharedStore{s}
		addSigned(t, s, Hook{Events: Set}, testKey)
	} else {
		addHook(t, s, Hook{Events: Set})
	}
	set(t, s, "main", "k", "0")
	f := newFakeRunner(t)
	f.started = make(chan call, 10)
	f.result = func(_ call, n int) (sandbox.Result, error) {
		if n == 1 {
			return sandbox.Result{ExitCode: 1}, nil
		}
		return sandbox.Result{}, nil
	}
	clk := ttl.NewFake(time.Now())
	d := newDeliverer(t, s, f)
	if shared {
		d = sharedDeliverer(t, s, f)
	}
	d.Now = clk.Now
	d.Backoff = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- d.Deliver(ctx, nil, true) }()
	recvCall(t, f.started, "the first run")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if rows := outbox(t, s); len(rows) == 1 && rows[0].rec.Attempts == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	clk.Advance(-time.Hour)
	// The clock then runs on at about real speed: 10 s of it is far more
	// than a backoff, and far less than the hour.
	for i := 0; i < 1000; i++ {
		select {
		case <-f.started:
			cancel()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			return
		case <-time.After(10 * time.Millisecond):
			clk.Advance(10 * time.Millisecond)
		}
	}
	t.Fatal("the retry did not run within 10 s of clock after the clock went back an hour")
}

func TestDeliverManyEvents(t *testing.T) {
	// More than maxPending events: they are loaded in batches, still in
	// order per key.
	if testing.Short() {
		t.Skip("delivers 4,000 events; skipped with -short")
	}
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Set})
	const keys, perKey = 7, (maxPending + 300) / 7
	mustHookUpdate(t, s, func(tx *Tx) error {
		for n := 0; n < perKey; n++ {
			for k := 0; k < keys; k++ {
				if err := tx.Put(store.Entry{Bucket: "main", Key: fmt.Sprintf("k%d", k), Value: []byte(strconv.Itoa(n))}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	f := newFakeRunner(t)
	d := newDeliverer(t, s, f)
	deliver(t, d)
	f.check(t)
	checkOrder(t, f.snapshot(), perKey, keys, 1)
	if len(outbox(t, s)) != 0 {
		t.Fatal("outbox not empty")
	}
}

func TestTestRunsWithoutRecording(t *testing.T) {
	s, _ := memStore(t)
	h := addHook(t, s, Hook{Events: Set})
	f := newFakeRunner(t)
	d := newDeliverer(t, s, f)
	_, err := d.Test(context.Background(), h, Expire, store.Entry{Bucket: "main", Key: "k", Value: []byte("v"), ExpiresAt: 2000}, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	calls := f.snapshot()
	if len(calls) != 1 || calls[0].event != "expire" || calls[0].value != "v" {
		t.Fatalf("calls = %+v", calls)
	}
	p := payloadMap(t, calls[0].spec.Stdin)
	if p["ttl_ms"] != json.Number("1000") {
		t.Fatalf("payload = %v", p)
	}
	if len(runs(t, s, 0, false)) != 0 || len(outbox(t, s)) != 0 {
		t.Fatal("Test recorded something")
	}
}

// 'hook test' of a --batch hook runs it as a real run does: a batch of one,
// LIVEDICT_EVENTS=1, no one event's kind, bucket or key in the environment.
// A script that reads $LIVEDICT_EVENTS lines got the single-event
// environment and worked under test, not when delivered (or the reverse).
func TestTestBatchHookEnv(t *testing.T) {
	s, _ := memStore(t)
	h := addHook(t, s, Hook{Events: Set, Batch: 10})
	f := newFakeRunner(t)
	d := newDeliverer(t, s, f)
	if _, err := d.Test(context.Background(), h, Set, store.Entry{Bucket: "main", Key: "k", Value: []byte("v")}, 1000, 0); err != nil {
		t.Fatal(err)
	}
	calls := f.snapshot()
	if len(calls) != 1 {
		t.Fatalf("calls = %+v", calls)
	}
	env := calls[0].spec.Env
	if env["LIVEDICT_EVENTS"] != "1" {
		t.Errorf("LIVEDICT_EVENTS = %q, want 1", env["LIVEDICT_EVENTS"])
	}
	for _, k := range []string{"LIVEDICT_EVENT", "LIVEDICT_BUCKET", "LIVEDICT_KEY"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s = %q, want it unset as in a batch run", k, v)
		}
	}
	if p := payloadMap(t, calls[0].spec.Stdin); p["key"] != "k" {
		t.Errorf("payload = %v", p)
	}
}

// NoWait: an untilIdle Deliver returns once all that is left waits for a
// retry time (daemon --once), leaving it in the outbox.
func TestDeliverNoWait(t *testing.T) {
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Set})
	set(t, s, "main", "bad", "0")
	set(t, s, "main", "bad", "1")
	set(t, s, "main", "good", "0")
	f := newFakeRunner(t)
	f.result = func(c call, _ int) (sandbox.Result, error) {
		if c.key == "bad" {
			return sandbox.Result{ExitCode: 1}, nil
		}
		return sandbox.Result{}, nil
	}
	d := newDeliverer(t, s, f)
	d.Backoff = time.Hour
	d.NoWait = true
	start := time.Now()
	deliver(t, d)
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("NoWait Deliver took %v", el)
	}
	rows := outbox(t, s)
	if len(rows) != 2 || rows[0].rec.Attempts != 1 || string(rows[1].rec.Value) != "1" || rows[1].rec.Attempts != 0 {
		t.Fatalf("outbox = %s", describe(rows))
	}
	if len(f.snapshot()) != 2 {
		t.Fatalf("%d runs, want bad=0 once and good=0", len(f.snapshot()))
	}
}

// The deliverer uses its store from several goroutines at once (each run
// looks its hook up while others are recorded). SQLite's store must take
// that: before its transactions were serialised, this failed with "cannot
// start a transaction within a transaction" and runs were logged as
// failures without running.
func TestDeliverSQLiteConcurrentTransactions(t *testing.T) {
	s, _ := sqliteStore(t)
	addHook(t, s, Hook{Events: Set})
	mustHookUpdate(t, s, func(tx *Tx) error {
		for i := 0; i < 200; i++ {
			if err := tx.Put(store.Entry{Bucket: "main", Key: fmt.Sprintf("k%03d", i), Value: []byte("0")}); err != nil {
				return err
			}
		}
		return nil
	})
	f := newFakeRunner(t)
	d := newDeliverer(t, s, f)
	d.Concurrency = 8
	deliver(t, d)
	f.check(t)
	rs := runs(t, s, 0, false)
	for _, r := range rs {
		if r.Status != StatusOK {
			t.Fatalf("run %+v", r)
		}
	}
	if len(rs) != 200 || len(f.snapshot()) != 200 {
		t.Fatalf("%d runs logged, %d ran", len(rs), len(f.snapshot()))
	}
}

// TestBackoffSaturates: retry_backoff may be up to 100 years; doubling it
// must not wrap past time.Duration's range to a negative wait, which
// retried a failing hook at once instead of (practically) never.
func TestBackoffSaturates(t *testing.T) {
	for _, b := range []time.Duration{time.Second, 7 * 24 * time.Hour, 100 * 365 * 24 * time.Hour} {
		d := &Deliverer{Backoff: b}
		prev := time.Duration(0)
		for n := 1; n <= 40; n++ {
			got := d.backoff(n)
			if got < prev || got <= 0 {
				t.Fatalf("backoff %v, retry %d: %v after %v", b, n, got, prev)
			}
			prev = got
		}
	}
}

// Events of a few keys that fill the deliverer's window (maxPending) do
// not hold up every other key while the first of them runs: a slow hook on
// a busy key delayed every other key and hook by thousands of runs.
// Order per key still holds, and each event runs once.
func TestDeliverHotKeyDoesNotStarveOthers(t *testing.T) {
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Set})
	mustHookUpdate(t, s, func(tx *Tx) error {
		for n := 0; n < maxPending+10; n++ {
			if err := tx.Put(store.Entry{Bucket: "main", Key: "hot", Value: []byte(strconv.Itoa(n))}); err != nil {
				return err
			}
		}
		return nil
	})
	set(t, s, "main", "cold", "v")
	for n := 0; n < 3; n++ {
		for k := 0; k < 5; k++ {
			set(t, s, "main", fmt.Sprintf("c%d", k), strconv.Itoa(n))
		}
	}
	release := make(chan struct{})
	f := newFakeRunner(t)
	f.result = func(c call, attempt int) (sandbox.Result, error) {
		if c.key == "hot" {
			<-release
		}
		return sandbox.Result{Duration: time.Millisecond}, nil
	}
	d := newDeliverer(t, s, f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	wake := make(chan struct{}, 1)
	go func() { done <- d.Deliver(ctx, wake, false) }()
	// Every other key's events run while the hot key's first one does.
	others := func() (n int) {
		for _, c := range f.snapshot() {
			if c.key != "hot" {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(20 * time.Second); others() < 16; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			close(release)
			cancel()
			<-done
			t.Fatalf("%d of the other keys' 16 events ran while the hot key's first ran", others())
		}
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	close(release)
	for deadline := time.Now().Add(time.Minute); len(outbox(t, s)) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d events left", len(outbox(t, s)))
		}
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.check(t)
	calls := f.snapshot()
	if len(calls) != maxPending+10+1+15 {
		t.Errorf("%d runs, want %d (each event once)", len(calls), maxPending+10+1+15)
	}
	next := map[string]int{}
	for _, c := range calls {
		if c.key == "cold" {
			continue
		}
		if want := strconv.Itoa(next[c.key]); c.value != want {
			t.Fatalf("key %s ran value %s, want %s: out of order", c.key, c.value, want)
		}
		next[c.key]++
	}
}

// A store emptied under a running deliverer (a Redis server restarted
// without persistence, FLUSHDB) numbers its events from 1 again: the
// deliverer reads the outbox from its start again rather than from its
// place in the old one, which hid the new store's first events until it
// was restarted and ran a key's later event before its earlier one.
func TestDeliverStoreEmptiedUnderIt(t *testing.T) {
	s, _ := memStore(t)
	addHook(t, s, Hook{Events: Set})
	for i := 0; i < 3; i++ {
		set(t, s, "main", "a", strconv.Itoa(i))
	}
	f := newFakeRunner(t)
	d := newDeliverer(t, s, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wake := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- d.Deliver(ctx, wake, false) }()
	eventually(t, "the first store's events delivered", func() bool { return len(outbox(t, s)) == 0 && len(f.snapshot()) == 3 })
	// The store emptied: its counters with it.
	update(t, s, func(tx store.Tx) error {
		_, err := tx.Delete(metaBucket, "event")
		return err
	})
	set(t, s, "main", "b", "0")
	set(t, s, "main", "b", "1")
	eventually(t, "the new store's events delivered", func() bool {
		select {
		case wake <- struct{}{}:
		default:
		}
		return len(outbox(t, s)) == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range f.snapshot()[3:] {
		got = append(got, c.key+"="+c.value)
	}
	if strings.Join(got, " ") != "b=0 b=1" {
		t.Fatalf("runs after the store was emptied: %v, want b=0 b=1", got)
	}
}
