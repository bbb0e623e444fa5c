package hooks

import (
	"bytes"
	"slices"
	"testing"

	"github.com/livedict/livedict/pkg/store"
)

func TestLogKeepsLast(t *testing.T) {
	s, _ := memStore(t)
	const total = logKeep + 37
	update(t, s, func(tx store.Tx) error {
		for i := 1; i <= total; i++ {
			st := StatusOK
			if i%10 == 0 {
				st = StatusFailed
			}
			if err := appendRun(tx, &Run{HookID: 1, Event: Set, Bucket: "main", Key: []byte("k"), Attempt: 1, Status: st, ExitCode: i}); err != nil {
				return err
			}
		}
		return nil
	})
	all := runs(t, s, 0, false)
	if len(all) != logKeep {
		t.Fatalf("log keeps %d, want %d", len(all), logKeep)
	}
	if all[0].ID != total-logKeep+1 || all[len(all)-1].ID != total || all[0].ExitCode != total-logKeep+1 {
		t.Fatalf("log runs %d..%d", all[0].ID, all[len(all)-1].ID)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID != all[i-1].ID+1 {
			t.Fatalf("log not in order at %d", i)
		}
	}
	last := runs(t, s, 10, false)
	if len(last) != 10 || last[0].ID != total-9 || last[9].ID != total {
		t.Fatalf("Log(10) = %d runs, %d..%d", len(last), last[0].ID, last[len(last)-1].ID)
	}
	if more := runs(t, s, total*2, false); len(more) != logKeep {
		t.Fatalf("Log(n > kept) = %d", len(more))
	}
	failed := runs(t, s, 0, true)
	if len(failed) != logKeep/10 {
		t.Fatalf("failed = %d, want %d", len(failed), logKeep/10)
	}
	for _, r := range failed {
		if r.Status != StatusFailed {
			t.Fatalf("failed-only run %+v", r)
		}
	}
	if f3 := runs(t, s, 3, true); len(f3) != 3 || f3[2].ID != failed[len(failed)-1].ID {
		t.Fatalf("Log(3, failed) = %+v", f3)
	}
	view(t, s, func(tx store.Tx) error {
		_, fl, err := Counts(tx)
		if err != nil || fl != logKeep/10 {
			t.Fatalf("Counts failed = %d, %v", fl, err)
		}
		return nil
	})
	// Empty log.
	s2, _ := memStore(t)
	if rs := runs(t, s2, 5, false); len(rs) != 0 {
		t.Fatalf("empty log = %+v", rs)
	}
}

func TestLogCutsOutput(t *testing.T) {
	s, _ := memStore(t)
	out := append(bytes.Repeat([]byte("a"), 5000), []byte("TAIL")...)
	update(t, s, func(tx store.Tx) error {
		if err := appendRun(tx, &Run{Event: Set, Status: StatusOK, Output: out, OutputCut: 100}); err != nil {
			return err
		}
		return appendRun(tx, &Run{Event: Set, Status: StatusOK, Output: []byte("short")})
	})
	rs := runs(t, s, 0, false)
	if len(rs[0].Output) != logOutputCap || !bytes.HasSuffix(rs[0].Output, []byte("TAIL")) {
		t.Fatalf("output %d bytes", len(rs[0].Output))
	}
	if want := int64(100 + len(out) - logOutputCap); rs[0].OutputCut != want {
		t.Fatalf("OutputCut = %d, want %d", rs[0].OutputCut, want)
	}
	if string(rs[1].Output) != "short" || rs[1].OutputCut != 0 {
		t.Fatalf("short output = %q, cut %d", rs[1].Output, rs[1].OutputCut)
	}
}

func TestLogRunFields(t *testing.T) {
	s, _ := memStore(t)
	update(t, s, func(tx store.Tx) error {
		return appendRun(tx, &Run{Time: 42, HookID: 3, HookName: "n", Event: Expire, Bucket: "b", Key: []byte("k\xff"),
			Attempt: 2, Status: StatusRetry, ExitCode: -1, Signal: "SIGKILL", TimedOut: true, DurationMs: 9, Error: "e"})
	})
	rs := runs(t, s, 0, false)
	r := rs[0]
	if r.ID != 1 || r.Time != 42 || r.HookID != 3 || r.HookName != "n" || r.Event != Expire || r.Bucket != "b" ||
		string(r.Key) != "k\xff" || r.Attempt != 2 || r.Status != StatusRetry || r.ExitCode != -1 ||
		r.Signal != "SIGKILL" || !r.TimedOut || r.DurationMs != 9 || r.Error != "e" {
		t.Fatalf("run = %+v", r)
	}
}

// TestLogInStartOrder: runs are recorded as they end, but listed by the
// time they started, the time hook log shows. A long run that started
// first and ended last was listed last, its time before the others'.
func TestLogInStartOrder(t *testing.T) {
	s, _ := memStore(t)
	update(t, s, func(tx store.Tx) error {
		for _, at := range []int64{2000, 3000, 1000, 2500} { // the order they ended
			if err := appendRun(tx, &Run{HookID: 1, Event: Set, Bucket: "main", Key: []byte("k"), Attempt: 1, Status: StatusOK, Time: at}); err != nil {
				return err
			}
		}
		return nil
	})
	var got []int64
	for _, r := range runs(t, s, 0, false) {
		got = append(got, r.Time)
	}
	if want := []int64{1000, 2000, 2500, 3000}; !slices.Equal(got, want) {
		t.Fatalf("Log times %v, want %v", got, want)
	}
	// The last 2 recorded, in start order: not the 2 that started last.
	got = got[:0]
	for _, r := range runs(t, s, 2, false) {
		got = append(got, r.Time)
	}
	if want := []int64{1000, 2500}; !slices.Equal(got, want) {
		t.Fatalf("Log(2) times %v, want %v", got, want)
	}
}
