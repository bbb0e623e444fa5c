package main

import (
	"bufio"
	"database/sql"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/hooks"
)

// Benchmarks of hooks and the daemon, on the real-process harness: real
// livedict processes, real hooks, real time. They run only with -bench
// (scripts/bench.sh runs them and checks the targets). Each reports what a
// user would ask about with b.ReportMetric: latency percentiles in ms
// (p50-ms, p99-ms, max-ms), peak memory in MiB, CPU in ms; ns/op is the
// harness's own cost and means little. Latencies are taken from the hook's
// own clock: a hook runs `date +%s%N` as its first act, so "hook start" is
// when the hook's command had started, sandbox and sh included.
//
//	go test -run '^$' -bench 'Hook|Daemon' -benchtime 20x .
//	go test -run '^$' -bench DaemonRSS -args -livedict.quick

var benchQuick = flag.Bool("livedict.quick", false, "hook and daemon benchmarks: smaller stores and shorter waits")

// sized is full in a full run and quick with -livedict.quick.
func sized(full, quick int) int {
	if *benchQuick {
		return quick
	}
	return full
}

// reportLatencies reports p50, p90, p99 and max of ds, in ms.
func reportLatencies(b *testing.B, ds []time.Duration) {
	b.Helper()
	if len(ds) == 0 {
		b.Fatal("no latencies measured")
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	rank := func(p float64) time.Duration { // nearest rank
		return ds[max(0, int(math.Ceil(p/100*float64(len(ds))))-1)]
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(rank(50)), "p50-ms")
	b.ReportMetric(ms(rank(90)), "p90-ms")
	b.ReportMetric(ms(rank(99)), "p99-ms")
	b.ReportMetric(ms(ds[len(ds)-1]), "max-ms")
}

// startStamp is a hook script that writes its start time (Unix ns) and the
// key, one line, to $OUT/starts.
const startStamp = `echo "$(date +%s%N) $LIVEDICT_KEY" >> $OUT/starts`

// hookStarts reads the lines startStamp wrote: start time per key (the
// first, when a key has several), and how many lines there are.
func hookStarts(b *testing.B, out string) (map[string]time.Time, int) {
	b.Helper()
	starts := map[string]time.Time{}
	lines := fileLines(b, filepath.Join(out, "starts"))
	for _, l := range lines {
		ns, key, ok := strings.Cut(l, " ")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil {
			b.Fatalf("hook start line %q", l)
		}
		if _, dup := starts[key]; !dup {
			starts[key] = time.Unix(0, n)
		}
	}
	return starts, len(lines)
}

// importTTLKeys imports n keys named prefix+index with empty values, their
// deadlines spread evenly over [start, start+span). It returns the deadline
// of each key.
func importTTLKeys(b *testing.B, e *procEnv, prefix string, n int, start time.Time, span time.Duration) map[string]time.Time {
	b.Helper()
	f, err := os.CreateTemp(e.dir, "keys-*.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriter(f)
	at := make(map[string]time.Time, n)
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("%s%07d", prefix, i)
		d := start.Add(time.Duration(int64(span) * int64(i) / int64(n))).Truncate(time.Millisecond)
		at[key] = d
		fmt.Fprintf(w, `{"bucket":"main","key":"%s","value_b64":"","expires_at_ms":%d}`+"\n", key, d.UnixMilli())
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	if got := strings.TrimSpace(e.mustRun("--no-hooks", "import", f.Name(), "-v")); got != strconv.Itoa(n) {
		b.Fatalf("import wrote %s keys, want %d", got, n)
	}
	return at
}

// BenchmarkHookRecord: what recording an event costs a writer. Each
// iteration times 'set k v --ttl 1h' on a store without hooks, on one with
// a matching hook, and on the first again (a drift in load lands on both
// sides). The test holds the hooked store's delivery lock and socket, as a
// busy deliverer would, so nothing is delivered meanwhile.
func BenchmarkHookRecord(b *testing.B) {
	plain, hooked := newProcEnv(b, "sqlite"), newProcEnv(b, "sqlite")
	lk, err := hooks.TryLock(hooked.stateDir(), hooks.DeliverLock)
	if err != nil {
		b.Fatal(err)
	}
	defer lk.Release()
	l, err := hooks.Listen(hooked.stateDir(), hooks.DeliverSocket)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for range l.C { // wake-ups a writer sends; nobody acts on them
		}
	}()
	hooked.mustRun("hook", "add", "--on", "set", "--key", "k*", "--", "true")
	timed := func(e *procEnv) time.Duration {
		begin := time.Now()
		e.mustRun("set", "k", "v", "--ttl", "1h")
		return time.Since(begin)
	}
	timed(plain)
	timed(hooked)
	before, _ := hooked.pending()
	var u, h []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u = append(u, timed(plain))
		h = append(h, timed(hooked))
		u = append(u, timed(plain))
	}
	b.StopTimer()
	if after, _ := hooked.pending(); after-before != int64(b.N) {
		b.Fatalf("%d events recorded by %d hooked sets", after-before, b.N)
	}
	med := func(ds []time.Duration) float64 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return float64(ds[len(ds)/2]) / float64(time.Millisecond)
	}
	mu, mh := med(u), med(h)
	b.ReportMetric(mu, "plain-p50-ms")
	b.ReportMetric(mh, "hooked-p50-ms")
	b.ReportMetric(mh/mu, "ratio")
}

// BenchmarkHookStart: with no daemon, from the moment 'set' exits to the
// moment its hook starts (the writer starts a detached dispatcher). Each
// iteration waits for the last dispatcher to leave first, so each one pays
// for a dispatcher's start.
func BenchmarkHookStart(b *testing.B) {
	e := newProcEnv(b, "sqlite")
	out := e.hookOut("set", startStamp)
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		poll(b, 15*time.Second, "the last dispatcher to exit", func() bool { return e.holder(hooks.DeliverLock) == 0 })
		key := fmt.Sprintf("k%d", i)
		e.mustRun("set", key, "v")
		exited := time.Now()
		var started time.Time
		pollEvery(b, time.Millisecond, 15*time.Second, key+"'s hook to start", func() bool {
			starts, _ := hookStarts(b, out)
			started = starts[key]
			return !started.IsZero()
		})
		lat = append(lat, started.Sub(exited))
	}
	b.StopTimer()
	reportLatencies(b, lat)
}

// BenchmarkDaemonPickup: with the daemon idle, another process sets a key
// due 200 ms later; from its deadline to the start of its expire hook.
func BenchmarkDaemonPickup(b *testing.B) {
	e := newProcEnv(b, "sqlite")
	out := e.hookOut("expire", startStamp)
	d := e.startDaemon()
	time.Sleep(500 * time.Millisecond) // let it settle into idling
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		key := fmt.Sprintf("p%d", i)
		at := time.Now().Add(200 * time.Millisecond).Truncate(time.Millisecond)
		e.mustRun("set", key, "v", "--at", at.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
		var started time.Time
		pollEvery(b, time.Millisecond, 10*time.Second, key+"'s expire hook", func() bool {
			d.running()
			starts, _ := hookStarts(b, out)
			started = starts[key]
			return !started.IsZero()
		})
		lat = append(lat, started.Sub(at))
		time.Sleep(100 * time.Millisecond)
	}
	b.StopTimer()
	reportLatencies(b, lat)
}

// BenchmarkDaemonExpireHooks: a burst of expiries, each with an expire
// hook: N keys (10,000; 2,000 with -livedict.quick) due one per ms, the
// daemon running with its default hook_concurrency. Every key's hook must
// start exactly once; reported: deadline → hook start percentiles, and
// when the last hook started after the last deadline (all-started-ms).
func BenchmarkDaemonExpireHooks(b *testing.B) {
	n := sized(10000, 2000)
	span := time.Duration(n) * time.Millisecond
	var lat []time.Duration
	var tail time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newProcEnv(b, "sqlite")
		out := e.hookOut("expire", startStamp)
		t0 := time.Now().Add(3 * time.Second)
		at := importTTLKeys(b, e, "k", n, t0, span)
		d := e.startDaemon()
		if late := time.Since(t0); late > 0 {
			b.Logf("the daemon was ready %v after the first deadline", late)
		}
		b.StartTimer()
		var lines int
		poll(b, span+5*time.Minute, "every expire hook to start", func() bool {
			d.running()
			_, lines = hookStarts(b, out)
			return lines >= n
		})
		b.StopTimer()
		starts, lines := hookStarts(b, out)
		last := t0.Add(span)
		for k, s := range starts {
			dl, ok := at[k]
			if !ok {
				b.Fatalf("a hook ran for %q, not a key of this benchmark", k)
			}
			lat = append(lat, s.Sub(dl))
			if s.Sub(last) > tail {
				tail = s.Sub(last)
			}
		}
		if len(starts) != n || lines != n {
			b.Fatalf("%d hook starts for %d distinct keys, want each of %d keys once", lines, len(starts), n)
		}
		d.signal(syscall.SIGTERM)
		if code := d.wait(time.Minute); code != 0 {
			b.Fatalf("daemon exit %d after SIGTERM", code)
		}
	}
	reportLatencies(b, lat)
	b.ReportMetric(float64(tail)/float64(time.Millisecond), "all-started-ms")
}

// BenchmarkDaemonMassExpiry: 100,000 keys (20,000 with -livedict.quick)
// due within one second, a tenth of them with an expire hook. Reported:
// how long after that second the store was empty (reaped-s) and the last
// hook started (hooks-s). Each hooked key's hook must run exactly once.
func BenchmarkDaemonMassExpiry(b *testing.B) {
	n := sized(100000, 20000)
	nh := n / 10
	var reaped, hooked time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newProcEnv(b, "sqlite")
		out := e.hookOut("expire", startStamp, "--key", "h*")
		sec := time.Now().Add(4 * time.Second).Truncate(time.Second)
		importTTLKeys(b, e, "h", nh, sec, time.Second)
		importTTLKeys(b, e, "x", n-nh, sec, time.Second)
		d := e.startDaemon()
		end := sec.Add(time.Second)
		b.StartTimer()
		poll(b, 2*time.Minute, "the store to be empty", func() bool {
			d.running()
			return sqliteCount(b, e, "SELECT count(*) FROM entries") == 0
		})
		reaped += time.Since(end)
		var lines int
		poll(b, 3*time.Minute, "every expire hook to start", func() bool {
			d.running()
			_, lines = hookStarts(b, out)
			return lines >= nh
		})
		hooked += time.Since(end)
		b.StopTimer()
		if starts, lines := hookStarts(b, out); len(starts) != nh || lines != nh {
			b.Fatalf("%d hook starts for %d distinct keys, want each of %d once", lines, len(starts), nh)
		}
		if keys := e.mustRun("--no-hooks", "keys"); keys != "" {
			b.Fatalf("keys left: %.100q", keys)
		}
		d.signal(syscall.SIGTERM)
		if code := d.wait(time.Minute); code != 0 {
			b.Fatalf("daemon exit %d after SIGTERM", code)
		}
	}
	b.ReportMetric(reaped.Seconds()/float64(b.N), "reaped-s")
	b.ReportMetric(hooked.Seconds()/float64(b.N), "hooks-s")
}

// BenchmarkDaemonIdle: the daemon's CPU while 1,000 keys are an hour away
// and nothing happens, for 60 s (10 s with -livedict.quick); reported per
// 60 s, from the on-CPU time the kernel counts per thread (schedstat).
func BenchmarkDaemonIdle(b *testing.B) {
	idle := time.Duration(sized(60, 10)) * time.Second
	var cpu time.Duration
	var switches int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newProcEnv(b, "sqlite")
		importTTLKeys(b, e, "i", 1000, time.Now().Add(time.Hour), time.Minute)
		d := e.startDaemon()
		time.Sleep(2 * time.Second) // past start-up
		b.StartTimer()
		c0, s0 := procCPU(b, d.pid())
		time.Sleep(idle)
		d.running()
		c1, s1 := procCPU(b, d.pid())
		cpu += c1 - c0
		switches += s1 - s0
		b.StopTimer()
		d.signal(syscall.SIGTERM)
		if code := d.wait(time.Minute); code != 0 {
			b.Fatalf("daemon exit %d after SIGTERM", code)
		}
	}
	per := float64(b.N) * idle.Seconds()
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)*60/per, "cpu-ms/60s")
	b.ReportMetric(float64(switches)/per, "ctxsw/s")
}

// procCPU sums the on-CPU time and context switches of pid's threads.
func procCPU(b *testing.B, pid int) (time.Duration, int64) {
	b.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("threads of %d: %v", pid, err)
	}
	var ns, sw int64
	for _, t := range tasks {
		if s, err := os.ReadFile(filepath.Join(t, "schedstat")); err == nil {
			v, _ := strconv.ParseInt(strings.Fields(string(s))[0], 10, 64)
			ns += v
		}
		for _, l := range fileLines(b, filepath.Join(t, "status")) {
			if name, v, ok := strings.Cut(l, ":"); ok && strings.HasSuffix(name, "ctxt_switches") {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				sw += n
			}
		}
	}
	return time.Duration(ns), sw
}

// BenchmarkDaemonRSS: the daemon's peak resident memory with 1,000,000 TTL
// keys (100,000 with -livedict.quick), 5,000 of them due in its first
// seconds, over 'daemon --duration 15s'; read from /proc/PID/status
// (VmHWM, the kernel's high-water mark of its own image).
func BenchmarkDaemonRSS(b *testing.B) {
	n := sized(1000000, 100000)
	const soon = 5000
	var peak int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newProcEnv(b, "sqlite")
		now := time.Now()
		importTTLKeys(b, e, "s", soon, now.Add(8*time.Second), 3*time.Second)
		importTTLKeys(b, e, "l", n-soon, now.Add(time.Minute), 59*time.Minute)
		b.StartTimer()
		d := e.start("daemon", "--duration", "15s")
		// The daemon's own high-water mark, read until it exits. Not the
		// rusage's ru_maxrss: Linux keeps there the larger of the image's
		// and the one the child had before its exec, a copy of this test
		// process (140-165 MiB after building a million keys, where the
		// daemon's own is under 35).
		for start := time.Now(); !d.exited() && time.Since(start) < 2*time.Minute; time.Sleep(50 * time.Millisecond) {
			if kib, ok := readStatusKiB(d.pid(), "VmHWM"); ok {
				peak = max(peak, kib)
			}
		}
		if code := d.wait(time.Minute); code != 0 {
			b.Fatalf("daemon --duration: exit %d\n%s", code, d.stderr.String())
		}
		b.StopTimer()
		if left := sqliteCount(b, e, "SELECT count(*) FROM entries"); left != int64(n-soon) {
			b.Fatalf("after the daemon: %d keys left, want %d (the soon-due ones reaped)", left, n-soon)
		}
	}
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
}

// readStatusKiB reads a "NAME: N kB" field of /proc/PID/status; ok is
// false once the process is gone.
func readStatusKiB(pid int, name string) (kib int64, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, found := strings.Cut(l, ":"); found && k == name {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// sqliteCount runs a count query on e's SQLite file directly, read-only:
// a livedict command would reap expired keys itself as it opens the store
// and spoil what is measured.
func sqliteCount(b *testing.B, e *procEnv, query string) int64 {
	b.Helper()
	db, err := sql.Open("sqlite", "file:"+e.path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(query).Scan(&n); err != nil {
		b.Fatalf("%s: %v", query, err)
	}
	return n
}
