package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/store/redistest"
)

// Benchmarks of daemons on a Redis store (issue 10's targets), on the same
// real-process harness as process_bench_test.go: real livedict daemons,
// real hooks, a real redis-server. The server is the one LIVEDICT_TEST_REDIS
// names (scripts/bench.sh points it at its own), else one started here;
// each benchmark has a key prefix of its own.
//
//	go test -run '^$' -bench RedisDaemon -benchtime 1x . -args -livedict.quick

// newRedisHost is a livedict "host" on the Redis store at url: processes
// get an XDG_STATE_HOME of their own (where a Redis store's daemon and
// delivery locks live, so each host runs its own daemon) and share HOME
// with the other hosts made from the same base dir, so they share the
// hook_key_file that signs and verifies hook definitions.
func newRedisHost(tb testing.TB, dir, url, host string) *procEnv {
	tb.Helper()
	if _, err := livedictPath(); err != nil {
		tb.Fatal(err)
	}
	e := &procEnv{tb: tb, backend: "redis", url: url, path: url, dir: dir}
	home := filepath.Join(dir, "home")
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "LIVEDICT_") || strings.HasPrefix(name, "XDG_") || name == "HOME" {
			continue
		}
		e.env = append(e.env, kv)
	}
	state := filepath.Join(dir, "state-"+host)
	if err := os.MkdirAll(state, 0o700); err != nil {
		tb.Fatal(err)
	}
	e.env = append(e.env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"), "XDG_STATE_HOME="+state,
		"LIVEDICT_BUSY_TIMEOUT=60s", "LIVEDICT_CONNECT_TIMEOUT=30s")
	return e
}

// startRedisDaemon starts 'livedict daemon' on host e and waits until it
// says it started and has had time to read its schedule and subscribe.
func startRedisDaemon(e *procEnv, settle time.Duration) *proc {
	e.tb.Helper()
	p := e.start("daemon")
	poll(e.tb, time.Minute, "the daemon to start", func() bool {
		p.running()
		return strings.Contains(p.stderr.String(), "daemon started")
	})
	time.Sleep(settle)
	p.running()
	return p
}

// importRedisKeys imports n keys named prefix+index with value v into
// bucket, their deadlines at start, start+step, start+2*step, ... It
// returns each key's deadline.
func importRedisKeys(b *testing.B, e *procEnv, bucket, prefix, v string, n int, start time.Time, step time.Duration) map[string]time.Time {
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
		d := start.Add(time.Duration(i) * step).Truncate(time.Millisecond)
		at[key] = d
		fmt.Fprintf(w, `{"bucket":"%s","key":"%s","value":"%s","expires_at_ms":%d}`+"\n", bucket, key, v, d.UnixMilli())
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

// BenchmarkRedisDaemonExpire: three daemons (three "hosts") on one Redis
// store, keys expiring one at a time, 300 ms apart (200 keys; 60 with
// -livedict.quick), each with an expire hook; from a key's deadline to
// the start of its hook, whichever daemon reaped it and whichever ran the
// hook. Every key's hook must start; runs beyond one per key are reported
// (dup-runs).
func BenchmarkRedisDaemonExpire(b *testing.B) {
	// 300 ms apart, as BenchmarkDaemonPickup's keys: a hook takes 0.2-0.8 s
	// to run on a loaded 2-core machine, so at 50 ms apart they queue
	// behind each other and the median measures the queue.
	const daemons, step = 3, 300 * time.Millisecond
	n := sized(200, 60)
	var lat, reap []time.Duration
	dups, events := 0, 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir, url := b.TempDir(), redistest.URL(b)
		hosts := make([]*procEnv, daemons)
		for h := range hosts {
			hosts[h] = newRedisHost(b, dir, url, strconv.Itoa(h))
		}
		// startStamp, then the event as the hook got it (to tell a
		// second delivery of one event from a second event).
		out := hosts[0].hookOut("expire", startStamp+`; { cat; echo; } >> $OUT/events`)
		ds := make([]*proc, daemons)
		for h, e := range hosts {
			ds[h] = startRedisDaemon(e, 0)
		}
		time.Sleep(time.Second) // past start-up: every daemon idle
		t0 := time.Now().Add(2 * time.Second)
		at := importRedisKeys(b, hosts[0], "main", "k", "v", n, t0, step)
		b.StartTimer()
		poll(b, time.Duration(n)*step+2*time.Minute, "every key's expire hook to start", func() bool {
			for _, d := range ds {
				d.running()
			}
			starts, _ := hookStarts(b, out)
			return len(starts) >= n
		})
		b.StopTimer()
		time.Sleep(time.Second) // a second run of any hook would show now
		starts, lines := hookStarts(b, out)
		// The event's time is when a daemon reaped the key: deadline →
		// reap is the daemons' part, reap → hook start delivery's and
		// the sandbox's (which a loaded machine slows most).
		seen := map[string]bool{}
		for _, l := range fileLines(b, filepath.Join(out, "events")) {
			var ev hookEvent
			if l == "" || json.Unmarshal([]byte(l), &ev) != nil || seen[ev.Key] {
				continue
			}
			seen[ev.Key] = true
			if dl, ok := at[ev.Key]; ok {
				reap = append(reap, parseEventTime(b, ev.Time).Sub(dl))
			}
		}
		for k, s := range starts {
			dl, ok := at[k]
			if !ok {
				b.Fatalf("a hook ran for %q, not a key of this benchmark", k)
			}
			lat = append(lat, s.Sub(dl))
		}
		if len(starts) != n {
			b.Fatalf("%d hook starts for %d distinct keys, want each of %d keys", lines, len(starts), n)
		}
		if lines != n {
			// Delivery is at least once; more than once with no daemon
			// dying is reported (dup-runs), not hidden.
			var twice []string
			for _, l := range fileLines(b, filepath.Join(out, "events")) {
				for k, s := range starts {
					if strings.Contains(l, `"key":"`+k+`"`) && !s.IsZero() && countStarts(b, out, k) > 1 {
						twice = append(twice, l)
					}
				}
			}
			b.Logf("%d hook starts for %d keys; the events of keys run more than once:\n%s", lines, n, strings.Join(twice, "\n"))
		}
		dups += lines - n
		events += recordedEvents(b, url)
		for _, d := range ds {
			d.signal(syscall.SIGTERM)
		}
		for _, d := range ds {
			if code := d.wait(time.Minute); code != 0 {
				b.Fatalf("daemon exit %d after SIGTERM", code)
			}
		}
	}
	reportLatencies(b, lat)
	b.ReportMetric(float64(dups)/float64(b.N), "dup-runs")
	// Beyond one per key: the same key's expiry recorded twice (not a
	// second run of one event).
	b.ReportMetric(float64(events-b.N*n)/float64(b.N), "dup-events")
	if len(reap) > 0 {
		sort.Slice(reap, func(i, j int) bool { return reap[i] < reap[j] })
		b.ReportMetric(float64(reap[len(reap)/2])/float64(time.Millisecond), "reap-p50-ms")
		b.ReportMetric(float64(reap[len(reap)*9/10])/float64(time.Millisecond), "reap-p90-ms")
	}
}

// BenchmarkRedisDaemonIdle: one daemon on a Redis store of 1,000,000 TTL
// keys (100,000 with -livedict.quick), every deadline hours away, nothing
// else happening, for 60 s (10 s with -livedict.quick). Reported: CPU
// (utime+stime from /proc/PID/stat) per 60 s of idling, from when a
// second passed with no CPU tick; the CPU it spent until then (start-up:
// reading its schedule); and its peak RSS (VmHWM).
func BenchmarkRedisDaemonIdle(b *testing.B) {
	n := sized(1000000, 100000)
	idle := time.Duration(sized(60, 10)) * time.Second
	var cpu, startCPU time.Duration
	var hwm int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir, url := b.TempDir(), redistest.URL(b)
		e := newRedisHost(b, dir, url, "0")
		// In buckets of 100,000 keys, one import each: a 1M-key import
		// is one MULTI/EXEC, longer to send than the client's write
		// timeout on a loaded machine.
		const per = 100000
		for k := 0; k*per < n; k++ {
			importRedisKeys(b, e, fmt.Sprintf("i%d", k), fmt.Sprintf("k%d-", k), "value-of-about-twenty", min(per, n-k*per),
				time.Now().Add(2*time.Hour), time.Millisecond)
		}
		d := startRedisDaemon(e, 0)
		// Past start-up (reading the schedule): until a second passes
		// with no CPU tick.
		c0 := statCPU(b, d.pid())
		for settle := 0; settle < 300; settle++ {
			time.Sleep(time.Second)
			d.running()
			c := statCPU(b, d.pid())
			if c == c0 {
				break
			}
			c0 = c
		}
		b.StartTimer()
		time.Sleep(idle)
		d.running()
		c1 := statCPU(b, d.pid())
		b.StopTimer()
		cpu += c1 - c0
		startCPU = max(startCPU, c0)
		hwm = max(hwm, statusKiB(b, d.pid(), "VmHWM"))
		d.signal(syscall.SIGTERM)
		if code := d.wait(time.Minute); code != 0 {
			b.Fatalf("daemon exit %d after SIGTERM", code)
		}
	}
	per := float64(b.N) * idle.Seconds()
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)*60/per, "cpu-ms/60s")
	b.ReportMetric(float64(startCPU)/float64(time.Millisecond), "start-cpu-ms")
	b.ReportMetric(float64(hwm)/1024, "VmHWM-MiB")
}

// statCPU is pid's user+system CPU time from /proc/PID/stat (clock ticks
// of 10 ms, USER_HZ being 100 on Linux).
func statCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		b.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// statusKiB is a "Name: N kB" field of /proc/PID/status.
func statusKiB(b *testing.B, pid int, name string) int64 {
	b.Helper()
	for _, l := range fileLines(b, fmt.Sprintf("/proc/%d/status", pid)) {
		if k, v, ok := strings.Cut(l, ":"); ok && k == name {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("/proc/%d/status: %q", pid, l)
			}
			return n
		}
	}
	b.Fatalf("/proc/%d/status: no %s", pid, name)
	return 0
}

// countStarts is how many times startStamp recorded key in out.
func countStarts(b *testing.B, out, key string) int {
	n := 0
	for _, l := range fileLines(b, filepath.Join(out, "starts")) {
		if strings.HasSuffix(l, " "+key) {
			n++
		}
	}
	return n
}

// recordedEvents is how many hook events the store at url has recorded
// (the outbox's sequence counter).
func recordedEvents(b *testing.B, url string) int {
	b.Helper()
	s, err := store.Open(url, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var n int
	err = s.View(context.Background(), func(tx store.Tx) error {
		e, ok, err := tx.Get("!meta", "event")
		if err != nil || !ok {
			return err
		}
		n, err = strconv.Atoi(string(e.Value))
		return err
	})
	if err != nil {
		b.Fatalf("reading the event counter: %v", err)
	}
	return n
}
