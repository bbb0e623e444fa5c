package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests of record check batch delivery (hook add --batch) with real
// livedict processes and real hooks: each event exactly once, in order per
// key, JSON Lines with LIVEDICT_EVENTS as the count, retries per batch.

// batchHook adds a --batch hook that appends its stdin to $OUT/events and
// "LIVEDICT_EVENTS lines-read" to $OUT/counts, after script (run first).
func (e *procEnv) batchHook(t *testing.T, batch int, script string, extra ...string) string {
	t.Helper()
	out := filepath.Join(e.dir, "batch-out")
	if err := os.MkdirAll(out, 0o700); err != nil {
		t.Fatal(err)
	}
	body := script + `n=$(tee -a "$OUT/events" | wc -l); echo "$LIVEDICT_EVENTS $n" >> "$OUT/counts"`
	args := append([]string{"hook", "add", "--on", "set", "--batch", strconv.Itoa(batch), "--write", out}, extra...)
	args = append(args, "--", "sh", "-c", strings.ReplaceAll(body, "$OUT", out))
	e.mustRun(args...)
	return out
}

// batchCounts reads $OUT/counts: the events each run was given and read.
func batchCounts(t *testing.T, out string) []int {
	t.Helper()
	var sizes []int
	for _, l := range fileLines(t, filepath.Join(out, "counts")) {
		f := strings.Fields(l)
		if len(f) != 2 || f[0] != f[1] {
			t.Fatalf("a run got LIVEDICT_EVENTS and stdin lines %q, want equal", l)
		}
		n, _ := strconv.Atoi(f[0])
		sizes = append(sizes, n)
	}
	return sizes
}

// TestHookBatchExactlyOnceInOrder: 40 keys set 5 times each by 5 msets;
// a --batch 16 hook gets every event once, each key's values in order,
// in runs of at most 16 events, fewer runs than events.
func TestHookBatchExactlyOnceInOrder(t *testing.T) {
	const keys, rounds, batch = 40, 5, 16
	forEachBackend(t, func(t *testing.T, e *procEnv) {
		out := e.batchHook(t, batch, "")
		for r := 0; r < rounds; r++ {
			args := []string{"mset"}
			for k := 0; k < keys; k++ {
				args = append(args, fmt.Sprintf("k%02d", k), fmt.Sprintf("v%d", r))
			}
			e.mustRun(args...)
		}
		e.waitDelivered(30 * time.Second)
		evs := readEvents(t, filepath.Join(out, "events"))
		if len(evs) != keys*rounds {
			t.Fatalf("%d events delivered, want %d", len(evs), keys*rounds)
		}
		got := map[string][]string{}
		for _, ev := range evs {
			if ev.Event != "set" || ev.HookID != 1 {
				t.Fatalf("event %+v", ev)
			}
			got[ev.Key] = append(got[ev.Key], ev.Value)
		}
		for k := 0; k < keys; k++ {
			key := fmt.Sprintf("k%02d", k)
			if v := strings.Join(got[key], " "); v != "v0 v1 v2 v3 v4" {
				t.Errorf("%s: values delivered %q, want each once, in order", key, v)
			}
		}
		sizes := batchCounts(t, out)
		total, largest := 0, 0
		for _, n := range sizes {
			total += n
			largest = max(largest, n)
			if n < 1 || n > batch {
				t.Errorf("a run of %d events, want 1 to %d", n, batch)
			}
		}
		if total != keys*rounds || len(sizes) >= keys*rounds || largest < 2 {
			t.Fatalf("runs of %v: want %d events in fewer runs, some batched", sizes, keys*rounds)
		}
		log := e.mustRun("hook", "log", "-n", "0")
		if n := strings.Count(log, "\tok\t"); n != len(sizes) || strings.Count(log, "\n") != len(sizes) {
			t.Fatalf("hook log: %d ok of %d lines, want one per run (%d):\n%s", n, strings.Count(log, "\n"), len(sizes), log)
		}
		if p, f := e.pending(); p != 0 || f != 0 {
			t.Fatalf("stats: %d pending, %d failed", p, f)
		}
	})
}

// TestHookBatchRetry: a batch whose run fails is retried as a batch and
// its events are delivered once, by the run that succeeded; a batch that
// always fails is given up after its retries, every event counted failed,
// one log entry per run.
func TestHookBatchRetry(t *testing.T) {
	e := newProcEnv(t, "sqlite")
	e.setenv("LIVEDICT_RETRY_BACKOFF=50ms")
	mark := filepath.Join(e.dir, "batch-out", "failed-once")
	out := e.batchHook(t, 10, `if [ ! -e "`+mark+`" ]; then touch "`+mark+`"; exit 3; fi; `)
	e.mustRun("--wait-hooks", "mset", "a", "1", "b", "2", "c", "3")
	evs := readEvents(t, filepath.Join(out, "events"))
	var keys []string
	for _, ev := range evs {
		keys = append(keys, ev.Key+"="+ev.Value)
	}
	if got := strings.Join(keys, " "); got != "a=1 b=2 c=3" {
		t.Fatalf("delivered %q, want a=1 b=2 c=3 once each", got)
	}
	type run struct {
		Attempt int    `json:"attempt"`
		Status  string `json:"status"`
		Events  int    `json:"events"`
	}
	runs := func() []run {
		var rs []run
		stdout := e.mustRun("hook", "log", "--json", "-n", "0")
		for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
			var r run
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("hook log --json: %q: %v", l, err)
			}
			rs = append(rs, r)
		}
		return rs
	}
	if got := fmt.Sprint(runs()); got != "[{1 retry 3} {2 ok 3}]" {
		t.Fatalf("runs %s, want one failed batch of 3, then its retry", got)
	}

	e.mustRun("hook", "rm", "1")
	e.mustRun("hook", "add", "--on", "set", "--batch", "10", "--retries", "2", "--", "sh", "-c", "cat >/dev/null; exit 3")
	e.mustRun("--wait-hooks", "mset", "x", "1", "y", "2")
	rs := runs()
	if got := fmt.Sprint(rs[2:]); got != "[{1 retry 2} {2 retry 2} {3 failed 2}]" {
		t.Fatalf("runs %v, want a batch of 2 tried 3 times, then failed", rs)
	}
	if p, f := e.pending(); p != 0 || f != 2 {
		t.Fatalf("stats: %d pending, %d failed, want 0 and 2", p, f)
	}
}
