package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/hooks"
)

// Hook throughput benchmarks (issue 12): how many per-event runs a second
// the daemon sustains, and what --batch buys. Run by scripts/bench.sh
// (section hooks); the targets are checked there.

// outboxLeft is how many events wait in the outbox (read-only, in this
// process: polling with a livedict process would spend the CPU measured).
func outboxLeft(b *testing.B, e *procEnv) int64 {
	return sqliteCount(b, e, "SELECT count(*) FROM internal WHERE bucket = '!outbox'")
}

// BenchmarkDaemonHookRate: N keys (2,000; 500 with -livedict.quick) due
// at the same instant, each with an expire hook that runs /bin/true, one
// event per run; the daemon with its default hook_concurrency. Reported:
// runs/s, events delivered per second from the deadline until the outbox
// is empty (the reap included), none failed.
func BenchmarkDaemonHookRate(b *testing.B) {
	n := sized(2000, 500)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newProcEnv(b, "sqlite")
		e.mustRun("hook", "add", "--on", "expire", "--", "/bin/true")
		t0 := time.Now().Add(3 * time.Second)
		importTTLKeys(b, e, "k", n, t0, time.Millisecond)
		d := e.startDaemon()
		time.Sleep(time.Until(t0))
		b.StartTimer()
		// Polled seldom: a reader of a SQLite store can make the daemon's
		// writes wait.
		pollEvery(b, 100*time.Millisecond, 5*time.Minute, "the outbox to empty", func() bool {
			d.running()
			return sqliteCount(b, e, "SELECT count(*) FROM entries") == 0 && outboxLeft(b, e) == 0
		})
		total += time.Since(t0)
		b.StopTimer()
		if p, f := e.pending(); p != 0 || f != 0 {
			b.Fatalf("%d pending, %d failed", p, f)
		}
		d.signal(syscall.SIGTERM)
		if code := d.wait(time.Minute); code != 0 {
			b.Fatalf("daemon exit %d after SIGTERM", code)
		}
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "runs/s")
}

// BenchmarkBareExecRate is the ceiling BenchmarkDaemonHookRate is read
// against: plain fork+exec of /bin/true from Go (os/exec), as many at once
// as the daemon runs hooks (hook_concurrency, 4), no sandbox, no store.
// Reported: runs/s.
func BenchmarkBareExecRate(b *testing.B) {
	n := sized(2000, 500)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		jobs := make(chan struct{}, n)
		for range n {
			jobs <- struct{}{}
		}
		close(jobs)
		var wg sync.WaitGroup
		t0 := time.Now()
		for range hooks.DefaultConcurrency {
			wg.Go(func() {
				for range jobs {
					if err := exec.Command("/bin/true").Run(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		total += time.Since(t0)
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "runs/s")
}

// batchStamp is a --batch hook script: each event line it reads, prefixed
// with the run's start time (Unix ns), written to a file of the run's own
// in $OUT (runs going at once would interleave their lines in one).
const batchStamp = `t=$(date +%s%N); sed "s/^/$t /" > $(mktemp $OUT/starts.XXXXXXXX)`

// batchStarts reads what batchStamp wrote: each key's run start (the
// first, when it has several) and how many lines there are.
func batchStarts(b *testing.B, out string) (map[string]time.Time, int) {
	b.Helper()
	starts := map[string]time.Time{}
	files, _ := filepath.Glob(filepath.Join(out, "starts.*"))
	var lines []string
	for _, f := range files {
		lines = append(lines, fileLines(b, f)...)
	}
	for _, l := range lines {
		ns, obj, ok := bytes.Cut([]byte(l), []byte(" "))
		t, err := strconv.ParseInt(string(ns), 10, 64)
		var ev hookEvent
		if !ok || err != nil || json.Unmarshal(obj, &ev) != nil {
			b.Fatalf("batch start line %.200q", l)
		}
		if _, dup := starts[ev.Key]; !dup {
			starts[ev.Key] = time.Unix(0, t)
		}
	}
	return starts, len(lines)
}

// lineCounter counts the lines of the runs' files in out without parsing
// them, reading again only the files whose size changed since the last
// count: the benchmark polls it every 10 ms, and reading every file each
// time (up to 14 MB for 100,000 events) took a fifth of this 2-core
// machine's CPU away from the daemon it measures.
type lineCounter struct {
	out   string
	files map[string][2]int64 // name → size when counted, lines
}

func (c *lineCounter) count() int {
	if c.files == nil {
		c.files = map[string][2]int64{}
	}
	names, _ := filepath.Glob(filepath.Join(c.out, "starts.*"))
	n := 0
	for _, f := range names {
		fi, err := os.Stat(f)
		if err != nil {
			continue
		}
		seen, ok := c.files[f]
		if !ok || seen[0] != fi.Size() {
			bs, _ := os.ReadFile(f)
			seen = [2]int64{int64(len(bs)), int64(bytes.Count(bs, []byte("\n")))}
			c.files[f] = seen
		}
		n += int(seen[1])
	}
	return n
}

// batchExpiry runs one daemon over n keys with deadlines spread evenly
// over span, an expire hook with --batch 1000 stamping each event, and
// checks every key's event was delivered exactly once. It returns each
// key's deadline → run start, and when after the last deadline every
// event had been handed to a run.
func batchExpiry(b *testing.B, n int, span time.Duration) (lat []time.Duration, all time.Duration, runs int) {
	b.StopTimer()
	e := newProcEnv(b, "sqlite")
	out := e.hookOut("expire", batchStamp, "--batch", "1000")
	t0 := time.Now().Add(4 * time.Second).Truncate(time.Second)
	at := importTTLKeys(b, e, "k", n, t0, span)
	d := e.startDaemon()
	counter := &lineCounter{out: out}
	b.StartTimer()
	poll(b, span+5*time.Minute, "every event to reach a run", func() bool {
		d.running()
		return counter.count() >= n
	})
	all = time.Since(t0.Add(span))
	b.StopTimer()
	files, _ := filepath.Glob(filepath.Join(out, "starts.*"))
	runs = len(files)
	starts, lines := batchStarts(b, out)
	if len(starts) != n || lines != n {
		b.Fatalf("%d events delivered for %d distinct keys, want each of %d once", lines, len(starts), n)
	}
	for k, s := range starts {
		dl, ok := at[k]
		if !ok {
			b.Fatalf("an event for %q, not a key of this benchmark", k)
		}
		lat = append(lat, s.Sub(dl))
	}
	poll(b, time.Minute, "the outbox to empty", func() bool { return outboxLeft(b, e) == 0 })
	if _, f := e.pending(); f != 0 {
		b.Fatalf("%d failed", f)
	}
	d.signal(syscall.SIGTERM)
	if code := d.wait(time.Minute); code != 0 {
		b.Fatalf("daemon exit %d after SIGTERM", code)
	}
	return lat, all, runs
}

// BenchmarkDaemonBatchExpire: 10,000 keys (2,000 with -livedict.quick)
// expiring evenly over 10 s (2 s), an expire hook with --batch 1000.
// Reported: deadline → start of the run that got the event, percentiles.
func BenchmarkDaemonBatchExpire(b *testing.B) {
	n, span := sized(10000, 2000), time.Duration(sized(10, 2))*time.Second
	var lat []time.Duration
	runs := 0
	for i := 0; i < b.N; i++ {
		l, _, r := batchExpiry(b, n, span)
		lat = append(lat, l...)
		runs += r
	}
	reportLatencies(b, lat)
	b.ReportMetric(float64(runs)/float64(b.N), "runs")
}

// BenchmarkDaemonBatchMass: 100,000 keys (20,000 with -livedict.quick)
// expiring within one second, every one with an expire hook with --batch
// 1000. Reported: delivered-s, how long after that second every event had
// been handed to a run (each exactly once).
func BenchmarkDaemonBatchMass(b *testing.B) {
	n := sized(100000, 20000)
	var total time.Duration
	runs := 0
	for i := 0; i < b.N; i++ {
		_, all, r := batchExpiry(b, n, time.Second)
		total += all
		runs += r
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "delivered-s")
	b.ReportMetric(float64(runs)/float64(b.N), "runs")
}
