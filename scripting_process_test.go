package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/store/redistest"
)

// Real-process tests of lock, run and wait: many livedict processes, real
// signals, real kill -9, on SQLite, the file backend and a real
// redis-server. Counts are small and time limits generous: a loaded
// 2-core machine must pass them; what they prove is "woken, not timed
// out" and "never two holders", not speed.

// scriptEnv is a store of each backend with its folder as $D, where the
// commands' sh -c scripts leave their marks. The redis subtest's store is
// a key prefix of its own on the server LIVEDICT_TEST_REDIS names (or on
// one started for the test): leases, fencing counters, run's cache and
// wait's wake-ups then all go through Redis, as between hosts.
func scriptEnv(t *testing.T, fn func(t *testing.T, e *procEnv)) {
	forEachBackend(t, func(t *testing.T, e *procEnv) {
		e.setenv("D=" + e.dir)
		fn(t, e)
	})
	t.Run("redis", func(t *testing.T) {
		e := redisProcEnv(t)
		e.setenv("D=" + e.dir)
		fn(t, e)
	})
}

// redisProcEnv is a procEnv (environment, private folder) whose store is
// a fresh key prefix on a real Redis server.
func redisProcEnv(t *testing.T) *procEnv {
	e := *newProcEnv(t, "sqlite") // the environment; its SQLite store goes unused
	e.backend, e.url, e.path = "redis", redistest.URL(t), ""
	return &e // no hooks here, so no dispatcher to stop
}

// file is the content of name in e.dir; "" when it does not exist (yet).
func (e *procEnv) file(name string) string {
	return string(readIfExists(e.tb, filepath.Join(e.dir, name)))
}

// TestLockRenewedPastTTL: a CMD running three times its TTL keeps the
// lease the whole time; a contender is refused while it runs.
func TestLockRenewedPastTTL(t *testing.T) {
	scriptEnv(t, func(t *testing.T, e *procEnv) {
		holder := e.start("lock", "job", "--ttl", "1s", "--", "sh", "-c", `touch "$D/started"; sleep 3`)
		poll(t, 30*time.Second, "the holder to start", func() bool { return fileExists(filepath.Join(e.dir, "started")) })
		time.Sleep(2 * time.Second) // two TTLs: only renewals keep it held
		if _, _, code := e.run("lock", "job", "--", "true"); code != 1 {
			t.Errorf("contender after 2 TTLs exited %d, want 1 (still held)", code)
		}
		if code := holder.wait(time.Minute); code != 0 {
			t.Errorf("holder exited %d", code)
		}
		if _, _, code := e.run("lock", "job", "--status"); code != 1 {
			t.Errorf("status after the holder ended: %d, want 1 (released)", code)
		}
	})
}

// TestLockLostStopsCMD: when a renewal finds the lease gone (deleted
// here), livedict says so and stops CMD rather than let two holders run.
func TestLockLostStopsCMD(t *testing.T) {
	scriptEnv(t, func(t *testing.T, e *procEnv) {
		p := e.start("lock", "job", "--ttl", "1s", "--", "sh", "-c", `touch "$D/started"; exec sleep 60`)
		poll(t, 30*time.Second, "the holder to start", func() bool { return fileExists(filepath.Join(e.dir, "started")) })
		e.run("del", "job")
		p.wait(time.Minute)
		// livedict's own exit status: -1, not 143, had it been killed itself.
		if code := p.cmd.ProcessState.ExitCode(); code != 128+int(syscall.SIGTERM) {
			t.Errorf("exit %d, want 143 (CMD stopped by SIGTERM)", code)
		}
		want := `livedict: error: lease on "job" lost while the command ran (another holder has it, or it was deleted); stopping it` + "\n"
		if got := p.stderr.String(); got != want {
			t.Errorf("stderr %q, want %q", got, want)
		}
	})
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// The lost-lease line names the lock escaped once, as every message does:
// it was escaped and then quoted with %q, so "l\x1b" read "l\\x1b" (found
// by the binsafe review).
func TestLockLostNameEscaped(t *testing.T) {
	e := newProcEnv(t, "sqlite")
	e.setenv("D=" + e.dir)
	p := e.start("lock", "l\"\x1b[2J", "--ttl", "1s", "--", "sh", "-c", `touch "$D/started"; exec sleep 60`)
	poll(t, 30*time.Second, "the holder to start", func() bool { return fileExists(filepath.Join(e.dir, "started")) })
	e.run("del", "--", "l\"\x1b[2J")
	p.wait(time.Minute)
	want := `livedict: error: lease on "l\"\x1b[2J" lost while the command ran (another holder has it, or it was deleted); stopping it` + "\n"
	if got := p.stderr.String(); got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
}

// TestLockKill9FreesAfterTTL: a holder killed with -9 cannot release; CMD
// gets SIGTERM from the kernel (it must not go on unleased), the lease
// frees itself at its TTL and a waiter gets it, woken by the expiry.
func TestLockKill9FreesAfterTTL(t *testing.T) {
	scriptEnv(t, func(t *testing.T, e *procEnv) {
		c := e.command("lock", "job", "--ttl", "2s", "--", "sh", "-c",
			`trap 'echo term > "$D/term"; exit 0' TERM; touch "$D/started"; while :; do sleep 0.05; done`)
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		holder := e.startCmd(c)
		defer syscall.Kill(-holder.pid(), syscall.SIGKILL) // whatever is left
		poll(t, 30*time.Second, "CMD to start", func() bool { return fileExists(filepath.Join(e.dir, "started")) })
		holder.signal(syscall.SIGKILL)
		holder.wait(time.Minute)
		poll(t, 30*time.Second, "CMD to get SIGTERM", func() bool { return fileExists(filepath.Join(e.dir, "term")) })
		out, _, code := e.run("lock", "job", "--wait", "60s", "--", "sh", "-c", "echo $LIVEDICT_LOCK_TOKEN")
		if code != 0 || strings.TrimSpace(out) != "2" {
			t.Fatalf("waiter after kill -9: exit %d, token %q; want 0 and 2", code, out)
		}
	})
}

// TestLockSemaphoreAndFencing: 16 contenders on a 3-holder semaphore are
// never more than 3 inside at once; on a plain lock, 8 processes × 6
// increments of a file give exactly 48, never two holders at once, and
// fencing tokens that strictly increase in holding order.
func TestLockSemaphoreAndFencing(t *testing.T) {
	scriptEnv(t, func(t *testing.T, e *procEnv) {
		os.Mkdir(filepath.Join(e.dir, "in"), 0o755)
		sem := `touch "$D/in/$LIVEDICT_LOCK_TOKEN"; ls "$D/in" | wc -l >> "$D/seen"; sleep 0.2; rm "$D/in/$LIVEDICT_LOCK_TOKEN"`
		parallel(16, func(int) {
			if _, errs, code := e.run("lock", "sem", "--limit", "3", "--wait", "2m", "--", "sh", "-c", sem); code != 0 {
				t.Errorf("semaphore contender exited %d: %s", code, errs)
			}
		})
		seen := strings.Fields(e.file("seen"))
		if len(seen) != 16 {
			t.Fatalf("%d of 16 contenders ran", len(seen))
		}
		for _, s := range seen {
			if n, _ := strconv.Atoi(s); n > 3 || n < 1 {
				t.Fatalf("%s holders at once on a --limit 3 semaphore", s)
			}
		}

		os.WriteFile(filepath.Join(e.dir, "c"), []byte("0\n"), 0o644)
		incr := `mkdir "$D/held" || echo overlap >> "$D/bad"; echo $LIVEDICT_LOCK_TOKEN >> "$D/tokens"; n=$(cat "$D/c"); echo $((n+1)) > "$D/c"; rmdir "$D/held"`
		parallel(8, func(int) {
			for i := 0; i < 6; i++ {
				if _, errs, code := e.run("lock", "counter", "--wait", "2m", "--", "sh", "-c", incr); code != 0 {
					t.Errorf("incrementer exited %d: %s", code, errs)
				}
			}
		})
		if got := strings.TrimSpace(e.file("c")); got != "48" {
			t.Errorf("counter = %s, want 48", got)
		}
		if bad := e.file("bad"); bad != "" {
			t.Errorf("two holders at once: %q", bad)
		}
		var last int64
		for _, s := range strings.Fields(e.file("tokens")) {
			n, _ := strconv.ParseInt(s, 10, 64)
			if n <= last {
				t.Fatalf("fencing token %d after %d: not strictly increasing", n, last)
			}
			last = n
		}
	})
}

// TestLockForwardsSignals: SIGTERM, SIGHUP and SIGQUIT sent to livedict
// reach CMD, whose own exit status comes back; the lease is released.
// (SIGQUIT, ^\, was Go's default: a goroutine dump, exit 2, and the lease
// held until its TTL ran out.)
func TestLockForwardsSignals(t *testing.T) {
	// Processes started under nohup (or by a runner that ignores SIGHUP)
	// inherit SIGHUP ignored, and then neither livedict nor sh may catch
	// it. Catching it here makes this process's children start with the
	// default, whatever started the tests.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	scriptEnv(t, func(t *testing.T, e *procEnv) {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
			os.Remove(filepath.Join(e.dir, "ready"))
			script := fmt.Sprintf(`trap 'echo got > "$D/got"; exit 3' %s; touch "$D/ready"; while :; do sleep 0.05; done`, strings.TrimPrefix(sigName(sig), "SIG"))
			p := e.start("lock", "job", "--", "sh", "-c", script)
			poll(t, 30*time.Second, "CMD to start", func() bool { return fileExists(filepath.Join(e.dir, "ready")) })
			p.signal(sig)
			if code := p.wait(time.Minute); code != 3 {
				t.Errorf("%v: exit %d, want CMD's 3", sig, code)
			}
			if _, _, code := e.run("lock", "job", "--status"); code != 1 {
				t.Errorf("%v: lease still held after CMD ended", sig)
			}
		}
	})
}

func sigName(s syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGHUP: "SIGHUP", syscall.SIGQUIT: "SIGQUIT"}[s]
}

// TestRunSingleFlight: 8 concurrent callers of a missing entry run CMD
// once; every one prints its result.
func TestRunSingleFlight(t *testing.T) {
	scriptEnv(t, func(t *testing.T, e *procEnv) {
		var mu sync.Mutex
		outs := map[string]int{}
		parallel(8, func(int) {
			out, errs, code := e.run("run", "--ttl", "1h", "--", "sh", "-c", `echo ran >> "$D/count"; sleep 1; echo result; exit 4`)
			if code != 4 {
				t.Errorf("caller exited %d: %s", code, errs)
			}
			mu.Lock()
			outs[out]++
			mu.Unlock()
		})
		if outs["result\n"] != 8 {
			t.Errorf("outputs: %v", outs)
		}
		if n := strings.Count(e.file("count"), "ran"); n != 1 {
			t.Errorf("CMD ran %d times for 8 concurrent callers, want 1", n)
		}
	})
}

// TestRunUncachedResultNoConvoy: when the leader's result is not cached
// (--discard-failures and CMD failed), the callers that waited for it run
// CMD at once, side by side, as bkt would; they used to elect one leader
// after another, each waiting for the last (8 callers of a failing 0.5s
// command took 4s, of a 10s one 80s). Here every run after the leader's
// waits until a third has started: callers queued one behind the other
// would never get there.
func TestRunUncachedResultNoConvoy(t *testing.T) {
	scriptEnv(t, func(t *testing.T, e *procEnv) {
		script := `echo ran >> "$D/count"
if [ "$(wc -l < "$D/count")" -eq 1 ]; then
	until [ -e "$D/go" ]; do sleep 0.05; done
else
	until [ "$(wc -l < "$D/count")" -ge 3 ] || [ -e "$D/stop" ]; do sleep 0.05; done
fi
echo failed; exit 4`
		var ps []*proc
		for range 6 {
			ps = append(ps, e.start("run", "--discard-failures", "--key", "k", "--", "sh", "-c", script))
		}
		poll(t, 30*time.Second, "the leader to start CMD", func() bool { return e.file("count") != "" })
		time.Sleep(time.Second) // the others find it running and wait
		os.WriteFile(filepath.Join(e.dir, "go"), nil, 0o644)
		deadline := time.Now().Add(30 * time.Second)
		for slices.ContainsFunc(ps, func(p *proc) bool { return !p.exited() }) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		stuck := slices.ContainsFunc(ps, func(p *proc) bool { return !p.exited() })
		runs := strings.Count(e.file("count"), "ran")
		os.WriteFile(filepath.Join(e.dir, "stop"), nil, 0o644) // let a convoy end
		for _, p := range ps {
			p.wait(30 * time.Second)
		}
		if stuck {
			t.Fatalf("callers of an uncached result ran CMD one after another (%d runs in 30s)", runs)
		}
		for _, p := range ps {
			if p.code != 4 {
				t.Errorf("caller exited %d: %s", p.code, p.stderr.String())
			}
		}
		if n := strings.Count(e.file("count"), "ran"); n != 6 {
			t.Errorf("CMD ran %d times for 6 callers of a failure not cached, want 6", n)
		}
	})
}

// TestRunStaleRefreshesInBackground: a stale entry is printed at once
// while a detached process, holding none of the caller's descriptors,
// refreshes it; the next call sees the refreshed result.
func TestRunStaleRefreshesInBackground(t *testing.T) {
	scriptEnv(t, func(t *testing.T, e *procEnv) {
		// CMD blocks until the gate file exists: a caller that waited for
		// the refresh (or for its stdout to close) would hang.
		cmd := []string{"run", "--ttl", "1h", "--stale", "1s", "--key", "k", "--", "sh", "-c",
			`while [ ! -e "$D/gate" ]; do sleep 0.05; done; echo x >> "$D/count"; wc -l < "$D/count"`}
		os.WriteFile(filepath.Join(e.dir, "gate"), nil, 0o644)
		if out, _, code := e.run(cmd...); code != 0 || strings.TrimSpace(out) != "1" {
			t.Fatalf("first run: %q %d", out, code)
		}
		os.Remove(filepath.Join(e.dir, "gate"))
		time.Sleep(1100 * time.Millisecond)
		if out, _, code := e.run(cmd...); code != 0 || strings.TrimSpace(out) != "1" {
			t.Fatalf("stale run: %q %d, want the stale 1 at once", out, code)
		}
		os.WriteFile(filepath.Join(e.dir, "gate"), nil, 0o644)
		poll(t, 30*time.Second, "the background refresh", func() bool {
			out, _, _ := e.run("run", "--ttl", "1h", "--key", "k", "--", "false")
			return strings.TrimSpace(out) == "2"
		})
	})
}

// TestWaitWakes: wait returns 0 (woken, not timed out) after another
// process's set, delete and an expiry, and lock --wait takes a lease as its
// holder releases it, on every backend. The waiters' once-a-second
// re-check is made 10 minutes here, so only a wake-up ends their wait in
// time (one hidden by a store wrapper once cost every waiter up to a
// second, unnoticed).
func TestWaitWakes(t *testing.T) {
	scriptEnv(t, func(t *testing.T, e *procEnv) {
		e.setenv("LIVEDICT_TEST_WAKE_FALLBACK=10m")
		cases := []struct {
			name  string
			args  []string
			setup []string
			act   []string
		}{
			{"set", []string{"wait", "k", "--timeout", "60s"}, nil, []string{"set", "k", "v"}},
			{"delete", []string{"wait", "k", "--gone", "--timeout", "60s"}, nil, []string{"del", "k"}},
			{"expiry", []string{"wait", "e", "--gone", "--timeout", "60s"}, []string{"set", "e", "v", "--ttl", "1500ms"}, nil},
			{"new bucket", []string{"-b", "nb", "wait", "k", "--timeout", "60s"}, nil, []string{"-b", "nb", "set", "k", "v"}},
		}
		for _, tc := range cases {
			if tc.setup != nil {
				e.run(tc.setup...)
			}
			began := time.Now()
			p := e.start(tc.args...)
			time.Sleep(300 * time.Millisecond) // let it go to sleep first
			if tc.act != nil {
				if _, errs, code := e.run(tc.act...); code != 0 {
					t.Fatalf("%s: %s", tc.name, errs)
				}
			}
			if code := p.wait(time.Minute); code != 0 {
				t.Errorf("%s: wait exited %d, want 0", tc.name, code)
			}
			// Its last look at its timeout would find the key too.
			if took := p.ended.Sub(began); took > 30*time.Second {
				t.Errorf("%s: wait returned after %v: not woken, it looked again at its 60s timeout", tc.name, took)
			}
		}
		// The holder's lease lasts 10 minutes: only its release, not its
		// deadline, can let the waiter in within its minute.
		holder := e.start("lock", "l", "--ttl", "10m", "--", "sleep", "1")
		time.Sleep(300 * time.Millisecond)
		began := time.Now()
		if _, errs, code := e.run("lock", "l", "--wait", "1m", "--", "true"); code != 0 {
			t.Errorf("lock --wait exited %d, want 0 once the holder released: %s", code, errs)
		}
		if took := time.Since(began); took > 30*time.Second {
			t.Errorf("lock --wait took the lease after %v: not woken by the release, it looked again at its 1m limit", took)
		}
		holder.wait(time.Minute)
		// Interrupted: 130 from the shell's point of view (killed by SIGINT).
		p := e.start("wait", "never")
		time.Sleep(200 * time.Millisecond)
		p.signal(syscall.SIGINT)
		p.wait(time.Minute)
		if ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGINT {
			t.Errorf("wait after SIGINT: %v", p.cmd.ProcessState)
		}
	})
}

// BenchmarkWaitWakeup measures how long after another process's set has
// returned a sleeping `wait` exits (the median is reported as
// median-ms). scripts/bench.sh (section scripting) runs it.
func BenchmarkWaitWakeup(b *testing.B) {
	e := newProcEnv(b, "sqlite")
	if s := os.Getenv("LIVEDICT_BENCH_STORE"); s != "" {
		e = e.withStore(s)
	}
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		key := "k" + strconv.Itoa(i)
		w := e.start("wait", key, "--timeout", "60s")
		time.Sleep(150 * time.Millisecond) // asleep on inotify by now
		e.mustRun("set", key, "v")
		set := time.Now()
		if code := w.wait(time.Minute); code != 0 {
			b.Fatalf("wait exited %d", code)
		}
		lat = append(lat, w.ended.Sub(set))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
}
