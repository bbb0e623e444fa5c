package main

import (
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/store/redistest"
)

// BenchmarkRedisDaemonsMassExpiry: three daemons on three hosts sharing a
// Redis store; 100,000 keys (20,000 with -livedict.quick) due within one
// second, a tenth of them matching an expire hook that takes batches of
// up to 1,000 events. reaped-s: from the end of that second until no key
// is scheduled any more (daemon status); hooks-s: until every hook event
// ran, each once (scripts/bench.sh, redis_daemons: target 5 s for reaped-s).
func BenchmarkRedisDaemonsMassExpiry(b *testing.B) {
	n := sized(100000, 20000)
	nh := n / 10
	var reaped, hooked time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		srv := redistest.StartServer(b, "--save", "", "--appendonly", "no")
		e := newRedisEnv(b, srv.URL+"?prefix=bench"+strconv.Itoa(i))
		out := e.hookOut("expire", `cat > $OUT/run.$$.$(date +%s%N)`, "--key", "h*", "--batch", "1000")
		sec := time.Now().Add(10 * time.Second).Truncate(time.Second)
		importTTLKeys(b, e, "h", nh, sec, time.Second)
		importTTLKeys(b, e, "x", n-nh, sec, time.Second)
		var ds []*proc
		for _, h := range []*procEnv{e, e.host("b", true), e.host("c", true)} {
			ds = append(ds, h.startDaemon())
		}
		end := sec.Add(time.Second)
		if time.Now().After(sec) {
			b.Logf("set-up ended %v after the first deadline", time.Since(sec))
		}
		b.StartTimer()
		pollEvery(b, 50*time.Millisecond, 2*time.Minute, "no key scheduled", func() bool {
			for _, d := range ds {
				d.running()
			}
			return e.status()["scheduled_keys"] == "0"
		})
		reaped += time.Since(end)
		count := map[string]int{}
		pollEvery(b, 100*time.Millisecond, 5*time.Minute, "every expire hook event", func() bool {
			files, _ := filepath.Glob(filepath.Join(out, "run.*"))
			count = map[string]int{}
			for _, f := range files {
				for _, ev := range readEvents(b, f) {
					count[ev.Key]++
				}
			}
			return len(count) >= nh
		})
		hooked += time.Since(end)
		b.StopTimer()
		for k, c := range count {
			if c != 1 {
				b.Fatalf("%s: its expire event ran %d times", k, c)
			}
		}
		if keys := e.mustRun("--no-hooks", "keys"); keys != "" {
			b.Fatalf("keys left: %.100q", keys)
		}
		for _, d := range ds {
			d.signal(syscall.SIGTERM)
			if code := d.wait(time.Minute); code != 0 {
				b.Fatalf("daemon exit %d after SIGTERM", code)
			}
		}
	}
	b.ReportMetric(reaped.Seconds()/float64(b.N), "reaped-s")
	b.ReportMetric(hooked.Seconds()/float64(b.N), "hooks-s")
}
