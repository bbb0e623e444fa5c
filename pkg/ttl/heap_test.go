package ttl

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"testing"
	"time"
	"unsafe"
)

var t0 = time.UnixMilli(1_700_000_000_000)

// sliceSource is a fixed Source over a sorted slice, like a store's expiry
// index that nobody writes to. It records the largest limit it was asked for.
type sliceSource struct {
	ds       []Due
	calls    int
	maxLimit int
}

func (s *sliceSource) Next(after Due, limit int) ([]Due, error) {
	s.calls++
	s.maxLimit = max(s.maxLimit, limit)
	i := sort.Search(len(s.ds), func(i int) bool { return after.less(s.ds[i]) })
	j := min(len(s.ds), i+limit)
	return slices.Clone(s.ds[i:j]), nil
}

// mapSource is a mutable Source: key ID -> deadline, as the store holds it.
type mapSource map[uint64]int64

func (m mapSource) Next(after Due, limit int) ([]Due, error) {
	return firstAfter(m.sorted(), after, limit), nil
}

func (m mapSource) sorted() []Due {
	ds := make([]Due, 0, len(m))
	for id, at := range m {
		ds = append(ds, Due{At: at, ID: id})
	}
	slices.SortFunc(ds, compareDue)
	return ds
}

func firstAfter(ds []Due, after Due, limit int) []Due {
	var out []Due
	for _, d := range ds {
		if after.less(d) && len(out) < limit {
			out = append(out, d)
		}
	}
	return out
}

// drainAll advances the clock past every deadline and collects all of them,
// checking the window bound after every call.
func drainAll(t *testing.T, s *Schedule, clock *Fake, batch int) []Due {
	t.Helper()
	clock.Set(time.UnixMilli(1 << 50))
	var all []Due
	for {
		got, err := s.Due(batch)
		if err != nil {
			t.Fatal(err)
		}
		if s.h.Len() > s.window {
			t.Fatalf("holding %d entries, window %d", s.h.Len(), s.window)
		}
		if len(got) == 0 {
			return all
		}
		all = append(all, got...)
	}
}

func TestHeapOrderingWithTies(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Heap
	var want []Due
	for range 5000 {
		// Few distinct At values so most comparisons are ties broken by ID.
		d := Due{At: r.Int64N(20) - 10, ID: r.Uint64N(1000)}
		h.Push(d)
		want = append(want, d)
	}
	slices.SortFunc(want, compareDue)
	if h.Len() != len(want) {
		t.Fatalf("Len = %d, want %d", h.Len(), len(want))
	}
	for i, w := range want {
		p, _ := h.Peek()
		d, ok := h.Pop()
		if !ok || d != w || p != d {
			t.Fatalf("pop %d = %v (peek %v, ok %v), want %v", i, d, p, ok, w)
		}
	}
	if _, ok := h.Pop(); ok {
		t.Fatal("Pop on empty heap returned ok")
	}
	if _, ok := h.Peek(); ok {
		t.Fatal("Peek on empty heap returned ok")
	}
}

func TestDueIs16Bytes(t *testing.T) {
	if n := unsafe.Sizeof(Due{}); n != 16 {
		t.Fatalf("Due is %d bytes, want 16", n)
	}
}

func TestHeapPushPopDoNotAllocate(t *testing.T) {
	h := Heap{items: make([]Due, 0, 1024)}
	for i := range 512 {
		h.Push(Due{At: int64(i * 7 % 512), ID: uint64(i)})
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		h.Push(Due{At: int64(i % 300), ID: uint64(i)})
		h.Pop()
		i++
	})
	if allocs != 0 {
		t.Fatalf("Push+Pop allocated %v times per run, want 0", allocs)
	}
}

// TestScheduleMemoryPerEntry measures what a full window costs: 16 bytes of
// heap entry plus the ID -> deadline map entry. Measured on amd64 with Go
// 1.26: about 40 bytes per entry (16 heap + ~24 map), so a 100,000-entry
// window is about 4 MB.
func TestScheduleMemoryPerEntry(t *testing.T) {
	const n = 100_000
	src := &sliceSource{ds: make([]Due, n)}
	for i := range src.ds {
		src.ds[i] = Due{At: int64(i), ID: uint64(i)}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := NewSchedule(src, NewFake(t0), n)
	if _, _, err := s.NextAt(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if s.Len() != n {
		t.Fatalf("Len = %d, want %d", s.Len(), n)
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.1f bytes per in-memory deadline (heap + map)", per)
	if per > 80 {
		t.Errorf("%.1f bytes per entry, want at most 80", per)
	}
	runtime.KeepAlive(s)
}

func TestScheduleWindowBoundMillion(t *testing.T) {
	const n = 1_000_000
	src := &sliceSource{ds: make([]Due, n)}
	for i := range src.ds {
		// 3 keys per millisecond so ties straddle window boundaries.
		src.ds[i] = Due{At: t0.UnixMilli() + int64(i/3), ID: uint64(i)}
	}
	clock := NewFake(t0)
	const window = 1000
	s := NewSchedule(src, clock, window)
	if src.calls != 0 {
		t.Fatal("NewSchedule read from the source; it should be lazy")
	}
	all := drainAll(t, s, clock, 777)
	if len(all) != n {
		t.Fatalf("got %d deadlines, want %d", len(all), n)
	}
	for i, d := range all {
		if d != src.ds[i] {
			t.Fatalf("deadline %d = %v, want %v", i, d, src.ds[i])
		}
	}
	if src.maxLimit > window || cap(s.h.items) > window {
		t.Fatalf("asked for %d, capacity %d; window %d", src.maxLimit, cap(s.h.items), window)
	}
	t.Logf("%d source reads for %d deadlines", src.calls, n)
}

func TestScheduleRefillContinuity(t *testing.T) {
	for _, window := range []int{1, 2, 3, 4, 5, 7, 8, 16, 100} {
		for _, perMs := range []int{1, 2, 3, 8, 50} {
			var ds []Due
			for i := range 400 {
				// IDs not monotonic in At, so ties are broken by ID alone.
				ds = append(ds, Due{At: int64(i / perMs), ID: uint64((i * 7919) % 1009)})
			}
			slices.SortFunc(ds, compareDue)
			src := &sliceSource{ds: ds}
			clock := NewFake(t0)
			s := NewSchedule(src, clock, window)
			all := drainAll(t, s, clock, 3)
			if !slices.Equal(all, ds) {
				t.Fatalf("window %d, %d per ms: got %d deadlines, want %d in order", window, perMs, len(all), len(ds))
			}
		}
	}
}

func TestScheduleNoteBeforeAndAfterHorizon(t *testing.T) {
	store := mapSource{}
	for i := range 10 {
		store[uint64(i)] = int64(100 + 10*i) // 100..190
	}
	clock := NewFake(time.UnixMilli(0))
	s := NewSchedule(store, clock, 4)
	if at, ok, err := s.NextAt(); err != nil || !ok || at != 100 {
		t.Fatalf("NextAt = %d, %v, %v; want 100", at, ok, err)
	}
	if s.horizon != (Due{At: 130, ID: 3}) {
		t.Fatalf("horizon = %v, want {130 3}", s.horizon)
	}

	// Before the horizon: the Source will never return it, so it must be
	// pushed. The window is full, so the latest entry makes way.
	store[50] = 105
	s.Note(Due{At: 105, ID: 50})
	if s.h.Len() > 4 {
		t.Fatalf("holding %d, window 4", s.h.Len())
	}
	// After the horizon: left to the Source.
	store[60] = 185
	held := s.h.Len()
	s.Note(Due{At: 185, ID: 60})
	if s.h.Len() != held {
		t.Fatalf("Note past the horizon was pushed")
	}
	// Moving a queued key past the horizon makes its entry stale.
	store[1] = 195
	s.Note(Due{At: 195, ID: 1})

	want := store.sorted()
	if got := drainAll(t, s, clock, 2); !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestScheduleNoteBeforeFirstLoad(t *testing.T) {
	store := mapSource{1: 10}
	clock := NewFake(time.UnixMilli(100))
	s := NewSchedule(store, clock, 4)
	store[2] = 5
	s.Note(Due{At: 5, ID: 2}) // not loaded yet: the first read sees it
	got, err := s.Due(10)
	if err != nil || !slices.Equal(got, []Due{{5, 2}, {10, 1}}) {
		t.Fatalf("Due = %v, %v", got, err)
	}
}

func TestScheduleOverwriteAndForget(t *testing.T) {
	store := mapSource{1: 10, 2: 20, 3: 30, 4: 40}
	clock := NewFake(time.UnixMilli(0))
	s := NewSchedule(store, clock, 100)
	if _, _, err := s.NextAt(); err != nil {
		t.Fatal(err)
	}
	store[1] = 35 // re-TTL'd later
	s.Note(Due{At: 35, ID: 1})
	store[4] = 5 // re-TTL'd earlier
	s.Note(Due{At: 5, ID: 4})
	delete(store, 2)
	s.Forget(2)
	s.Forget(99) // unknown: no effect
	store[3] = 30
	s.Note(Due{At: 30, ID: 3}) // unchanged: must not be returned twice

	if at, ok, _ := s.NextAt(); !ok || at != 5 {
		t.Fatalf("NextAt = %d, %v; want 5", at, ok)
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want 3", s.Len())
	}
	want := []Due{{5, 4}, {30, 3}, {35, 1}}
	if got := drainAll(t, s, clock, 10); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestScheduleForgetThenNoteSameDeadline(t *testing.T) {
	store := mapSource{1: 10, 2: 20}
	clock := NewFake(time.UnixMilli(0))
	s := NewSchedule(store, clock, 100)
	s.NextAt()
	// Deleted and set again with the same deadline while the old entry is
	// still queued: two identical entries, which must yield one expiry.
	s.Forget(1)
	s.Note(Due{At: 10, ID: 1})
	s.compact() // the rebuild must also drop the repeat
	if s.h.Len() != 2 {
		t.Fatalf("after compact holding %d, want 2", s.h.Len())
	}
	s.Forget(1)
	s.Note(Due{At: 10, ID: 1})
	want := []Due{{10, 1}, {20, 2}}
	if got := drainAll(t, s, clock, 10); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestScheduleCompaction(t *testing.T) {
	store := mapSource{}
	for i := range 100 {
		store[uint64(i)] = int64(1000 + i)
	}
	clock := NewFake(time.UnixMilli(0))
	// A window far larger than the live set, so it is the stale-over-half
	// rule, not a full window, that has to compact.
	s := NewSchedule(store, clock, 10_000)
	s.NextAt()
	compactions := 0
	r := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		id := uint64(r.IntN(100))
		at := int64(500 + r.IntN(600))
		store[id] = at
		before := s.h.Len()
		s.Note(Due{At: at, ID: id})
		if s.h.Len() < before {
			compactions++
		}
		if 2*s.stale() > s.h.Len() {
			t.Fatalf("%d stale of %d after Note: compaction did not run", s.stale(), s.h.Len())
		}
		if s.h.Len() > s.window {
			t.Fatalf("holding %d, window %d", s.h.Len(), s.window)
		}
	}
	if compactions == 0 {
		t.Fatal("no compaction in 1000 overwrites")
	}
	t.Logf("%d compactions", compactions)
	if got, want := drainAll(t, s, clock, 7), store.sorted(); !slices.Equal(got, want) {
		t.Fatalf("after compaction got %v\nwant %v", got, want)
	}
}

func TestScheduleDueRespectsClock(t *testing.T) {
	base := t0.UnixMilli()
	store := mapSource{1: base + 10, 2: base + 20, 3: base + 20, 4: base + 30}
	clock := NewFake(t0)
	s := NewSchedule(store, clock, 2) // small window: releases cross refills
	due := func(limit int, want ...Due) {
		t.Helper()
		got, err := s.Due(limit)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("at +%dms Due(%d) = %v, %v; want %v", NowMs(clock)-base, limit, got, err, want)
		}
		for _, d := range got {
			delete(store, d.ID)
		}
	}
	due(10)
	if at, ok, _ := s.NextAt(); !ok || at != base+10 {
		t.Fatalf("NextAt = %d, %v", at, ok)
	}
	clock.Advance(9 * time.Millisecond)
	due(10)
	clock.Advance(time.Millisecond)
	due(10, Due{base + 10, 1})
	clock.Advance(10 * time.Millisecond)
	due(1, Due{base + 20, 2}) // limit respected
	due(10, Due{base + 20, 3})
	if at, ok, _ := s.NextAt(); !ok || at != base+30 {
		t.Fatalf("NextAt = %d, %v", at, ok)
	}
	clock.Advance(time.Hour)
	due(10, Due{base + 30, 4})
	if _, ok, err := s.NextAt(); ok || err != nil {
		t.Fatalf("NextAt on empty = %v, %v", ok, err)
	}
	// A key set after everything drained is found: the Note past the
	// horizon tells the Schedule to read again.
	store[9] = base + 99
	s.Note(Due{At: base + 99, ID: 9})
	if at, ok, _ := s.NextAt(); !ok || at != base+99 {
		t.Fatalf("NextAt after new key = %d, %v", at, ok)
	}
}

// TestScheduleModel runs random sets, re-TTLs, deletes and clock moves
// against a map standing in for the store, reporting each change the way
// the daemon will, and checks that Due returns exactly what the store has
// due, in order, with the window never exceeded.
func TestScheduleModel(t *testing.T) {
	for seed := range uint64(30) {
		r := rand.New(rand.NewPCG(seed, 99))
		store := mapSource{}
		now := int64(1000)
		clock := NewFake(time.UnixMilli(now))
		window := 1 + r.IntN(12)
		s := NewSchedule(store, clock, window)
		for step := range 3000 {
			id := uint64(r.IntN(40))
			switch op := r.IntN(10); {
			case op < 5:
				at := now + int64(r.IntN(200)) - 20 // some already due
				store[id] = at
				s.Note(Due{At: at, ID: id})
			case op < 7:
				delete(store, id)
				s.Forget(id)
			case op < 8:
				now += int64(r.IntN(30))
				clock.Set(time.UnixMilli(now))
			default:
				var want []Due
				for _, d := range store.sorted() {
					if d.At <= now {
						want = append(want, d)
					}
				}
				got, err := s.Due(len(store) + 1)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d step %d window %d: Due = %v\nwant %v", seed, step, window, got, want)
				}
				for _, d := range got {
					delete(store, d.ID)
				}
				at, ok, err := s.NextAt()
				rest := store.sorted()
				if err != nil || ok != (len(rest) > 0) || (ok && at != rest[0].At) {
					t.Fatalf("seed %d step %d: NextAt = %d, %v, %v; store %v", seed, step, at, ok, err, rest)
				}
			}
			if s.h.Len() > window {
				t.Fatalf("seed %d step %d: holding %d, window %d", seed, step, s.h.Len(), window)
			}
		}
	}
}

type badSource struct{ ds []Due }

func (b badSource) Next(Due, int) ([]Due, error) { return b.ds, nil }

type errSource struct{}

var errDown = errors.New("store down")

func (errSource) Next(Due, int) ([]Due, error) { return nil, errDown }

func TestScheduleSourceErrors(t *testing.T) {
	clock := NewFake(t0)
	if _, err := NewSchedule(errSource{}, clock, 4).Due(1); !errors.Is(err, errDown) {
		t.Fatalf("err = %v, want store down", err)
	}
	if _, _, err := NewSchedule(badSource{[]Due{{2, 1}, {1, 1}}}, clock, 4).NextAt(); !errors.Is(err, ErrSource) {
		t.Fatalf("out of order: err = %v", err)
	}
	if _, _, err := NewSchedule(badSource{make([]Due, 5)}, clock, 4).NextAt(); !errors.Is(err, ErrSource) {
		t.Fatalf("too many: err = %v", err)
	}
}

func benchDeadlines(n int) []Due {
	r := rand.New(rand.NewPCG(5, 6))
	ds := make([]Due, n)
	for i := range ds {
		ds[i] = Due{At: 1_700_000_000_000 + r.Int64N(86_400_000), ID: uint64(i)}
	}
	return ds
}

// BenchmarkHeapPush pushes random deadlines into a heap of up to 1M entries.
func BenchmarkHeapPush(b *testing.B) {
	const n = 1 << 20
	ds := benchDeadlines(n)
	h := Heap{items: make([]Due, 0, n)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if h.Len() == n {
			h.items = h.items[:0]
		}
		h.Push(ds[i%n])
	}
}

// BenchmarkHeapPop pops from a heap of 1M random deadlines, refilling it
// (untimed) when it empties.
func BenchmarkHeapPop(b *testing.B) {
	const n = 1 << 20
	ds := benchDeadlines(n)
	h := Heap{items: make([]Due, 0, n)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if h.Len() == 0 {
			b.StopTimer()
			h.items = append(h.items[:0], ds...)
			h.heapify()
			b.StartTimer()
		}
		h.Pop()
	}
}
