package hooks

import (
	"bytes"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
)

// Someone who can write a shared store and kept a copy of a signed
// definition puts it back after `hook rm`, or puts back the enabled copy
// after `hook disable`: the signature still verifies, but a host that saw
// the change refuses it. Before, both ran again at the next event.
func TestSharedRefusesReplayedDefinitions(t *testing.T) {
	eachStore(t, func(t *testing.T, base store.Store, _ *ttl.Fake) {
		s := sharedStore{base}
		removed := addSigned(t, s, Hook{Events: Set, Key: "removed"}, testKey)
		disabled := addSigned(t, s, Hook{Events: Set, Key: "disabled"}, testKey)
		kept := addSigned(t, s, Hook{Events: Set, Key: "kept"}, testKey)
		f := newFakeRunner(t)
		d := sharedDeliverer(t, s, f)
		d.Seen = filepath.Join(t.TempDir(), SeenFile)
		var logBuf bytes.Buffer
		var logMu sync.Mutex
		d.Log = slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf, mu: &logMu}, nil))
		for _, k := range []string{"removed", "disabled", "kept"} {
			set(t, s, "main", k, "1")
		}
		deliver(t, d)
		if n := len(f.snapshot()); n != 3 {
			t.Fatalf("%d runs, want 3", n)
		}

		// The owner removes one hook and disables another; the host's
		// deliverer sees the change.
		update(t, s, func(tx store.Tx) error {
			if err := Remove(tx, removed.ID); err != nil {
				return err
			}
			_, err := SetEnabled(tx, disabled.ID, false, testKey)
			return err
		})
		deliver(t, d)

		// Someone puts back the copies they kept.
		update(t, s, func(tx store.Tx) error {
			if err := put(tx, removed); err != nil {
				return err
			}
			return put(tx, disabled)
		})
		for _, k := range []string{"removed", "disabled", "kept"} {
			set(t, s, "main", k, "2")
		}
		deliver(t, d)
		var ran []string
		for _, c := range f.snapshot()[3:] {
			ran = append(ran, fmt.Sprintf("hook %d key %s", c.hook, c.key))
		}
		if len(ran) != 1 || !strings.HasPrefix(ran[0], fmt.Sprintf("hook %d ", kept.ID)) {
			t.Fatalf("runs after the replay: %v, want only the kept hook's (%d)", ran, kept.ID)
		}
		logMu.Lock()
		log := logBuf.String()
		logMu.Unlock()
		for _, want := range []string{"it was removed, and someone put its signed definition back", "older copy of its definition"} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
		// The removed hook's event was dropped; the disabled one's waits
		// for its current definition.
		if n := len(outbox(t, s)); n != 1 {
			t.Fatalf("outbox holds %d events, want the replayed disabled hook's 1", n)
		}

		// Its owner enabling it again (a newer revision) is run.
		update(t, s, func(tx store.Tx) error {
			_, err := SetEnabled(tx, disabled.ID, true, testKey)
			return err
		})
		set(t, s, "main", "disabled", "3")
		deliver(t, d)
		if n := len(f.snapshot()); n < 5 {
			t.Fatalf("%d runs after the owner enabled the hook again, want it to run", n)
		}
	})
}

// What a host records: revisions of verified definitions only (nobody
// without the key can make it refuse its owner's), removals by definition
// (id and creation time: a store emptied and given new hooks reuses ids),
// and a definition whose signature was spoiled is not removed.
func TestSeenDefsCheck(t *testing.T) {
	s := seenDefs{}
	a := Hook{ID: 1, Created: 100, Rev: 2}
	b := Hook{ID: 2, Created: 100, Rev: 1}
	got, changed := s.check([]Hook{a, b}, map[int64]bool{1: true, 2: true})
	if !changed || got[1] != fresh || got[2] != fresh || s[defName(a)].Rev != 2 {
		t.Fatalf("first sight: %v %v %v", got, changed, s)
	}
	// A forged revision 99 of a (not verified) is not recorded.
	forged := a
	forged.Rev = 99
	if _, changed := s.check([]Hook{forged, b}, map[int64]bool{2: true}); changed || s[defName(a)].Rev != 2 {
		t.Fatalf("an unverified revision was recorded: %v", s)
	}
	// b removed, then put back: removed. a at an older revision: older.
	s.check([]Hook{a}, map[int64]bool{1: true})
	old := a
	old.Rev = 1
	got, _ = s.check([]Hook{old, b}, map[int64]bool{1: true, 2: true})
	if got[1] != older || got[2] != removed {
		t.Fatalf("replays: %v", got)
	}
	// A new hook 2 after the store was emptied (another creation time).
	got, _ = s.check([]Hook{a, {ID: 2, Created: 500, Rev: 1}}, map[int64]bool{1: true, 2: true})
	if got[2] != fresh {
		t.Fatalf("a new definition reusing id 2: %v", got[2])
	}
	// The record survives a round trip through its file, merged with
	// what another deliverer wrote.
	path := filepath.Join(t.TempDir(), SeenFile)
	other := seenDefs{defName(a): {Rev: 5}}
	if err := writeSeen(path, other); err != nil {
		t.Fatal(err)
	}
	if err := writeSeen(path, s); err != nil {
		t.Fatal(err)
	}
	back, err := readSeen(path)
	if err != nil || back[defName(a)].Rev != 5 || !back[defName(b)].Gone {
		t.Fatalf("read back %v, %v", back, err)
	}
}
