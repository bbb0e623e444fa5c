package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/store/redistest"
)

// Chaos tests of the Redis backend with real processes on a real
// redis-server (each test starts its own, with the options it needs):
// the server crashing mid-run, livedict's connection killed mid-import,
// a daemon killed mid-delivery, three daemons sharing a flood of expiries.
//
// A "host" is an environment of its own (HOME, XDG dirs, the local state
// folder: locks, sockets, hooks' work dirs) on the one machine; hosts that
// run the same hooks share one hook_key_file, as an operator would copy it.

// newRedisEnv is the harness's procEnv on the store at url: its
// processes are the first host.
func newRedisEnv(t testing.TB, url string) *procEnv {
	t.Helper()
	e := newProcEnv(t, "sqlite") // its private folder and environment; its SQLite store stays unused
	e.url, e.backend, e.path = url, "redis", url
	e.setenv("XDG_STATE_HOME=" + filepath.Join(e.dir, "state"))
	return e
}

// redisStateDir is the host's local state folder for the store: the one
// folder livedict made under its XDG_STATE_HOME (none before it ran).
func (e *procEnv) redisStateDir() string {
	dirs, _ := filepath.Glob(filepath.Join(e.dir, "state", "livedict", "redis", "*"))
	if len(dirs) != 1 {
		return filepath.Join(e.dir, "state", "none")
	}
	return dirs[0]
}

// host is another host on e's store: a fresh HOME and state folder. With
// sharedKey its hook_key_file is e's, so it runs the hooks e signs.
func (e *procEnv) host(name string, sharedKey bool) *procEnv {
	e.tb.Helper()
	h := *e
	h.dir = filepath.Join(e.dir, name)
	if err := os.Mkdir(h.dir, 0o700); err != nil {
		e.tb.Fatal(err)
	}
	home := filepath.Join(h.dir, "home")
	h.env = append(slices.Clone(e.env), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"), "XDG_STATE_HOME="+filepath.Join(h.dir, "state"))
	if sharedKey {
		h.env = append(h.env, "LIVEDICT_HOOK_KEY_FILE="+filepath.Join(e.dir, "home", ".config", "livedict", "hook.key"))
	}
	e.tb.Cleanup(h.stopDispatcher)
	return &h
}

// The server crashes (SIGKILL) and comes back, twice, while 32 processes
// each run 50 'incr': with appendonly yes and appendfsync always, every
// increment acknowledged with exit 0 is in the final value; the ones that
// failed exit 3, and each of them counts at most once (its EXEC may have
// run before the connection died).
func TestRedisServerRestartDuringIncr(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "yes", "--appendfsync", "always")
	e := newRedisEnv(t, srv.URL+"?prefix=incr")
	e.setenv("LIVEDICT_CONNECT_TIMEOUT=10s")

	var acked, failed, started atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		parallel(32, func(i int) {
			for j := 0; j < 50; j++ {
				started.Add(1)
				_, errOut, code := e.run("--no-hooks", "incr", "n")
				switch code {
				case 0:
					acked.Add(1)
				case 3:
					failed.Add(1)
				default:
					t.Errorf("incr exited %d: %s", code, errOut)
				}
			}
		})
	}()
	for _, at := range []int64{300, 900} {
		waitProgress(t, time.Minute, "incrs to run", func() (int64, bool) { return started.Load(), started.Load() >= at })
		srv.Kill()
		time.Sleep(200 * time.Millisecond) // some incrs find no server
		srv.Start()
	}
	<-done

	out := strings.TrimSpace(e.mustRun("get", "n"))
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		t.Fatalf("get n: %q", out)
	}
	a, f := acked.Load(), failed.Load()
	t.Logf("final %d, acknowledged %d, failed %d", n, a, f)
	if a+f != 32*50 {
		t.Fatalf("%d acknowledged + %d failed != %d", a, f, 32*50)
	}
	if f == 0 {
		t.Fatal("no incr failed: the restarts did not happen mid-run")
	}
	if n < a || n > a+f {
		t.Fatalf("final value %d, want between the %d acknowledged and %d (acknowledged + failed)", n, a, a+f)
	}
}

// wait rides out a server that goes away and comes back: one warning,
// then exit 0 once the key is set; an outage that outlasts its --timeout
// is exit 3, the server's error.
func TestRedisWaitRidesOutRestart(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no")
	e := newRedisEnv(t, srv.URL+"?prefix=wait")
	e.mustRun("set", "other", "1") // the store exists: wait's first read works

	// wait subscribes to the store's changes once its first read found
	// nothing: then it sleeps, and an outage is one it must ride out.
	subscribed := func() bool {
		c := srv.Client()
		defer c.Close()
		n, err := c.PubSubNumSub(context.Background(), "{wait}:changes").Result()
		return err == nil && n["{wait}:changes"] > 0
	}
	p := e.start("wait", "ready", "--timeout", "60s")
	poll(t, 30*time.Second, "wait to subscribe", subscribed)
	srv.Kill()
	time.Sleep(time.Second) // reads in here fail
	srv.Start()
	time.Sleep(300 * time.Millisecond)
	e.mustRun("set", "ready", "1")
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("wait exited %d across the restart: %s", code, p.stderr.String())
	}

	// The first wait's subscription must be gone before the count
	// means the second's.
	poll(t, 30*time.Second, "the first wait's subscription to go", func() bool { return !subscribed() })
	p = e.start("wait", "never", "--timeout", "8s")
	poll(t, 30*time.Second, "wait to subscribe", subscribed)
	srv.Kill()
	code := p.wait(30 * time.Second)
	srv.Start()
	if code != 3 {
		t.Fatalf("wait with the server down past its timeout exited %d, want 3: %s", code, p.stderr.String())
	}
	if got := p.stderr.String(); !strings.Contains(got, "livedict: warning: ") || !strings.Contains(got, "still waiting") || !strings.Contains(got, "\nlivedict: error: redis ") {
		t.Errorf("stderr %q: want one warning, then the error", got)
	}
}

// lock --wait rides out a server that goes away and comes back, as wait
// does: one warning, then it takes the lease. Before, it exited 3 at the
// first read that failed, however long --wait was (found by the acl
// review).
func TestRedisLockWaitRidesOutRestart(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no")
	e := newRedisEnv(t, srv.URL+"?prefix=lockwait")
	e.mustRun("lock", "job", "--acquire", "--ttl", "10m") // held, by nobody running
	subscribed := func() bool {
		c := srv.Client()
		defer c.Close()
		n, err := c.PubSubNumSub(context.Background(), "{lockwait}:changes").Result()
		return err == nil && n["{lockwait}:changes"] > 0
	}
	p := e.start("lock", "job", "--wait", "60s", "--", "true")
	poll(t, 30*time.Second, "lock --wait to subscribe", subscribed)
	srv.Kill()
	time.Sleep(3 * time.Second) // its fallback reads once a second: they fail
	srv.Start()                 // without persistence: the lease is gone
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("lock --wait exited %d across the restart: %s", code, p.stderr.String())
	}
	if got := p.stderr.String(); strings.Count(got, "livedict: warning: ") != 1 || !strings.Contains(got, "still waiting") {
		t.Errorf("stderr %q: want one warning", got)
	}
}

// livedict's connection is killed (CLIENT KILL) again and again while it
// imports a large file: the import fails with exit 3 and leaves nothing,
// or it got through and left everything; never part of it.
func TestRedisClientKillMidImport(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no")
	e := newRedisEnv(t, srv.URL+"?prefix=imp")
	const n = 200_000
	var in bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, "{\"key\":\"k%06d\",\"value\":\"%s\"}\n", i, strings.Repeat("v", 40))
	}
	file := filepath.Join(e.dir, "in.jsonl")
	if err := os.WriteFile(file, in.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	e.mustRun("set", "before", "x") // a key the import must not disturb

	c := srv.Client()
	ctx := context.Background()
	// Kill every connection but ours once the import's connection is there
	// and has sent something, then keep killing until it ends.
	p := e.start("--no-hooks", "import", file)
	var kills int64
	for !p.exited() {
		k, err := c.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Int64()
		if err != nil {
			t.Fatal(err)
		}
		kills += k
		time.Sleep(2 * time.Millisecond)
	}
	code := p.wait(time.Minute)
	keys := strings.Count(e.mustRun("keys"), "\n")
	t.Logf("import exit %d after %d connection kills; %d keys", code, kills, keys)
	if kills == 0 {
		t.Fatal("the import's connection was never killed")
	}
	switch {
	case code != 0 && code != 3:
		t.Fatalf("import exit %d, want 3 (or 0):\n%s", code, p.stderr.String())
	case code == 0 && keys != n+1:
		t.Fatalf("import exit 0 but %d keys, want %d", keys, n+1)
	case keys != 1 && keys != n+1:
		t.Fatalf("import half-written: %d keys, want 1 (none imported) or %d (all)", keys, n+1)
	}
	if code == 3 && !strings.Contains(p.stderr.String(), srv.Sock) {
		t.Errorf("import's error does not name the server:\n%s", p.stderr.String())
	}
	// The store still works, and a second import succeeds whole.
	e.mustRun("--no-hooks", "import", "--replace", file)
	if keys := strings.Count(e.mustRun("keys"), "\n"); keys != n+1 {
		t.Fatalf("after a clean import: %d keys, want %d", keys, n+1)
	}
}

// Two daemons on two hosts deliver a set hook (each run takes a while);
// one is killed with -9 mid-delivery. The other takes its events over once
// their lease lapses: every event is delivered at least once, and each
// key's events in the order they happened. The events are written from a
// third host whose hook key does not verify the hook, so only the daemons
// run it.
func TestRedisDaemonKill9MidDelivery(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no")
	a := newRedisEnv(t, srv.URL+"?prefix=kill")
	// Claims lapse after 8 s instead of 30 (renewed every 2.7 s while a
	// hook runs): the takeover is the same, the wait shorter.
	a.setenv("LIVEDICT_TEST_CLAIM_LEASE=8s")
	out := a.hookOut("set", "sleep 0.2; cat >> $OUT/events")
	b := a.host("b", true)
	w := a.host("w", false)
	const keys, rounds = 5, 6
	for v := 1; v <= rounds; v++ {
		for k := 0; k < keys; k++ {
			w.mustRun("set", fmt.Sprintf("k%d", k), strconv.Itoa(v))
		}
	}
	if p, _ := w.pending(); p != keys*rounds {
		t.Fatalf("%d events pending, want %d", p, keys*rounds)
	}
	da := a.startDaemon()
	b.startDaemon()
	events := filepath.Join(out, "events")
	poll(t, time.Minute, "a few events delivered", func() bool { return len(readEvents(t, events)) >= 4 })
	da.signal(syscall.SIGKILL)
	da.wait(time.Minute)
	// B takes over what A held after the lease (8s).
	waitProgress(t, 2*time.Minute, "every event delivered", func() (int64, bool) {
		p, _ := b.pending()
		return -p, p == 0
	})
	seen := map[string][]int{}
	for _, ev := range readEvents(t, events) {
		v, err := strconv.Atoi(ev.Value)
		if err != nil || ev.Event != "set" {
			t.Fatalf("unexpected event %+v", ev)
		}
		seen[ev.Key] = append(seen[ev.Key], v)
	}
	for k := 0; k < keys; k++ {
		vs := seen[fmt.Sprintf("k%d", k)]
		if !slices.IsSorted(vs) {
			t.Errorf("k%d: events out of order: %v", k, vs)
		}
		if c := slices.Compact(slices.Clone(vs)); len(c) != rounds || c[0] != 1 || c[rounds-1] != rounds {
			t.Errorf("k%d: delivered %v, want each of 1..%d", k, vs, rounds)
		}
	}
	t.Logf("delivered %v", seen)
}

// Three daemons on three hosts, 100,000 keys that expire within one
// second, 10,000 of them matching an expire hook (batches of up to 1,000
// events a run): every key is reaped, and each hook event is delivered
// exactly once. (The 5 s target for the reaping is checked in
// scripts/bench.sh; here the bound is loose.)
func TestRedisThreeDaemonsExpiryFlood(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no")
	a := newRedisEnv(t, srv.URL+"?prefix=flood")
	out := a.hookOut("expire", `cat > $OUT/run.$$.$(date +%s%N)`, "--key", "h*", "--batch", "1000")
	hosts := []*procEnv{a, a.host("b", true), a.host("c", true)}
	for _, h := range hosts {
		h.startDaemon()
	}
	const n, hooked = 100_000, 10_000
	// Deadlines far enough out for the import to land first on a loaded
	// machine, spread over one second.
	at := time.Now().Add(20 * time.Second).UnixMilli()
	var in bytes.Buffer
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("k%06d", i)
		if i < hooked {
			key = fmt.Sprintf("h%06d", i)
		}
		fmt.Fprintf(&in, "{\"key\":%q,\"value\":\"%d\",\"expires_at_ms\":%d}\n", key, i, at+int64(i%1000))
	}
	file := filepath.Join(a.dir, "in.jsonl")
	if err := os.WriteFile(file, in.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	a.mustRun("import", file)
	if late := time.Now().UnixMilli() - at; late > 0 {
		t.Logf("the import ended %d ms after the first deadline", late)
	}
	// daemon status counts the keys still scheduled (reads hide expired
	// keys whether reaped or not).
	waitProgress(t, time.Minute, "every key reaped", func() (int64, bool) {
		k, err := strconv.ParseInt(a.status()["scheduled_keys"], 10, 64)
		if err != nil {
			t.Fatalf("daemon status: scheduled_keys: %v", err)
		}
		return -k, k == 0
	})
	t.Logf("no key scheduled %d ms after the first deadline", time.Now().UnixMilli()-at)
	// Reaped keys' events are recorded as they are claimed: wait until the
	// outbox is empty and every key's event ran.
	runs := func() map[string]int {
		files, _ := filepath.Glob(filepath.Join(out, "run.*"))
		count := map[string]int{}
		for _, f := range files {
			for _, ev := range readEvents(t, f) {
				if ev.Event != "expire" || !strings.HasPrefix(ev.Key, "h") {
					t.Fatalf("unexpected event %+v", ev)
				}
				count[ev.Key]++
			}
		}
		return count
	}
	var count map[string]int
	waitProgress(t, 2*time.Minute, "every hook event delivered", func() (int64, bool) {
		p, _ := a.pending()
		count = runs()
		return int64(len(count)) - p, p == 0 && len(count) >= hooked
	})
	t.Logf("every hook event delivered %d ms after the first deadline", time.Now().UnixMilli()-at)
	if k := a.mustRun("keys"); k != "" {
		t.Errorf("keys left: %q", k[:min(len(k), 200)])
	}
	dup := 0
	for _, c := range count {
		if c != 1 {
			dup++
		}
	}
	if len(count) != hooked || dup != 0 {
		log := strings.Split(a.mustRun("hook", "log", "--json"), "\n")
		t.Logf("the hook log ends with:\n%s", strings.Join(log[max(0, len(log)-5):], "\n"))
		t.Fatalf("%d keys' expire events delivered (want %d), %d of them more than once", len(count), hooked, dup)
	}
}

// A Redis transaction is optimistic: under contention it runs again after
// another writer's commit. What a command prints about its change must
// come from the attempt that committed, once: 16 processes × 10 incr on one
// key print each value from 1 to 160 exactly once, one line per run, and
// of 16 processes racing to getdel one key, exactly one prints it. (Output
// written inside the transaction printed 123 lines for 100 increments,
// with values twice, and getdel's value more than once.)
func TestRedisContendedOutputOnce(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no")
	e := newRedisEnv(t, srv.URL+"?prefix=once")
	const procs, each = 16, 10
	var mu sync.Mutex
	seen := map[string]int{}
	parallel(procs, func(int) {
		for range each {
			out, errOut, code := e.run("--no-hooks", "incr", "n")
			mu.Lock()
			if code != 0 || errOut != "" || strings.Count(out, "\n") != 1 {
				t.Errorf("incr: exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			seen[strings.TrimSpace(out)]++
			mu.Unlock()
		}
	})
	for i := 1; i <= procs*each; i++ {
		if n := seen[strconv.Itoa(i)]; n != 1 {
			t.Errorf("value %d printed %d times", i, n)
		}
	}
	for round := range 5 {
		e.mustRun("set", "job", "payload")
		var got atomic.Int64
		parallel(procs, func(int) {
			out, errOut, code := e.run("--no-hooks", "getdel", "job")
			switch {
			case code == 0 && out == "payload":
				got.Add(1)
			case code == 1 && out == "":
			default:
				t.Errorf("getdel: exit %d, stdout %q, stderr %q", code, out, errOut)
			}
		})
		if n := got.Load(); n != 1 {
			t.Errorf("round %d: the value went to %d getdels, want exactly 1", round, n)
		}
	}
}

// keys, list and export list each key once while other processes commit.
// A Redis transaction that meets another's commit runs again, and these
// collected their keys across the runs: with a writer going, 'keys' of a
// bucket of 5 printed 10 or 15 lines (each key two or three times) and
// export wrote lines twice, whenever a read after the listing (the next
// bucket of --all-buckets, the check for expired keys) saw the commit
// (found by the chaos review).
func TestRedisScansOnceUnderWriters(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no")
	e := newRedisEnv(t, srv.URL+"?prefix=scan")
	const n = 50
	for _, b := range []string{"a", "b"} {
		args := []string{"-b", b, "mset"}
		for i := range n {
			args = append(args, fmt.Sprintf("k%03d", i), "v")
		}
		e.mustRun(args...)
	}
	s, err := store.Open(e.url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop := make(chan struct{})
	var commits atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		// A writer committing as fast as it can, in a bucket of its
		// own, keys that expire at once: a command then reads the
		// store again after its listing, to see whether it must reap.
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Update(context.Background(), func(tx store.Tx) error {
				return tx.Put(store.Entry{Bucket: "other", Key: strconv.Itoa(i % 20), Value: []byte("x"),
					ExpiresAt: tx.Now() + 1})
			}); err == nil {
				commits.Add(1)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for round := 0; time.Now().Before(deadline); round++ {
		for _, cmd := range [][]string{{"-b", "a", "keys"}, {"-b", "a", "list"}, {"-b", "a", "export"},
			{"keys", "--all-buckets"}, {"export", "--all-buckets"}} {
			out, errOut, code := e.run(cmd...)
			if code != 0 {
				t.Fatalf("%s: exit %d, stderr %q", cmd, code, errOut)
			}
			seen := map[string]bool{}
			a := 0
			for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if seen[line] {
					t.Fatalf("round %d: %s printed %q twice (%d commits by the writer meanwhile)", round, cmd, line, commits.Load())
				}
				seen[line] = true
				if strings.HasPrefix(line, "k") || strings.HasPrefix(line, "a\t") || strings.Contains(line, `"bucket":"a"`) {
					a++
				}
			}
			if a != n {
				t.Fatalf("round %d: %s printed %d of bucket a's %d keys:\n%s", round, cmd, a, n, out)
			}
		}
	}
	t.Logf("%d commits by the writer", commits.Load())
}

// A password in the store URL never goes onto the argv of a livedict
// started in the background ('run --warm'/--stale's refresher, the hook
// dispatcher), which every local user can read (ps, /proc/PID/cmdline):
// it travels in the environment, only the user's to read. The refresher
// put the whole URL, password and all, after --store.
func TestRedisPasswordNotOnSpawnedArgv(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no", "--requirepass", "s3c:r/et@")
	e := newRedisEnv(t, "unix://:s3c%3Ar%2Fet%40@"+srv.Sock+"?prefix=pw")
	e.setenv("D=" + e.dir)
	// CMD's parent is the refresher: its argv is what ps shows.
	e.mustRun("run", "--warm", "--key", "k", "--", "sh", "-c", `tr '\0' ' ' < /proc/$PPID/cmdline > "$D/argv"; echo refreshed`)
	poll(t, 30*time.Second, "the refresh", func() bool {
		out, _, _ := e.run("-b", "run", "get", "k") // a 'run' here could run first, and the refresher skip
		return strings.Contains(out, "refreshed")
	})
	argv := e.file("argv")
	if !strings.Contains(argv, "--refresh") || strings.Contains(argv, "s3c") {
		t.Fatalf("the refresher's argv: %q", argv)
	}
}

// A password given only in the store URL reaches the background refresher
// of 'run --stale'/--warm in its environment (never argv), and the
// refresher ran CMD with that environment: a CMD run in the background had
// LIVEDICT_REDIS_PASSWORD, one run in the foreground did not, though the
// user never put the password in any environment. CMD's environment must
// hold no password either way.
func TestRedisPasswordNotInRefreshEnv(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no", "--requirepass", "s3c:r/et@")
	e := newRedisEnv(t, "unix://:s3c%3Ar%2Fet%40@"+srv.Sock+"?prefix=pw")
	e.setenv("D=" + e.dir)
	e.mustRun("run", "--key", "k", "--", "sh", "-c", `env > "$D/fg"; echo fg`)
	e.mustRun("run", "--warm", "--key", "k", "--", "sh", "-c", `env > "$D/bg"; echo refreshed`)
	poll(t, 30*time.Second, "the refresh", func() bool {
		out, _, _ := e.run("-b", "run", "get", "k")
		return strings.Contains(out, "refreshed")
	})
	for _, f := range []string{"fg", "bg"} {
		if env := e.file(f); strings.Contains(env, "s3c") || strings.Contains(env, "REDIS_PASSWORD") {
			t.Errorf("CMD run in the %s had the password in its environment:\n%s", f, env)
		}
	}
}

// Rotating the hook key is replacing hook_key_file's content on every host,
// 'hook enable' of the hooks kept, and a reload (README): the daemon's
// SIGHUP must take the new key. A reload applied to the delivery going on
// kept the old key until a restart, and every definition signed with the
// new one stayed refused.
func TestRedisDaemonReloadRotatesHookKey(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no")
	a := newRedisEnv(t, srv.URL+"?prefix=rotate")
	out := a.hookOut("set", "cat >> $OUT/events")
	events := filepath.Join(out, "events")
	d := a.startDaemon()
	delivered := func(key string) bool {
		for _, ev := range readEvents(t, events) {
			if ev.Key == key {
				return true
			}
		}
		return false
	}
	a.mustRun("set", "before", "v")
	poll(t, time.Minute, "the hook's first run", func() bool { return delivered("before") })

	keyFile := filepath.Join(a.dir, "home", ".config", "livedict", "hook.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("5a", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.mustRun("hook", "enable", "1") // signs it with the new key
	d.signal(syscall.SIGHUP)
	a.mustRun("set", "after", "v")
	poll(t, time.Minute, "the hook run after the key was rotated and the daemon reloaded", func() bool { return delivered("after") })
}
