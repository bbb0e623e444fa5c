// Package hooks owns livedict's hooks: their definitions, which events
// match them, the outbox that records matching events in the same
// transaction as the change that caused them, their delivery (at least
// once, in order per key, retried with backoff) and the log of past runs.
// Running one hook command safely is package sandbox's job.
//
// Everything lives in the store, in internal buckets that users never see:
// "!hooks" (definitions), "!outbox" (events waiting for delivery), "!runs"
// (the run log) and "!meta" (sequence counters). So every backend gets
// hooks, and an event is exactly as durable as the change it describes.
package hooks

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/livedict/livedict/pkg/store"
)

// Internal buckets.
const (
	hooksBucket  = "!hooks"
	outboxBucket = "!outbox"
	runsBucket   = "!runs"
	metaBucket   = "!meta"
)

// Event is a set of event kinds, as a bit mask.
type Event uint8

// The event kinds a hook can ask for.
const (
	Set Event = 1 << iota
	Get
	Delete
	Expire

	All = Set | Get | Delete | Expire
)

func eventNames() []string { return []string{"set", "get", "delete", "expire"} }

// ErrEvents is wrapped by ParseEvents errors.
var ErrEvents = store.NewError(store.KindInvalid, "invalid event list")

// ParseEvents parses a comma list of set, get, delete, expire, or "all".
func ParseEvents(s string) (Event, error) {
	var ev Event
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "all" {
			ev |= All
			continue
		}
		i := 0
		for i < len(eventNames()) && eventNames()[i] != name {
			i++
		}
		if i == len(eventNames()) {
			return 0, fmt.Errorf("%w %q: events are set, get, delete, expire or all", ErrEvents, s)
		}
		ev |= 1 << i
	}
	return ev, nil
}

// String lists the kinds in e as ParseEvents reads them.
func (e Event) String() string {
	var names []string
	for i, n := range eventNames() {
		if e&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

// MarshalJSON writes e as its comma list.
func (e Event) MarshalJSON() ([]byte, error) { return json.Marshal(e.String()) }

// UnmarshalJSON reads a comma list; "" is no event (a log entry for an
// event that could not be read).
func (e *Event) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil || s == "" {
		*e = 0
		return err
	}
	v, err := ParseEvents(s)
	*e = v
	return err
}

// Hook is one hook definition.
type Hook struct {
	ID     int64  `json:"id"`
	Name   string `json:"name,omitempty"`
	Events Event  `json:"events"`
	// Key is a Redis-style glob over keys.
	Key string `json:"key"`
	// Bucket limits the hook to one bucket; empty means every bucket.
	Bucket string   `json:"bucket,omitempty"`
	Argv   []string `json:"argv"`
	// TimeoutMs is how long one run may take; 0 means the sandbox default.
	TimeoutMs int64 `json:"timeout_ms,omitempty"`
	// Env names variables passed through from the delivering process's
	// environment. Values are looked up at delivery, never stored.
	Env       []string `json:"env,omitempty"`
	Write     []string `json:"write,omitempty"`
	NoNetwork bool     `json:"no_network,omitempty"`
	// Batch > 0 delivers up to Batch events to one run, as JSON Lines
	// (see batch.go); BatchWaitMs is how long a partial batch may wait to
	// fill, 0 meaning DefaultBatchWait.
	Batch       int   `json:"batch,omitempty"`
	BatchWaitMs int64 `json:"batch_wait_ms,omitempty"`
	// Decrypt gives the hook the plaintext of encrypted buckets' values;
	// otherwise its events carry them encrypted.
	Decrypt bool `json:"decrypt,omitempty"`
	// Retries overrides the configured number of retries when not nil.
	Retries *int  `json:"retries,omitempty"`
	Enabled bool  `json:"enabled"`
	Created int64 `json:"created_ms"`
	// Rev counts the definition's changes (1 when added; hook enable and
	// disable raise it). Signed with the rest, it lets a host refuse an
	// older copy put back by someone who can write the store (seen.go).
	Rev int64 `json:"rev,omitempty"`
	// Sig is the definition's HMAC under the hook key of the host that
	// wrote it (see LoadHookKey); shared stores run only what verifies.
	Sig string `json:"sig,omitempty"`
}

// Timeout returns the hook's run timeout.
func (h Hook) Timeout() time.Duration { return time.Duration(h.TimeoutMs) * time.Millisecond }

// Matches reports whether the hook wants event ev on bucket/key. livedict's
// own buckets (hook definitions, the outbox) never match.
func (h Hook) Matches(ev Event, bucket, key string) bool {
	return h.Enabled && h.Events&ev != 0 && !store.IsInternal(bucket) &&
		(h.Bucket == "" || h.Bucket == bucket) &&
		store.Match(h.Key, key)
}

// ErrNoHook is returned for a hook id that does not exist.
var ErrNoHook = store.NewError(store.KindNotFound, "no such hook")

// seqKey formats a sequence number as a key that sorts in numeric order.
func seqKey(n uint64) string { return fmt.Sprintf("%016x", n) }

func parseSeqKey(k string) (uint64, error) { return strconv.ParseUint(k, 16, 64) }

// nextSeq returns the next value of the named counter in "!meta", starting
// at 1. Counters never go back, so ids are never reused.
func nextSeq(tx store.Tx, name string) (uint64, error) {
	e, ok, err := tx.Get(metaBucket, name)
	if err != nil {
		return 0, err
	}
	var n uint64
	if ok {
		if n, err = strconv.ParseUint(string(e.Value), 10, 64); err != nil {
			return 0, fmt.Errorf("%w: hook counter %s: %q", store.ErrCorrupt, name, e.Value)
		}
	}
	n++
	return n, tx.Put(store.Entry{Bucket: metaBucket, Key: name, Value: []byte(strconv.FormatUint(n, 10))})
}

// Add stores a new hook, enabled, and returns it with its id. A non-nil
// key signs it (shared stores).
func Add(tx store.Tx, h Hook, key []byte) (Hook, error) {
	if err := h.checkText(); err != nil {
		return h, err
	}
	id, err := nextSeq(tx, "hook")
	if err != nil {
		return h, err
	}
	h.ID = int64(id)
	h.Enabled = true
	h.Created = tx.Now()
	h.Rev = 1
	if h.Key == "" {
		h.Key = "*"
	}
	sign(&h, key)
	return h, put(tx, h)
}

// ErrNotText: a hook's name, key pattern, bucket, command, variable names
// or write paths hold bytes that are not UTF-8.
var ErrNotText = store.NewError(store.KindInvalid, "not valid UTF-8")

// checkText refuses a definition whose text is not UTF-8. Definitions are
// stored as JSON, whose encoder turns each such byte into U+FFFD: a key
// pattern g\xfe* was stored as g\ufffd* and matched none of the keys it
// was given for, and a command's path would name another file.
func (h Hook) checkText() error {
	fields := []struct {
		what string
		vals []string
	}{{"--name", []string{h.Name}}, {"--key", []string{h.Key}}, {"--bucket", []string{h.Bucket}},
		{"the command", h.Argv}, {"--env", h.Env}, {"--write", h.Write}}
	for _, f := range fields {
		for _, v := range f.vals {
			if !utf8.ValidString(v) {
				return fmt.Errorf("%w: %s %q: hook definitions are stored as text", ErrNotText, f.what, v)
			}
		}
	}
	return nil
}

func put(tx store.Tx, h Hook) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return tx.Put(store.Entry{Bucket: hooksBucket, Key: seqKey(uint64(h.ID)), Value: b})
}

// List returns every hook, by id.
func List(tx store.Tx) ([]Hook, error) {
	var hs []Hook
	err := tx.Scan(hooksBucket, "", true, func(e store.Entry) error {
		var h Hook
		if err := json.Unmarshal(e.Value, &h); err != nil {
			return fmt.Errorf("%w: hook %s: %v", store.ErrCorrupt, e.Key, err)
		}
		hs = append(hs, h)
		return nil
	})
	return hs, err
}

// Lookup returns the hook with id.
func Lookup(tx store.Tx, id int64) (Hook, error) {
	var h Hook
	e, ok, err := tx.Get(hooksBucket, seqKey(uint64(id)))
	if err != nil {
		return h, err
	}
	if !ok {
		return h, fmt.Errorf("%w: %d", ErrNoHook, id)
	}
	if err := json.Unmarshal(e.Value, &h); err != nil {
		return h, fmt.Errorf("%w: hook %d: %v", store.ErrCorrupt, id, err)
	}
	return h, nil
}

// Remove deletes hook id. Its events still in the outbox are dropped when
// their turn comes (and logged as skipped).
func Remove(tx store.Tx, id int64) error {
	ok, err := tx.Delete(hooksBucket, seqKey(uint64(id)))
	if err == nil && !ok {
		err = fmt.Errorf("%w: %d", ErrNoHook, id)
	}
	return err
}

// SetEnabled enables or disables hook id and reports whether it changed.
// A non-nil key signs the changed definition (shared stores), so enabling
// also vouches for a definition this host's key had not signed.
func SetEnabled(tx store.Tx, id int64, on bool, key []byte) (bool, error) {
	h, err := Lookup(tx, id)
	if err != nil {
		return false, err
	}
	changed := h.Enabled != on || key != nil && !h.Verified(key)
	// Enabling on a shared store signs the definition anew, with a newer
	// revision, even when nothing else changes: it vouches for the
	// definition as it is now, which is how its owner gets a copy that
	// someone put back, and hosts refuse as older (seen.go), run again.
	if !changed && !(on && key != nil) {
		return false, nil
	}
	h.Enabled = on
	h.Rev++
	sign(&h, key)
	return changed, put(tx, h)
}

// ParseID reads a hook id as the user typed it.
func ParseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("invalid hook id %q: ids are positive integers (see 'livedict hook list')", s)
	}
	return id, nil
}
