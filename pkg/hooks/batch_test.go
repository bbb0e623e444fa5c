package hooks

import (
	"slices"
	"testing"
	"time"
)

// TestBatcherReady: a partial batch starts at once when its hook is idle;
// while the hook runs it waits until full or until its oldest event has
// waited BatchWait; a full batch takes no more events; hooks without
// Batch are not batched; slots bound how many batches start. With eager
// above one, a partial batch also starts at once while fewer runs of its
// hook than eager are going.
func TestBatcherReady(t *testing.T) {
	t0 := time.UnixMilli(1_000_000)
	defs := map[int64]Hook{
		1: {ID: 1, Enabled: true, Batch: 3, BatchWaitMs: 50},
		2: {ID: 2, Enabled: true},
		3: {ID: 3, Enabled: false, Batch: 3},
	}
	mk := func(hook int64, n int) []*item {
		var its []*item
		for i := 0; i < n; i++ {
			its = append(its, &item{seq: uint64(i), rec: &record{HookID: hook}})
		}
		return its
	}
	gather := func(busy map[int64]int, its []*item, now time.Time) *batcher {
		b := newBatcher(busy, 1)
		for _, it := range its {
			b.add(it, defs, now)
		}
		return b
	}

	if b := newBatcher(map[int64]int{}, 1); b.add(mk(2, 1)[0], defs, t0) || b.add(mk(3, 1)[0], defs, t0) || b.add(mk(9, 1)[0], defs, t0) {
		t.Fatal("an event of a hook without --batch, disabled or removed was batched")
	}

	// Idle: a partial batch starts at once.
	busy := map[int64]int{}
	start, next := gather(busy, mk(1, 2), t0).ready(defs, t0, 4)
	if len(start) != 1 || len(start[0]) != 2 || !next.IsZero() {
		t.Fatalf("idle hook: started %d batches, next %v; want one of 2 at once", len(start), next)
	}

	// Busy: it waits for BatchWait from its oldest event...
	busy[1] = 1
	its := mk(1, 2)
	start, next = gather(busy, its, t0).ready(defs, t0, 4)
	if len(start) != 0 || !next.Equal(t0.Add(50*time.Millisecond)) {
		t.Fatalf("busy hook: started %d, next %v; want none until %v", len(start), next, t0.Add(50*time.Millisecond))
	}
	// ... measured from when each was first ready, not from this pass.
	later := t0.Add(49 * time.Millisecond)
	if start, _ = gather(busy, its, later).ready(defs, later, 4); len(start) != 0 {
		t.Fatal("busy hook: a partial batch started before its wait")
	}
	later = t0.Add(50 * time.Millisecond)
	if start, _ = gather(busy, its, later).ready(defs, later, 4); len(start) != 1 || len(start[0]) != 2 {
		t.Fatal("busy hook: a partial batch did not start after its wait")
	}

	// Busy, but with fewer runs going than eager: at once.
	if start, _ = newBatcherWith(busy, 2, its, defs, t0).ready(defs, t0, 4); len(start) != 1 || len(start[0]) != 2 {
		t.Fatal("a partial batch waited with fewer runs of its hook going than eager")
	}
	busy[1] = 2
	if start, _ = newBatcherWith(busy, 2, its, defs, t0).ready(defs, t0, 4); len(start) != 0 {
		t.Fatal("a partial batch started at once with eager runs of its hook going")
	}
	busy[1] = 1

	// Busy but full: starts at once, with Batch events, the rest left.
	five := mk(1, 5)
	start, _ = gather(busy, five, t0).ready(defs, t0, 4)
	if len(start) != 1 || len(start[0]) != 3 || start[0][0] != five[0] || start[0][2] != five[2] {
		t.Fatalf("full batch: %v, want the first 3 events at once", start)
	}

	// No slot: nothing starts.
	if start, _ = gather(map[int64]int{}, mk(1, 1), t0).ready(defs, t0, 0); len(start) != 0 {
		t.Fatal("a batch started with no slot free")
	}
}

func newBatcherWith(busy map[int64]int, eager int, its []*item, defs map[int64]Hook, now time.Time) *batcher {
	b := newBatcher(busy, eager)
	for _, it := range its {
		b.add(it, defs, now)
	}
	return b
}

func TestRemoveAllKeepsTheRestInOrder(t *testing.T) {
	items := make([]*item, 6)
	for i := range items {
		items[i] = &item{seq: uint64(i)}
	}
	got := removeAll(slices.Clone(items), []*item{items[4], items[0], items[2]})
	if len(got) != 3 || got[0] != items[1] || got[1] != items[3] || got[2] != items[5] {
		t.Fatalf("removeAll left %v", got)
	}
	if got := removeAll(slices.Clone(items), nil); len(got) != 6 {
		t.Fatalf("removing nothing left %d", len(got))
	}
}
