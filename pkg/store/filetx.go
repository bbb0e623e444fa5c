//go:build unix

package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// The file store's transaction: a view of the folder under the store's
// lock, with writes buffered until commit (filecommit.go).

// fileTx is a transaction. Reads see the files merged with the writes
// buffered so far; a bucket's listing is read once per transaction and
// cached, and its live count kept up to date as writes arrive, so a large
// import that checks counts as it goes stays linear.
type fileTx struct {
	s       *fileStore
	now     int64
	write   bool
	done    bool
	buckets map[string]*fileTxBucket
	// trash collects the folders the commit moves aside (filetrash.go).
	trash *fileTrash

	// The expiry hint as on disk, and as it must be after commit. hint
	// only ever moves down, except when a full walk learns the true
	// minimum.
	hintLoaded     bool
	diskHint, hint int64
}

// fileTxBucket is what a transaction knows about one bucket.
type fileTxBucket struct {
	name string
	dir  string

	// ops are the buffered writes by key.
	ops map[string]fileKeyOp
	// dropped: the folder is removed at commit before ops are applied.
	dropped bool
	// policySet: policy replaces the stored one at commit.
	policySet bool
	policy    Policy

	// loaded: disk holds every record file of the folder, and live the
	// number of live keys in the merged view.
	loaded bool
	disk   map[string]fileDiskEntry
	live   int64
	// dirChecked: a lookup missed and looked whether the folder exists.
	dirChecked bool
	// damaged: record files of an internal bucket that fail to decode, by
	// key, with their paths. Listed with their raw bytes as the value,
	// as a damaged SQLite row is, so the hooks layer that owns them drops
	// a damaged event (logged) instead of every delivery and hooked write
	// failing on it; Delete removes them.
	damaged map[string]string
}

// fileKeyOp is one buffered write.
type fileKeyOp struct {
	del       bool
	expiresAt int64
	value     []byte
}

// fileDiskEntry is one record file found in a bucket folder.
type fileDiskEntry struct {
	name      string
	expiresAt int64
	size      int64 // the value's length
}

func (s *fileStore) newTx(write bool) *fileTx {
	return &fileTx{
		s:       s,
		now:     s.opts.Clock.Now().UnixMilli(),
		write:   write,
		buckets: map[string]*fileTxBucket{},
		trash:   &fileTrash{},
	}
}

func (tx *fileTx) live(expiresAt int64) bool { return expiresAt == 0 || expiresAt > tx.now }

func (tx *fileTx) check(write bool) error {
	if tx.done {
		return errFileClosed
	}
	if write && !tx.write {
		return errors.New("file store: write in a read-only transaction")
	}
	return nil
}

// bucket returns the transaction's state for a bucket, validating its name.
func (tx *fileTx) bucket(name string) (*fileTxBucket, error) {
	if tb := tx.buckets[name]; tb != nil {
		return tb, nil
	}
	check := ValidateBucket
	if IsInternal(name) {
		check = validateInternal
	}
	if err := check(name); err != nil {
		return nil, err
	}
	tb := &fileTxBucket{name: name, dir: tx.s.bucketDir(name), ops: map[string]fileKeyOp{}}
	tx.buckets[name] = tb
	return tb, nil
}

// userBucket is bucket for the calls internal buckets do not take.
func (tx *fileTx) userBucket(name string) (*fileTxBucket, error) {
	if err := checkUserBucket(name); err != nil {
		return nil, err
	}
	return tx.bucket(name)
}

// readKey reads key's record from disk, checking that the file holds that
// key (it may not, for a hashed name or a misplaced file).
func (tx *fileTx) readKey(tb *fileTxBucket, key string, wantValue bool) (fileRecord, bool, error) {
	path := filepath.Join(tb.dir, fileKeyEncode(key))
	rec, ok, err := readRecord(path, wantValue)
	err = tb.damagedKey(path, err, true)
	if err == nil && !ok && !tb.loaded && !tb.dirChecked {
		// A miss: when the folder itself is missing (an import into a
		// new bucket looks up every key first), list it now, for free,
		// so the next lookups cost no open each.
		tb.dirChecked = true
		if _, lerr := os.Lstat(tb.dir); errors.Is(lerr, fs.ErrNotExist) {
			err = tx.load(tb)
		}
	}
	if err != nil || !ok {
		return fileRecord{}, false, err
	}
	if rec.Key != key {
		return fileRecord{}, false, tb.damagedKey(path, fileMisplaced(path), true)
	}
	return rec, true, nil
}

// fileMisplaced is the error of a record file holding another key than
// its name says: a hash collision, or a file copied or moved by hand (cp
// a b, or mv a b to "rename" a key).
func fileMisplaced(path string) error {
	return fmt.Errorf("%w: %s holds another key (hash collision or misplaced file)", ErrCorrupt, path)
}

// damagedKey marks err, a damaged record at path in a user bucket, as
// ErrDamagedKey when the file's name gives its key: the name is the key,
// whatever the damaged content says, so del may clear it, as on Redis
// (Delete), and every error over it (a listing's too) says so, rather
// than send the user to restore the whole store from a backup. byKey says
// path was made from the key asked for, which a hashed name (a key too
// long to spell out) gives too; a listing knows only literal names' keys.
func (tb *fileTxBucket) damagedKey(path string, err error, byKey bool) error {
	if !errors.Is(err, ErrCorrupt) || IsInternal(tb.name) {
		return err
	}
	if _, named := fileKeyDecode(filepath.Base(path)); !named && !byKey {
		return err
	}
	return fmt.Errorf("%w (%w: del clears it)", err, ErrDamagedKey)
}

// readDir calls fn for each record file in the bucket's folder, reading only
// headers. Names the store would not produce are skipped: they are not ours.
//
// skipDamaged passes over a record that fails to decode (ErrCorrupt), or
// that this user may not read (mode 000, or another user's file, as a
// `sudo cp -a` restore leaves them), instead of failing: the expiry walk,
// which every command's lazy reap runs, must not make one such record (an
// error only for those who read that key) fail every command of the
// store once anything has expired. In an internal bucket a
// damaged record whose name gives its key is kept in tb.damaged and
// visited with only its key.
func (tx *fileTx) readDir(tb *fileTxBucket, skipDamaged bool, fn func(rec fileRecord, name string) (stop bool)) error {
	fd, err := OpenTrusted(tb.dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if skipDamaged && (errors.Is(err, ErrUntrusted) || errors.Is(err, fs.ErrPermission)) {
		// A whole bucket folder we may not read, for the same reason
		// as one record: only that bucket's own commands refuse it.
		return nil
	}
	if errors.Is(err, ErrUntrusted) {
		return err
	}
	if err != nil {
		return fmt.Errorf("read bucket %s: %w", tb.name, err)
	}
	f := os.NewFile(uintptr(fd), tb.dir)
	defer f.Close()
	for {
		ents, err := f.ReadDir(512)
		for _, ent := range ents {
			name := ent.Name()
			if strings.HasPrefix(name, ".") || !ent.Type().IsRegular() {
				continue
			}
			if _, ok := fileKeyDecode(name); !ok && !fileKeyIsHashed(name) {
				continue
			}
			path := filepath.Join(tb.dir, name)
			if tx.s.testRecordRead != nil {
				tx.s.testRecordRead()
			}
			rec, ok, rerr := readRecord(path, false)
			if skipDamaged && (errors.Is(rerr, ErrCorrupt) || errors.Is(rerr, ErrUntrusted) || errors.Is(rerr, fs.ErrPermission)) {
				continue
			}
			if key, named := fileKeyDecode(name); named && IsInternal(tb.name) && errors.Is(rerr, ErrCorrupt) {
				if tb.damaged == nil {
					tb.damaged = map[string]string{}
				}
				tb.damaged[key] = path
				rec, ok, rerr = fileRecord{Key: key}, true, nil
			}
			if rerr != nil {
				return tb.damagedKey(path, rerr, false)
			}
			if !ok {
				continue
			}
			if fileKeyEncode(rec.Key) != name {
				if skipDamaged {
					continue
				}
				return tb.damagedKey(path, fileMisplaced(path), false)
			}
			if fn(rec, name) {
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read bucket %s: %w", tb.name, err)
		}
	}
}

// load reads the bucket's listing once per transaction.
func (tx *fileTx) load(tb *fileTxBucket) error {
	if tb.loaded {
		return nil
	}
	disk := map[string]fileDiskEntry{}
	if !tb.dropped {
		err := tx.readDir(tb, false, func(rec fileRecord, name string) bool {
			disk[rec.Key] = fileDiskEntry{name: name, expiresAt: rec.ExpiresAt, size: rec.ValueLen}
			return false
		})
		if err != nil {
			return err
		}
	}
	tb.disk, tb.live, tb.loaded = disk, 0, true
	for key, d := range disk {
		if _, over := tb.ops[key]; !over && tx.live(d.expiresAt) {
			tb.live++
		}
	}
	for _, op := range tb.ops {
		if !op.del && tx.live(op.expiresAt) {
			tb.live++
		}
	}
	return nil
}

// peek returns key's deadline in the merged view, expired or not, without
// reading the value.
func (tx *fileTx) peek(tb *fileTxBucket, key string) (expiresAt int64, exists bool, err error) {
	if op, ok := tb.ops[key]; ok {
		return op.expiresAt, !op.del, nil
	}
	if tb.loaded {
		d, ok := tb.disk[key]
		return d.expiresAt, ok, nil
	}
	rec, ok, err := tx.readKey(tb, key, false)
	return rec.ExpiresAt, ok, err
}

// entry returns key's entry in the merged view with its value, expired or
// not.
func (tx *fileTx) entry(tb *fileTxBucket, key string) (Entry, bool, error) {
	if op, ok := tb.ops[key]; ok {
		if op.del {
			return Entry{}, false, nil
		}
		return Entry{Bucket: tb.name, Key: key, Value: bytes.Clone(op.value), ExpiresAt: op.expiresAt, Size: int64(len(op.value))}, true, nil
	}
	if tb.loaded {
		if _, ok := tb.disk[key]; !ok {
			return Entry{}, false, nil
		}
	}
	rec, ok, err := tx.readKey(tb, key, true)
	if err != nil || !ok {
		return Entry{}, false, err
	}
	return Entry{Bucket: tb.name, Key: key, Value: rec.Value, ExpiresAt: rec.ExpiresAt, Size: rec.ValueLen}, true, nil
}

// forEach calls fn for every entry in the merged view of a loaded bucket,
// expired or not, in no particular order.
func (tx *fileTx) forEach(tb *fileTxBucket, fn func(key string, expiresAt, size int64)) {
	for key, d := range tb.disk {
		if _, over := tb.ops[key]; !over {
			fn(key, d.expiresAt, d.size)
		}
	}
	for key, op := range tb.ops {
		if !op.del {
			fn(key, op.expiresAt, int64(len(op.value)))
		}
	}
}

// Now is the transaction's time.
func (tx *fileTx) Now() int64 { return tx.now }

// Get returns the live entry for key.
func (tx *fileTx) Get(bucket, key string) (Entry, bool, error) {
	if err := tx.check(false); err != nil {
		return Entry{}, false, err
	}
	tb, err := tx.bucket(bucket)
	if err != nil {
		return Entry{}, false, err
	}
	if err := ValidateKey(key); err != nil {
		return Entry{}, false, err
	}
	e, ok, err := tx.entry(tb, key)
	if err != nil || !ok || !tx.live(e.ExpiresAt) {
		return Entry{}, false, err
	}
	return e, true, nil
}

// Put buffers a create or replace.
func (tx *fileTx) Put(e Entry) error {
	if err := tx.check(true); err != nil {
		return err
	}
	tb, err := tx.bucket(e.Bucket)
	if err != nil {
		return err
	}
	if err := ValidateKey(e.Key); err != nil {
		return err
	}
	if IsInternal(e.Bucket) {
		if err := checkInternalPut(e); err != nil {
			return err
		}
	}
	if tb.loaded {
		if exp, ok, _ := tx.peek(tb, e.Key); ok && tx.live(exp) {
			tb.live--
		}
		if tx.live(e.ExpiresAt) {
			tb.live++
		}
	}
	value := bytes.Clone(e.Value)
	if value == nil {
		value = []byte{}
	}
	tb.ops[e.Key] = fileKeyOp{expiresAt: e.ExpiresAt, value: value}
	if e.ExpiresAt != 0 {
		tx.loadHint()
		if tx.hint == 0 || e.ExpiresAt < tx.hint {
			tx.hint = e.ExpiresAt
		}
	}
	return nil
}

// Delete buffers the removal of key, live or expired.
func (tx *fileTx) Delete(bucket, key string) (bool, error) {
	if err := tx.check(true); err != nil {
		return false, err
	}
	tb, err := tx.bucket(bucket)
	if err != nil {
		return false, err
	}
	if err := ValidateKey(key); err != nil {
		return false, err
	}
	exp, ok, err := tx.peek(tb, key)
	if err != nil && (IsInternal(bucket) && errors.Is(err, ErrCorrupt) || errors.Is(err, ErrDamagedKey)) {
		// livedict's own damaged record (a scan listed it raw): deleting
		// it is how the hooks layer takes it out of the way. A user's
		// damaged record (named by its file): del is how the user
		// clears it.
		exp, ok, err = 0, true, nil
	}
	if err != nil || !ok {
		return false, err
	}
	wasLive := tx.live(exp)
	if wasLive && tb.loaded {
		tb.live--
	}
	tb.ops[key] = fileKeyOp{del: true}
	return wasLive, nil
}

// Scan visits live entries with the prefix in bytewise key order. The keys
// are listed when the scan starts; fn may write, and an entry it deletes or
// expires before the scan reaches it is skipped.
func (tx *fileTx) Scan(bucket, prefix string, withValues bool, fn func(Entry) error) error {
	return tx.scan(bucket, func(key string) bool { return strings.HasPrefix(key, prefix) }, withValues, fn)
}

// ScanAfter is Scan over the keys after after. The folder is listed whole
// either way: a directory has no order to resume from.
func (tx *fileTx) ScanAfter(bucket, after string, withValues bool, fn func(Entry) error) error {
	return tx.scan(bucket, func(key string) bool { return key > after }, withValues, fn)
}

// scan visits the live entries whose keys pass want, in key order.
func (tx *fileTx) scan(bucket string, want func(string) bool, withValues bool, fn func(Entry) error) error {
	if err := tx.check(false); err != nil {
		return err
	}
	tb, err := tx.bucket(bucket)
	if err != nil {
		return err
	}
	if err := tx.load(tb); err != nil {
		return err
	}
	var keys []string
	tx.forEach(tb, func(key string, exp, _ int64) {
		if tx.live(exp) && want(key) {
			keys = append(keys, key)
		}
	})
	slices.Sort(keys)
	for _, key := range keys {
		var e Entry
		if op, ok := tb.ops[key]; ok {
			if op.del || !tx.live(op.expiresAt) {
				continue
			}
			e = Entry{Bucket: tb.name, Key: key, ExpiresAt: op.expiresAt, Size: int64(len(op.value))}
			if withValues {
				e.Value = bytes.Clone(op.value)
			}
		} else {
			d := tb.disk[key]
			e = Entry{Bucket: tb.name, Key: key, ExpiresAt: d.expiresAt, Size: d.size}
			if path, ok := tb.damaged[key]; ok && withValues {
				raw, err := readTrusted(path)
				if err != nil {
					return err
				}
				e.Value, e.Size = raw, int64(len(raw))
			} else if withValues {
				rec, ok, err := tx.readKey(tb, key, true)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("%w: %s vanished during a scan", ErrCorrupt, filepath.Join(tb.dir, d.name))
				}
				e.Value = rec.Value
			}
		}
		if err := fn(e); err != nil {
			if errors.Is(err, ErrStopScan) {
				return nil
			}
			return err
		}
	}
	return nil
}

// Count returns the bucket's number of live keys.
func (tx *fileTx) Count(bucket string) (int64, error) {
	if err := tx.check(false); err != nil {
		return 0, err
	}
	tb, err := tx.userBucket(bucket)
	if err != nil {
		return 0, err
	}
	if err := tx.load(tb); err != nil {
		return 0, err
	}
	return tb.live, nil
}

// bucketNames lists the buckets on disk and in the transaction, sorted.
func (tx *fileTx) bucketNames() ([]string, error) {
	names, err := readDirNames(tx.s.path(fileBucketsDir))
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if b, ok := fileKeyDecode(n); ok && ValidateBucket(b) == nil && !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	for b := range tx.buckets {
		if !seen[b] && !IsInternal(b) {
			seen[b] = true
			out = append(out, b)
		}
	}
	slices.Sort(out)
	return out, nil
}

// CountAll returns the number of live keys in the store.
func (tx *fileTx) CountAll() (int64, error) {
	if err := tx.check(false); err != nil {
		return 0, err
	}
	names, err := tx.bucketNames()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, name := range names {
		tb, err := tx.bucket(name)
		if err != nil {
			return 0, err
		}
		if err := tx.load(tb); err != nil {
			return 0, err
		}
		n += tb.live
	}
	return n, nil
}

// Soonest returns the live entry with the nearest deadline; ties go to the
// smallest key so the choice is repeatable.
func (tx *fileTx) Soonest(bucket string) (Entry, bool, error) {
	if err := tx.check(false); err != nil {
		return Entry{}, false, err
	}
	tb, err := tx.userBucket(bucket)
	if err != nil {
		return Entry{}, false, err
	}
	if err := tx.load(tb); err != nil {
		return Entry{}, false, err
	}
	var best string
	var bestAt int64
	tx.forEach(tb, func(key string, exp, _ int64) {
		if exp != 0 && tx.live(exp) && (bestAt == 0 || exp < bestAt || exp == bestAt && key < best) {
			best, bestAt = key, exp
		}
	})
	if bestAt == 0 {
		return Entry{}, false, nil
	}
	return tx.entry(tb, best)
}

// Buckets lists buckets with live keys or a policy, by name.
func (tx *fileTx) Buckets() ([]BucketInfo, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	names, err := tx.bucketNames()
	if err != nil {
		return nil, err
	}
	var out []BucketInfo
	for _, name := range names {
		tb, err := tx.bucket(name)
		if err != nil {
			return nil, err
		}
		if err := tx.load(tb); err != nil {
			return nil, err
		}
		p, err := tx.policy(tb)
		if err != nil {
			return nil, err
		}
		if tb.live > 0 || !p.IsZero() {
			out = append(out, BucketInfo{Name: name, Keys: tb.live})
		}
	}
	return out, nil
}

// filePolicy is a policy as stored in a bucket's .policy file.
type filePolicy struct {
	MaxKeys    int64  `json:"max_keys"`
	DefaultTTL int64  `json:"default_ttl_ms"`
	OnFull     OnFull `json:"on_full,omitempty"`
}

func filePolicyEncode(p Policy) []byte {
	data, _ := json.Marshal(filePolicy{MaxKeys: p.MaxKeys, DefaultTTL: p.DefaultTTL, OnFull: p.OnFull})
	return append(data, '\n')
}

func filePolicyDecode(data []byte) (Policy, error) {
	var fp filePolicy
	if err := json.Unmarshal(data, &fp); err != nil {
		return Policy{}, fmt.Errorf("%w: unreadable bucket policy", ErrCorrupt)
	}
	return Policy{MaxKeys: fp.MaxKeys, DefaultTTL: fp.DefaultTTL, OnFull: fp.OnFull}, nil
}

// policy returns the bucket's policy in the merged view.
func (tx *fileTx) policy(tb *fileTxBucket) (Policy, error) {
	if tb.policySet {
		return tb.policy, nil
	}
	if tb.dropped {
		return Policy{}, nil
	}
	path := filepath.Join(tb.dir, filePolicyName)
	data, err := readTrusted(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Policy{}, nil
	}
	if errors.Is(err, ErrUntrusted) {
		return Policy{}, err
	}
	if err != nil {
		return Policy{}, fmt.Errorf("read bucket policy: %w", err)
	}
	p, err := filePolicyDecode(data)
	if err == nil {
		err = p.checkStored(tb.name)
	} else {
		err = damagedPolicy(fmt.Errorf("%w; %s", err, policyRepair(tb.name)))
	}
	if err != nil {
		return Policy{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Policy returns the bucket's policy, the zero Policy when none is set.
func (tx *fileTx) Policy(bucket string) (Policy, error) {
	if err := tx.check(false); err != nil {
		return Policy{}, err
	}
	tb, err := tx.userBucket(bucket)
	if err != nil {
		return Policy{}, err
	}
	return tx.policy(tb)
}

// SetPolicy buffers a policy change; the zero Policy removes the file.
func (tx *fileTx) SetPolicy(bucket string, p Policy) error {
	if err := tx.check(true); err != nil {
		return err
	}
	tb, err := tx.userBucket(bucket)
	if err != nil {
		return err
	}
	if p.IsZero() {
		p = Policy{}
	}
	tb.policySet, tb.policy = true, p
	return nil
}

// DropBucket buffers the removal of the bucket's folder. Whether the bucket
// had anything is learnt from its policy or its first live key: a drop
// does not read the records it removes.
func (tx *fileTx) DropBucket(bucket string) (bool, error) {
	if err := tx.check(true); err != nil {
		return false, err
	}
	tb, err := tx.userBucket(bucket)
	if err != nil {
		return false, err
	}
	p, err := tx.policy(tb)
	if err != nil {
		return false, err
	}
	had := !p.IsZero()
	if !had {
		if had, err = tx.anyLive(tb); err != nil {
			return false, err
		}
	}
	if !tb.dropped {
		// Only a folder that exists needs removing; skipping the others
		// keeps a no-op drop from costing a journaled commit.
		if _, err := os.Lstat(tb.dir); err == nil {
			tb.dropped = true
		}
	}
	tb.ops = map[string]fileKeyOp{}
	tb.disk = map[string]fileDiskEntry{}
	tb.live = 0
	tb.loaded = true
	tb.policySet, tb.policy = false, Policy{}
	return had, nil
}

// anyLive reports whether the merged view of the bucket has a live key,
// reading records only until it meets one.
func (tx *fileTx) anyLive(tb *fileTxBucket) (bool, error) {
	if tb.loaded {
		return tb.live > 0, nil
	}
	for _, op := range tb.ops {
		if !op.del && tx.live(op.expiresAt) {
			return true, nil
		}
	}
	if tb.dropped {
		return false, nil // the folder goes at commit: only ops count
	}
	found := false
	err := tx.readDir(tb, false, func(rec fileRecord, _ string) bool {
		if _, over := tb.ops[rec.Key]; !over && tx.live(rec.ExpiresAt) {
			found = true
		}
		return found
	})
	return found, err
}

// Stats summarises the live contents. Buckets counts those with live keys,
// as the memory backend does; policy-only buckets are not content.
func (tx *fileTx) Stats() (Stats, error) {
	if err := tx.check(false); err != nil {
		return Stats{}, err
	}
	names, err := tx.bucketNames()
	if err != nil {
		return Stats{}, err
	}
	var st Stats
	for _, name := range names {
		tb, err := tx.bucket(name)
		if err != nil {
			return Stats{}, err
		}
		if err := tx.load(tb); err != nil {
			return Stats{}, err
		}
		if tb.live > 0 {
			st.Buckets++
		}
		st.Keys += tb.live
		tx.forEach(tb, func(_ string, exp, _ int64) {
			if exp != 0 && tx.live(exp) {
				st.KeysWithTTL++
				if st.NextExpiry == 0 || exp < st.NextExpiry {
					st.NextExpiry = exp
				}
			}
		})
	}
	return st, nil
}
