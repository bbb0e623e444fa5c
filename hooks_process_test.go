package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/hooks"
)

// These tests run real livedict processes with real hooks: the detached
// dispatcher each writer starts, the sandbox, the outbox across crashes,
// on the harness in process_test.go.

// TestHookExpireExactlyOnce: 200 keys expire; eight processes reap at once.
// Reaping and recording happen in one write transaction, so each key's
// expire event is recorded, and its hook run, exactly once.
func TestHookExpireExactlyOnce(t *testing.T) {
	const keys, reapers = 200, 8
	forEachBackend(t, func(t *testing.T, e *procEnv) {
		evDir := filepath.Join(t.TempDir(), "ev")
		if err := os.Mkdir(evDir, 0o700); err != nil {
			t.Fatal(err)
		}
		evFile := filepath.Join(evDir, "events")
		if out := e.mustRun("hook", "add", "--on", "expire", "--write", evDir, "--", "sh", "-c", "cat >> "+evFile); strings.TrimSpace(out) != "1" {
			t.Fatalf("hook add printed %q", out)
		}
		// One import sets all the keys with a deadline shortly ahead.
		at := time.Now().Add(700 * time.Millisecond).UnixMilli()
		var jsonl bytes.Buffer
		for i := 0; i < keys; i++ {
			fmt.Fprintf(&jsonl, `{"bucket":"main","key":"k%03d","value_b64":"%s","expires_at_ms":%d}`+"\n",
				i, base64.StdEncoding.EncodeToString([]byte("v"+strconv.Itoa(i))), at)
		}
		if _, stderr, code := e.runInput(jsonl.Bytes(), "import"); code != 0 {
			t.Fatalf("import: exit %d: %s", code, stderr)
		}
		time.Sleep(time.Until(time.UnixMilli(at + 100)))

		var wg sync.WaitGroup
		errs := make(chan string, reapers)
		counts := make(chan int, reapers)
		start := make(chan struct{})
		for i := 0; i < reapers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				out, stderr, code := e.run("reap", "-v")
				if code != 0 || stderr != "" {
					errs <- fmt.Sprintf("reap: exit %d: %s", code, stderr)
					return
				}
				n, _ := strconv.Atoi(strings.TrimSpace(out))
				counts <- n
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		close(counts)
		for e := range errs {
			t.Error(e)
		}
		reaped := 0
		for n := range counts {
			reaped += n
		}
		// Lazy reaping at open may take some, so the counts reaped
		// by 'reap' itself add up to at most keys.
		if reaped > keys {
			t.Fatalf("the reapers reaped %d keys of %d", reaped, keys)
		}
		if out := e.mustRun("keys"); out != "" {
			t.Fatalf("keys left after reaping: %q", out)
		}

		e.waitDelivered(15 * time.Second)
		evs := readEvents(t, evFile)
		seen := map[string]int{}
		for _, e := range evs {
			i, err := strconv.Atoi(strings.TrimPrefix(e.Key, "k"))
			if err != nil || e.Event != "expire" || e.Bucket != "main" || e.HookID != 1 || e.Value != "v"+strconv.Itoa(i) {
				t.Fatalf("event %+v", e)
			}
			seen[e.Key]++
		}
		for i := 0; i < keys; i++ {
			k := fmt.Sprintf("k%03d", i)
			if seen[k] != 1 {
				t.Errorf("%s: %d expire events, want exactly 1", k, seen[k])
			}
		}
		if len(evs) != keys {
			t.Fatalf("%d events delivered, want %d", len(evs), keys)
		}
		if _, failed := e.pending(); failed != 0 {
			t.Fatalf("%d failed", failed)
		}
		log := e.mustRun("hook", "log", "-n", "0")
		if n := strings.Count(log, "\tok\t"); n != keys || strings.Count(log, "\n") != keys {
			t.Fatalf("hook log: %d ok runs of %d lines, want %d", n, strings.Count(log, "\n"), keys)
		}
	})
}

// TestHookAtLeastOnceAcrossKill9: the dispatcher is killed with kill -9
// (its hooks with it) in the middle of delivery. The next command that
// records an event starts another, which delivers everything still in the
// outbox: every event at least once, in order per key; the only repeat is
// the run that was going on for a key when the kill came.
func TestHookAtLeastOnceAcrossKill9(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *procEnv) {
		const keys, perKey = 4, 5
		evDir := filepath.Join(t.TempDir(), "ev")
		if err := os.Mkdir(evDir, 0o700); err != nil {
			t.Fatal(err)
		}
		evFile, gate := filepath.Join(evDir, "events"), filepath.Join(evDir, "gate")
		// Each run takes a while, so a kill finds runs going on. The runs
		// of each key's last value wait for the gate, which opens after the
		// kill, before they write: however slow the writers below are
		// (a loaded machine) and however fast delivery, the kill comes
		// with events still to deliver.
		script := fmt.Sprintf(`ev=$(cat); case "$ev" in *'"value":"%d"'*) while [ ! -e %s ]; do sleep 0.05; done;; esac; printf '%%s\n' "$ev" >> %s; sleep 0.3`, perKey-1, gate, evFile)
		e.mustRun("hook", "add", "--on", "set", "--write", evDir, "--", "sh", "-c", script)
		for n := 0; n < perKey; n++ {
			for k := 0; k < keys; k++ {
				e.mustRun("set", fmt.Sprintf("k%d", k), strconv.Itoa(n))
			}
		}
		dir := e.stateDir()
		// Wait until the dispatcher has delivered some, not all.
		deadline := time.Now().Add(10 * time.Second)
		for len(readEvents(t, evFile)) < keys+2 {
			if time.Now().After(deadline) {
				t.Fatalf("only %d events delivered", len(readEvents(t, evFile)))
			}
			time.Sleep(10 * time.Millisecond)
		}
		pid, err := hooks.Holder(dir, hooks.DeliverLock)
		if err != nil || pid == 0 {
			t.Fatalf("no dispatcher holds the lock: %d, %v", pid, err)
		}
		killSession(pid)
		for i := 0; ; i++ {
			if p, _ := hooks.Holder(dir, hooks.DeliverLock); p == 0 {
				break
			}
			if i > 500 {
				t.Fatal("the lock outlived its kill -9ed holder")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := os.WriteFile(gate, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		before := len(readEvents(t, evFile))
		pending, _ := e.pending()
		if pending == 0 || before >= keys*perKey {
			t.Fatalf("killed too late: %d delivered, %d pending", before, pending)
		}
		t.Logf("killed dispatcher %d with %d of %d delivered, %d pending", pid, before, keys*perKey, pending)

		// The next event's writer starts delivery again.
		if _, stderr, code := e.run("--wait-hooks", "set", "other", "x"); code != 0 {
			t.Fatalf("set other: exit %d: %s", code, stderr)
		}
		e.waitDelivered(15 * time.Second)

		byKey := map[string][]int{}
		for _, e := range readEvents(t, evFile) {
			n, err := strconv.Atoi(e.Value)
			if e.Key == "other" {
				n, err = 0, nil
			}
			if err != nil || e.Event != "set" {
				t.Fatalf("event %+v", e)
			}
			byKey[e.Key] = append(byKey[e.Key], n)
		}
		if len(byKey["other"]) != 1 {
			t.Fatalf("other: %v", byKey["other"])
		}
		dups := 0
		for k := 0; k < keys; k++ {
			key := fmt.Sprintf("k%d", k)
			got := byKey[key]
			// 0 1 2 ... with at most one value repeated, right after itself.
			want, repeated := 0, false
			for _, n := range got {
				switch {
				case n == want:
					want++
				case n == want-1 && !repeated:
					repeated = true
					dups++
				default:
					t.Fatalf("%s: values delivered %v: out of order or repeated more than once", key, got)
				}
			}
			if want != perKey {
				t.Fatalf("%s: values delivered %v, want 0..%d each at least once", key, got, perKey-1)
			}
		}
		t.Logf("%d runs repeated after the kill", dups)
		if p, f := e.pending(); p != 0 || f != 0 {
			t.Fatalf("%d pending, %d failed", p, f)
		}
	})
}

// TestHookRetryEndToEnd: a hook that always fails is run once and retried
// 3 times with backoff, then given up and listed by 'hook log --failed'.
func TestHookRetryEndToEnd(t *testing.T) {
	e := newProcEnv(t, "sqlite")
	e.mustRun("hook", "add", "--on", "set", "--", "sh", "-c", "echo no >&2; exit 3")
	e.setenv("LIVEDICT_RETRY_BACKOFF=50ms")
	start := time.Now()
	if _, stderr, code := e.run("--wait-hooks", "set", "k", "v"); code != 0 || stderr != "" {
		t.Fatalf("set: exit %d: %q (a failing hook must not change the command's status)", code, stderr)
	}
	took := time.Since(start)
	// 50 + 100 + 200 ms of backoff at least.
	if took < 350*time.Millisecond {
		t.Fatalf("--wait-hooks returned after %v, before the retries could have run", took)
	}
	failed := e.mustRun("hook", "log", "--failed")
	if strings.Count(failed, "\n") != 1 {
		t.Fatalf("hook log --failed:\n%s", failed)
	}
	f := strings.Split(strings.TrimSuffix(failed, "\n"), "\t")
	if len(f) != 10 || f[1] != "1" || f[2] != "set" || f[3] != "main" || f[4] != "k" || f[5] != "failed" || f[6] != "3" || f[8] != "false" || !strings.Contains(f[9], "no") {
		t.Fatalf("failed run: %q", f)
	}
	all := e.mustRun("hook", "log")
	var st []string
	for _, line := range strings.Split(strings.TrimSuffix(all, "\n"), "\n") {
		st = append(st, strings.Split(line, "\t")[5])
	}
	if got := strings.Join(st, " "); got != "retry retry retry failed" {
		t.Fatalf("hook log statuses: %s\n%s", got, all)
	}
	// Retries wait longer each time.
	var times []time.Time
	out, _, _ := e.run("hook", "log", "--json")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			Time    string `json:"time"`
			Attempt int    `json:"attempt"`
			Status  string `json:"status"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("hook log --json: %q: %v", line, err)
		}
		tm, err := time.Parse(time.RFC3339Nano, r.Time)
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, tm)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for i := 1; i < len(times); i++ {
		if gap, min := times[i].Sub(times[i-1]), (50*time.Millisecond)<<(i-1); gap < min-time.Millisecond {
			t.Errorf("retry %d started %v after the run before, want at least %v", i, gap, min)
		}
	}
	if p, fl := e.pending(); p != 0 || fl != 1 {
		t.Fatalf("stats: %d pending, %d failed", p, fl)
	}
}

// TestDispatcherStoreReplaced: the SQLite store replaced while a detached
// dispatcher delivers from it. The writer of the new store's first event
// finds the delivery lock (in STORE.d, which stays) held and only wakes
// the dispatcher, which must not look for that event in the old file it
// has open, and exit: the event would wait for the next write. It hands
// over to a dispatcher of the new store instead.
func TestDispatcherStoreReplaced(t *testing.T) {
	s := newProcEnv(t, "sqlite")
	// The old store's hook runs until the test lets it end, so its
	// dispatcher surely holds the delivery lock when the new store's
	// first event comes.
	out := s.hookOut("set", `echo "$LIVEDICT_KEY" >> $OUT/old; while [ ! -e $OUT/release ]; do sleep 0.05; done`, "--timeout", "2m")
	s.mustRun("set", "a", "v")
	poll(t, 5*time.Second, "the old store's hook", func() bool { return len(fileLines(t, filepath.Join(out, "old"))) > 0 })
	old := s.holder(hooks.DeliverLock)
	if old == 0 {
		t.Fatal("no dispatcher holds the delivery lock while its hook runs")
	}
	other := s.withStore(filepath.Join(s.dir, "new.db"))
	other.mustRun("--no-hooks", "set", "x", "v")
	if err := os.Rename(filepath.Join(s.dir, "new.db"), s.path); err != nil {
		t.Fatal(err)
	}
	s.mustRun("hook", "add", "--on", "set", "--write", out, "--", "sh", "-c", `echo "$LIVEDICT_KEY" >> '`+out+`/new'`)
	if pid := s.holder(hooks.DeliverLock); pid != old {
		t.Fatalf("the old dispatcher (pid %d) let go before the new store's event (holder now %d): the hand-over is not tested", old, pid)
	}
	s.mustRun("set", "b", "v")
	if err := os.WriteFile(filepath.Join(out, "release"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "the new store's event delivered without another write", func() bool {
		return len(fileLines(t, filepath.Join(out, "new"))) == 1
	})
}
