package ttl

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Due is one expiry deadline: At in Unix milliseconds and ID, an opaque
// reference to the key chosen by the caller (for example a SQLite rowid).
// It is 16 bytes with no pointers, so a million of them cost 16 MB and give
// the garbage collector nothing to scan; heap entries holding key strings
// cost about ten times that (see PERF-NOTES.md).
type Due struct {
	At int64
	ID uint64
}

// less orders deadlines by (At, ID). Breaking ties by ID makes the order
// total, which is what lets a window resume exactly where it stopped even
// when many keys share one millisecond.
func (d Due) less(e Due) bool {
	return d.At < e.At || (d.At == e.At && d.ID < e.ID)
}

func compareDue(a, b Due) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

// pred returns the greatest Due ordered before d, so that a Source asked for
// deadlines strictly after pred(d) starts with d itself.
func pred(d Due) Due {
	if d.ID > 0 {
		return Due{At: d.At, ID: d.ID - 1}
	}
	return Due{At: d.At - 1, ID: math.MaxUint64}
}

// Heap is a binary min-heap of Due ordered by (At, ID). It is written for the
// one element type instead of using container/heap, which boxes every element
// in an interface and calls Less and Swap through it (about 1.6x slower on
// push and 2.4x on pop in PERF-NOTES.md). The zero value is an empty heap.
// A Heap is not safe for concurrent use.
type Heap struct {
	items []Due
}

// Len returns the number of entries in h.
func (h *Heap) Len() int { return len(h.items) }

// Push adds d to h in O(log n).
func (h *Heap) Push(d Due) {
	h.items = append(h.items, d)
	h.up(len(h.items) - 1)
}

// Pop removes and returns the earliest entry, or false if h is empty.
func (h *Heap) Pop() (Due, bool) {
	n := len(h.items)
	if n == 0 {
		return Due{}, false
	}
	top := h.items[0]
	n--
	h.items[0] = h.items[n]
	h.items = h.items[:n]
	if n > 1 {
		h.down(0)
	}
	return top, true
}

// Peek returns the earliest entry without removing it, or false if h is
// empty.
func (h *Heap) Peek() (Due, bool) {
	if len(h.items) == 0 {
		return Due{}, false
	}
	return h.items[0], true
}

// up and down move a hole rather than swapping pairs: one write per level
// instead of two.
func (h *Heap) up(i int) {
	it := h.items
	d := it[i]
	for i > 0 {
		p := (i - 1) / 2
		if !d.less(it[p]) {
			break
		}
		it[i] = it[p]
		i = p
	}
	it[i] = d
}

func (h *Heap) down(i int) {
	it := h.items
	n := len(it)
	d := it[i]
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && it[r].less(it[c]) {
			c = r
		}
		if !it[c].less(d) {
			break
		}
		it[i] = it[c]
		i = c
	}
	it[i] = d
}

// heapify restores the heap property over all of h.items in O(n).
func (h *Heap) heapify() {
	for i := len(h.items)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// Source is where a Schedule loads deadlines from; in livedict it is the
// store's expiry index.
type Source interface {
	// Next returns up to limit deadlines ordered strictly after after, in
	// (At, ID) order. Fewer than limit means there are no more right now.
	Next(after Due, limit int) ([]Due, error)
}

// ErrSource is wrapped by the errors a Schedule returns when its Source
// breaks the Source contract (too many entries, or not in order after the
// requested position).
var ErrSource = errors.New("ttl: source returned deadlines out of contract")

// Schedule keeps the earliest TTL deadlines in memory so a daemon can sleep
// until the next one, holding at most window entries however many keys have
// a TTL. Deadlines later than the loaded window stay in the Source until the
// window moves.
//
// Invariant: every deadline the store holds that is at or before the horizon
// (the last loaded deadline) is in the heap, provided the caller reports
// changes with Note and Forget. So the heap's earliest live entry is the
// earliest deadline overall.
//
// A Schedule is not safe for concurrent use.
type Schedule struct {
	src    Source
	clock  Clock
	window int
	low    int // refill when fewer live entries than this remain

	h Heap
	// cur maps each in-memory ID to its current deadline. A heap entry is
	// live only if cur agrees with it; overwritten and forgotten entries stay
	// in the heap until popped or compacted, because finding them in the heap
	// would cost O(n). Stale entries number h.Len() - len(cur).
	cur map[uint64]int64

	horizon Due
	loaded  bool // the first window has been read
	// drained records that the last read returned fewer than asked, so the
	// Source has nothing after the horizon; it is cleared when a Note past
	// the horizon says otherwise. It saves a query per wake when few keys
	// have a TTL.
	drained bool
}

// NewSchedule returns a Schedule that loads deadlines from src, reads the
// time from clock and holds at most window entries. Nothing is read until the
// first call to Due or NextAt. It panics if window < 1.
func NewSchedule(src Source, clock Clock, window int) *Schedule {
	if window < 1 {
		panic("ttl: NewSchedule: window must be at least 1")
	}
	return &Schedule{
		src:    src,
		clock:  clock,
		window: window,
		low:    max(1, window/4),
		cur:    make(map[uint64]int64),
		// Before everything: the first read asks for deadlines after it.
		horizon: Due{At: math.MinInt64},
	}
}

// Len returns the number of live deadlines in memory (not counting those
// still only in the Source, nor stale entries awaiting removal).
func (s *Schedule) Len() int { return len(s.cur) }

func (s *Schedule) live(d Due) bool {
	at, ok := s.cur[d.ID]
	return ok && at == d.At
}

func (s *Schedule) stale() int { return s.h.Len() - len(s.cur) }

// Note reports that the key d.ID now expires at d.At (set, overwritten or
// given a new TTL). A deadline at or before the horizon is pushed, since the
// Source will never return it again; a later one is left for the Source to
// return when the window moves. Either way the ID's previous in-memory
// deadline, if any, becomes stale.
func (s *Schedule) Note(d Due) {
	if !s.loaded {
		return // the first read will see it
	}
	if at, ok := s.cur[d.ID]; ok {
		if at == d.At {
			return // already queued; pushing again would return it twice
		}
		delete(s.cur, d.ID)
	}
	if !s.horizon.less(d) {
		s.makeRoom() // may pull the horizon back before d
	}
	if s.horizon.less(d) {
		s.drained = false
		s.maybeCompact()
		return
	}
	s.reserve(1)
	s.h.Push(d)
	s.cur[d.ID] = d.At
	s.maybeCompact()
}

// Forget reports that the key id no longer has a deadline (deleted,
// persisted, or expired by other means), so its queued entry is skipped.
func (s *Schedule) Forget(id uint64) {
	if _, ok := s.cur[id]; ok {
		delete(s.cur, id)
		s.maybeCompact()
	}
}

// Due pops and returns, in (At, ID) order, up to limit live deadlines whose
// At is at or before the clock's current time, reading more from the Source
// as the window drains. On error it returns the deadlines popped so far with
// the error; those are no longer in the Schedule.
func (s *Schedule) Due(limit int) ([]Due, error) {
	now := NowMs(s.clock)
	var out []Due
	for len(out) < limit {
		if err := s.fill(); err != nil {
			return out, err
		}
		d, ok := s.h.Peek()
		if !ok || d.At > now {
			break
		}
		s.h.Pop()
		if s.live(d) {
			delete(s.cur, d.ID)
			out = append(out, d)
		}
	}
	return out, nil
}

// NextAt returns the earliest live deadline (Unix ms), which is when the
// caller should wake, or false if no key has a deadline. It reads from the
// Source if the window has drained.
func (s *Schedule) NextAt() (int64, bool, error) {
	for {
		if err := s.fill(); err != nil {
			return 0, false, err
		}
		d, ok := s.h.Peek()
		if !ok {
			return 0, false, nil
		}
		if s.live(d) {
			return d.At, true, nil
		}
		s.h.Pop() // stale: drop it so the caller does not wake for nothing
	}
}

// fill reads the next window from the Source when fewer than the low-water
// mark of live entries remain. Refilling early rather than at empty means a
// burst of expiries does not wait on a query at every pop.
func (s *Schedule) fill() error {
	if s.loaded && (s.drained || len(s.cur) >= s.low) {
		return nil
	}
	if s.stale() > 0 {
		s.compact() // few live entries, so cheap, and it frees the most room
	}
	limit := s.window - s.h.Len()
	got, err := s.src.Next(s.horizon, limit)
	if err != nil {
		return fmt.Errorf("ttl: loading deadlines after %d/%d: %w", s.horizon.At, s.horizon.ID, err)
	}
	// Check before changing anything so a bad read leaves s as it was.
	if len(got) > limit {
		return fmt.Errorf("%w: asked for %d, got %d", ErrSource, limit, len(got))
	}
	prev := s.horizon
	for _, d := range got {
		if !prev.less(d) {
			return fmt.Errorf("%w: %d/%d does not follow %d/%d", ErrSource, d.At, d.ID, prev.At, prev.ID)
		}
		prev = d
	}
	s.reserve(len(got))
	for _, d := range got {
		// Every entry in the heap is at or before the old horizon, so each
		// push lands at a leaf and stops at once: O(1).
		s.h.Push(d)
		// An ID already here with another deadline (a notification that has
		// not arrived yet) takes the store's value; the old entry goes stale.
		s.cur[d.ID] = d.At
	}
	s.loaded = true
	if len(got) > 0 {
		s.horizon = got[len(got)-1]
	}
	s.drained = len(got) < limit
	s.maybeCompact()
	return nil
}

// reserve makes room for n more entries without letting append round the
// capacity past window, so the bound on memory is window*16 bytes for the
// heap and not twice that.
func (s *Schedule) reserve(n int) {
	it := s.h.items
	if cap(it)-len(it) >= n {
		return
	}
	c := min(max(2*cap(it), len(it)+n, 64), s.window)
	grown := make([]Due, len(it), c)
	copy(grown, it)
	s.h.items = grown
}

// makeRoom ensures the heap has a free slot before a Note pushes into a full
// window. Both ways free at least low slots, so the O(n) work is paid once
// per low Notes rather than on each.
func (s *Schedule) makeRoom() {
	if s.h.Len() < s.window {
		return
	}
	if s.stale() >= s.low {
		s.compact()
		return
	}
	s.trim()
}

// maybeCompact compacts once stale entries are more than half the heap, so
// they never cost more than the live ones in memory or pop time.
func (s *Schedule) maybeCompact() {
	if 2*s.stale() > s.h.Len() {
		s.compact()
	}
}

// compact drops stale entries and rebuilds the heap in O(n).
func (s *Schedule) compact() {
	kept := s.liveItems()
	if len(kept) > len(s.cur) {
		s.h.items = sortUnique(kept)
		return
	}
	s.h.items = kept
	s.h.heapify()
}

// trim keeps the earliest window-low live entries and pulls the horizon back
// to just before the first one dropped, so the Source returns the dropped
// ones again when the window moves.
func (s *Schedule) trim() {
	kept := sortUnique(s.liveItems())
	if keep := s.window - s.low; len(kept) > keep {
		for _, d := range kept[keep:] {
			delete(s.cur, d.ID)
		}
		s.horizon = pred(kept[keep])
		s.drained = false
		kept = kept[:keep]
	}
	s.h.items = kept // sorted, so already a heap
}

// liveItems filters the heap's entries down to the live ones in place.
func (s *Schedule) liveItems() []Due {
	kept := s.h.items[:0]
	for _, d := range s.h.items {
		if s.live(d) {
			kept = append(kept, d)
		}
	}
	return kept
}

// sortUnique sorts ds and removes repeats. Repeats of one (At, ID) arise when
// a deadline is forgotten and then noted again with the same value while its
// old entry is still queued; both then look live. Pop order returns such a
// pair back to back and the first pop removes the ID from cur, so only
// rebuilds need this. A sorted slice is a valid min-heap.
func sortUnique(ds []Due) []Due {
	slices.SortFunc(ds, compareDue)
	return slices.Compact(ds)
}
