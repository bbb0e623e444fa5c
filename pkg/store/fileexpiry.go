//go:build unix

package store

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/livedict/livedict/pkg/ttl"
)

// Expiry in the file store: the next-expiry hint, the walk that finds due
// records, reaping and the ordered deadlines the daemon schedules from.

// loadHint reads DIR/.next-expiry once per transaction. A missing or
// unreadable hint counts as due, which costs one walk, never a missed entry.
func (tx *fileTx) loadHint() {
	if tx.hintLoaded {
		return
	}
	h := int64(fileHintUnknown)
	if data, err := readTrusted(tx.s.path(fileHintName)); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil && v >= 0 {
			h = v
		}
	}
	tx.hintLoaded, tx.diskHint, tx.hint = true, h, h
}

// hintDue reports whether, by the hint alone, something may have expired.
func (tx *fileTx) hintDue() bool {
	tx.loadHint()
	return tx.hint != 0 && tx.hint <= tx.now
}

// walk visits every entry of the merged view of every bucket, expired or
// not, until visit says stop. Buckets not yet loaded are streamed from
// their folders rather than loaded, so a bounded reap can stop early
// without reading a whole large bucket. It reports whether it stopped.
func (tx *fileTx) walk(visit func(tb *fileTxBucket, key string, expiresAt int64) (stop bool)) (bool, error) {
	names, err := tx.bucketNames()
	if err != nil {
		return false, err
	}
	for _, name := range names {
		tb, err := tx.bucket(name)
		if err != nil {
			return false, err
		}
		stopped := false
		if tb.loaded {
			for key, d := range tb.disk {
				if _, over := tb.ops[key]; !over && visit(tb, key, d.expiresAt) {
					return true, nil
				}
			}
		} else if !tb.dropped {
			err := tx.readDir(tb, true, func(rec fileRecord, _ string) bool {
				if _, over := tb.ops[rec.Key]; !over && visit(tb, rec.Key, rec.ExpiresAt) {
					stopped = true
				}
				return stopped
			})
			if err != nil || stopped {
				return stopped, err
			}
		}
		for key, op := range tb.ops {
			if !op.del && visit(tb, key, op.expiresAt) {
				return true, nil
			}
		}
	}
	return false, nil
}

// HasExpired reports whether an expired entry awaits reaping. The hint
// answers most calls with one small read; when it is due the store is
// walked to the first expired entry, and a walk that finds none teaches an
// Update the true next deadline.
func (tx *fileTx) HasExpired() (bool, error) {
	if err := tx.check(false); err != nil {
		return false, err
	}
	if !tx.hintDue() {
		return false, nil
	}
	var next int64
	found, err := tx.walk(func(_ *fileTxBucket, _ string, exp int64) bool {
		if exp == 0 {
			return false
		}
		if exp <= tx.now {
			return true
		}
		if next == 0 || exp < next {
			next = exp
		}
		return false
	})
	if err != nil || found {
		return found, err
	}
	if tx.write {
		tx.hint = next
	} else {
		// LazyReap asks from a View and only writes when told something
		// expired, so a View must correct a stale hint itself or every
		// command would walk the store. Writers are locked out, so the
		// walk saw the store as it is, and concurrent readers can only
		// write the same value; a unique temporary name keeps their
		// renames apart. Failing to write (a read-only store) costs only
		// speed.
		tmp := fmt.Sprintf("%s.tmp-%d-%d", fileHintName, os.Getpid(), fileTempSeq.Add(1))
		writeFileAtomic(tx.s.dir, fileHintName, tmp, []byte(strconv.FormatInt(next, 10)+"\n"), false, false)
	}
	return false, nil
}

// fileTempSeq makes temporary names unique within a process.
var fileTempSeq atomic.Int64

// Reap deletes up to limit expired entries, calling fn with each first.
func (tx *fileTx) Reap(limit int, fn func(Entry) error) (int, error) {
	if err := tx.check(true); err != nil {
		return 0, err
	}
	if !tx.hintDue() {
		return 0, nil
	}
	type victim struct {
		tb  *fileTxBucket
		key string
	}
	var victims []victim
	var next int64
	stopped, err := tx.walk(func(tb *fileTxBucket, key string, exp int64) bool {
		if exp == 0 {
			return false
		}
		if exp > tx.now {
			if next == 0 || exp < next {
				next = exp
			}
			return false
		}
		victims = append(victims, victim{tb, key})
		return limit > 0 && len(victims) >= limit
	})
	if err != nil {
		return 0, err
	}
	slices.SortFunc(victims, func(a, b victim) int {
		if c := strings.Compare(a.tb.name, b.tb.name); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	for i, v := range victims {
		if fn != nil {
			e, ok, err := tx.entry(v.tb, v.key)
			if err != nil {
				return i, err
			}
			if ok {
				if err := fn(e); err != nil {
					return i, err
				}
			}
		}
		// Expired entries are not live, so the live count stays as is.
		v.tb.ops[v.key] = fileKeyOp{del: true}
	}
	if !stopped {
		// A full walk: what is left is the true next deadline. A stopped
		// walk leaves the hint due so the next command carries on.
		tx.hint = next
	}
	return len(victims), nil
}

// Deadlines lists user deadlines, expired or not, by walking every bucket:
// folders have no order to resume from, so each call reads all records'
// headers and sorts. The hint cannot help, as it only bounds the earliest.
func (tx *fileTx) Deadlines(after ttl.Due, limit int) ([]ttl.Due, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	var all []ttl.Due
	_, err := tx.walk(func(tb *fileTxBucket, key string, exp int64) bool {
		if exp != 0 {
			all = append(all, ttl.Due{At: exp, ID: deadlineID(tb.name, key)})
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	return deadlinesAfter(all, after, limit), nil
}
