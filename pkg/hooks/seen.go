package hooks

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// A signature proves who wrote a definition, not that it is still
// wanted: on a shared store, someone who can write to the server and kept
// a copy of a definition this host's key signed could put it back after
// `hook rm`, or put back the enabled version after `hook disable`, and it
// would verify and run. So each host remembers, in its state dir, the
// newest revision of every definition its deliverers have verified (Rev,
// which the signature covers and every change of a definition raises) and
// which of them it has seen removed, and refuses a definition older than
// what it saw. A definition is named by its id and creation time, both
// signed: a store emptied and given new hooks reuses ids, not both. a removed one is treated as gone (its
// events are dropped), an older revision as refused (its events wait for
// the current one). A host that was not delivering when a definition
// changed cannot tell; one daemon per host, running, sees every change
// within seconds.

// SeenFile is the name of the file, in the state dir, that keeps what
// this host's deliverers have seen of a shared store's definitions.
const SeenFile = "hooks.seen"

// seenDef is what a host has seen of one definition.
type seenDef struct {
	Rev  int64 `json:"rev"`
	Gone bool  `json:"gone,omitempty"`
}

// seenDefs maps a definition's name (defName) to what was seen of it.
type seenDefs map[string]seenDef

// defName names h in a seenDefs: its id and creation time.
func defName(h Hook) string {
	return strconv.FormatInt(h.ID, 10) + "@" + strconv.FormatInt(h.Created, 10)
}

// readSeen reads path; a missing file is an empty record.
func readSeen(path string) (seenDefs, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return seenDefs{}, nil
	}
	if err != nil {
		return nil, err
	}
	var s seenDefs
	if err := json.Unmarshal(b, &s); err != nil || s == nil {
		// A damaged record of this host's own making: start again
		// rather than stop every hook (what it guarded is seen anew).
		return seenDefs{}, nil
	}
	return s, nil
}

// writeSeen merges s into what path holds (another deliverer of this host
// may have written it meanwhile: the newer revision and a removal win) and
// replaces the file whole.
func writeSeen(path string, s seenDefs) error {
	cur, err := readSeen(path)
	if err != nil {
		return err
	}
	for k, v := range s {
		if c, ok := cur[k]; ok {
			v.Rev = max(v.Rev, c.Rev)
			v.Gone = v.Gone || c.Gone
		}
		cur[k] = v
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".hooks.seen.*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// freshness is what a host's record says of a definition.
type freshness int

const (
	fresh   freshness = iota
	removed           // seen removed: put back by someone else
	older             // an older revision than one seen
)

// check compares the definitions now in the store with what was seen,
// returning the freshness of each that verified, and records what is new:
// revisions of verified definitions, and definitions seen before that are
// no longer there (one whose signature someone spoiled is still there,
// refused as unverified, and comes back when its owner signs it again).
// It reports whether the record changed. Only verified revisions are
// recorded, so nobody without the key can make a host refuse its owner's
// definitions.
func (s seenDefs) check(hs []Hook, verified map[int64]bool) (map[int64]freshness, bool) {
	out := make(map[int64]freshness, len(hs))
	changed := false
	present := make(map[string]bool, len(hs))
	for _, h := range hs {
		k := defName(h)
		present[k] = true
		if !verified[h.ID] {
			continue
		}
		v, ok := s[k]
		switch {
		case ok && v.Gone:
			out[h.ID] = removed
		case ok && h.Rev < v.Rev:
			out[h.ID] = older
		default:
			if !ok || h.Rev > v.Rev {
				s[k] = seenDef{Rev: h.Rev}
				changed = true
			}
		}
	}
	for k, v := range s {
		if !present[k] && !v.Gone {
			s[k] = seenDef{Rev: v.Rev, Gone: true}
			changed = true
		}
	}
	return out, changed
}

// Replayed returns which of hs a deliverer of this host refuses as put
// back (removed, or older than a revision seen), for `hook list`: it reads
// the host's record in stateDir and changes nothing.
func Replayed(stateDir string, hs []Hook, key []byte) map[int64]bool {
	seen, err := readSeen(filepath.Join(stateDir, SeenFile))
	if err != nil {
		return nil
	}
	verified := make(map[int64]bool, len(hs))
	for _, h := range hs {
		verified[h.ID] = h.Verified(key)
	}
	states, _ := seen.check(hs, verified)
	out := map[int64]bool{}
	for id, f := range states {
		if f != fresh {
			out[id] = true
		}
	}
	return out
}
