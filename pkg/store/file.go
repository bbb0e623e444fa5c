//go:build unix

package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livedict/livedict/pkg/ttl"
	"golang.org/x/sys/unix"
)

// The file store keeps one folder per bucket and one file per key, so a
// store can be inspected, backed up and synced with ordinary tools:
//
//	DIR/.livedict          marker: {"format":"livedict-file","version":1}
//	DIR/.lock              flock'ed: shared by readers, exclusive by writers
//	DIR/.journal           redo journal of a multi-write commit (filejournal.go)
//	DIR/.next-expiry       lower bound of the earliest deadline (decimal ms)
//	DIR/b/<bucket>/        one folder per bucket, named by fileKeyEncode
//	DIR/b/<bucket>/<key>   one record per key (filerecord.go)
//	DIR/b/<bucket>/.policy the bucket's policy as JSON
//	DIR/i/<bucket>/<key>   livedict's own buckets ("!hooks"...), made on first use
//
// Internal buckets live apart from b/ so nothing that lists buckets meets
// them; their records, commits and journal are the same as a user bucket's,
// so a transaction that writes both is still all or nothing.
//
// Every name the store itself uses starts with '.', which fileKeyEncode never
// produces, so internal files cannot clash with keys.
//
// A transaction holds the lock for its whole life, so the files cannot
// change under it. An Update buffers its writes in memory and applies them
// at commit: one write is a temporary file renamed into place, several go
// through the redo journal so they land all or nothing even across kill -9.

const (
	fileMarkerName  = ".livedict"
	fileLockName    = ".lock"
	fileJournalName = ".journal"
	fileHintName    = ".next-expiry"
	filePolicyName  = ".policy"
	fileTempName    = ".tmp"
	fileBucketsDir  = "b"
	fileInternalDir = "i"

	fileFormat  = "livedict-file"
	fileVersion = 1

	// fileSmallRecord is the largest record read whole (and so checksummed)
	// even when only its key and deadline are wanted; bigger ones are read
	// up to their header so listings never pull in large values.
	fileSmallRecord = 64 << 10
	// fileSmallCommit is the most files a journaled commit writes and
	// fsyncs one by one; above it one syncfs of the filesystem is cheaper.
	fileSmallCommit = 64
	// fileHintUnknown stands in for a missing or unreadable hint: a
	// deadline in the distant past, so the next reaper walks the store and
	// writes a true one.
	fileHintUnknown = 1
)

// errFileClosed is returned by a store used after Close, or a transaction
// used after its function returned.
var errFileClosed = errors.New("file store: used after close")

// fileMarker is the content of DIR/.livedict.
type fileMarker struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

// fileStore is a Store kept in a folder. It holds no open files between
// transactions: each transaction opens the lock file itself, so two
// transactions of one process exclude each other exactly as two processes
// do (flock locks belong to the open file description).
type fileStore struct {
	dir    string // absolute
	opts   Options
	closed atomic.Bool

	// crashAfterJournal makes a commit stop right after its journal is
	// durable, as if the process were killed there. Tests only.
	crashAfterJournal bool
}

// errFileTestCrash is what a commit returns when crashAfterJournal stops it.
var errFileTestCrash = errors.New("file store: simulated crash after journal")

// openFile opens the file store in dir, creating it (and its parents, mode
// 0700) when dir is missing or empty.
func openFile(dir string, opts Options) (Store, error) {
	opts = opts.withDefaults()
	if dir == "" {
		return nil, fmt.Errorf("%w: file: needs a folder", ErrBadURL)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s := &fileStore{dir: abs, opts: opts}
	if err := s.openDir(); err != nil {
		return nil, err
	}
	return s, nil
}

// path names a file in the store's folder.
func (s *fileStore) path(name string) string { return filepath.Join(s.dir, name) }

// bucketDir is the folder of a (valid) bucket.
func (s *fileStore) bucketDir(bucket string) string {
	if IsInternal(bucket) {
		return filepath.Join(s.dir, fileInternalDir, fileKeyEncode(bucket))
	}
	return filepath.Join(s.dir, fileBucketsDir, fileKeyEncode(bucket))
}

// openDir checks the marker, creating a new store when the folder is
// missing or empty. It never touches a folder that holds anything else.
func (s *fileStore) openDir() error {
	fi, err := os.Stat(s.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			return fmt.Errorf("create store: %w", err)
		}
	case err != nil:
		return fmt.Errorf("open store: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("%w: %s is not a folder", ErrNotStore, s.dir)
	}
	data, err := os.ReadFile(s.path(fileMarkerName))
	if errors.Is(err, fs.ErrNotExist) {
		empty, lerr := s.looksEmpty()
		if lerr != nil {
			return fmt.Errorf("open store: %w", lerr)
		}
		if !empty {
			// Another process may have created the store, and written
			// to it, since the marker was looked for.
			if data, err = os.ReadFile(s.path(fileMarkerName)); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: %s is not empty and has no %s", ErrNotStore, s.dir, fileMarkerName)
			}
		} else {
			if cerr := s.create(); cerr != nil {
				return fmt.Errorf("create store %s: %w", s.dir, cerr)
			}
			data, err = os.ReadFile(s.path(fileMarkerName))
		}
	}
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	var m fileMarker
	if err := json.Unmarshal(data, &m); err != nil || m.Format != fileFormat || m.Version < 1 {
		return fmt.Errorf("%w: %s: unreadable store marker", ErrCorrupt, s.path(fileMarkerName))
	}
	if m.Version > fileVersion {
		return fmt.Errorf("%w: %s has file store version %d, this livedict reads up to %d", ErrNewerStore, s.dir, m.Version, fileVersion)
	}
	return nil
}

// looksEmpty reports whether the folder holds nothing but the leftovers of
// a store creation that did not finish (or is running in another process
// right now), so it may be made into a store.
func (s *fileStore) looksEmpty() (bool, error) {
	names, err := readDirNames(s.dir)
	if err != nil {
		return false, err
	}
	for _, name := range names {
		switch {
		case name == fileLockName || name == fileHintName || strings.HasPrefix(name, fileMarkerName+".tmp-"):
		case name == fileBucketsDir:
			sub, err := readDirNames(s.path(name))
			if err != nil || len(sub) > 0 {
				return false, nil
			}
		default:
			return false, nil
		}
	}
	return true, nil
}

// create lays out a new store. Several processes may run it at once on the
// same folder: nothing it writes is ever overwritten, and the marker, which
// makes the folder a store, appears last and atomically.
func (s *fileStore) create() error {
	if err := os.MkdirAll(s.path(fileBucketsDir), 0o700); err != nil {
		return err
	}
	for _, f := range []struct{ name, data string }{{fileLockName, ""}, {fileHintName, "0\n"}} {
		err := writeNewFile(s.path(f.name), []byte(f.data))
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	marker, _ := json.Marshal(fileMarker{Format: fileFormat, Version: fileVersion})
	tmp := s.path(fmt.Sprintf("%s.tmp-%d-%d", fileMarkerName, os.Getpid(), time.Now().UnixNano()))
	if err := writeNewFile(tmp, append(marker, '\n')); err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, s.path(fileMarkerName)); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return fileSyncDir(s.dir)
}

// writeNewFile creates path (failing if it exists), writes data and fsyncs.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readDirNames lists a folder's names, nil when it does not exist.
func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// lock takes the store's flock (unix.LOCK_SH or unix.LOCK_EX) on a fresh
// open file, waiting in the kernel for up to the busy timeout (flockWait
// says why it does not poll). Closing the returned file releases the lock.
func (s *fileStore) lock(ctx context.Context, how int) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := s.path(fileLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil && how == unix.LOCK_SH {
		// A store the user may only read can still be read.
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("lock store: %w", err)
	}
	err = flockWait(ctx, int(f.Fd()), how, s.opts.BusyTimeout)
	if err == nil {
		return f, nil
	}
	f.Close()
	switch {
	case errors.Is(err, errLockTimeout):
		return nil, fmt.Errorf("%w: %s stayed locked by another livedict for %v", ErrBusy, s.dir, s.opts.BusyTimeout)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	default:
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
}

// Update runs fn in a read-write transaction under the exclusive lock.
func (s *fileStore) Update(ctx context.Context, fn func(Tx) error) error {
	if s.closed.Load() {
		return errFileClosed
	}
	lk, err := s.lock(ctx, unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer lk.Close()
	if err := s.recoverJournal(); err != nil {
		return err
	}
	tx := s.newTx(true)
	defer func() { tx.done = true }()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.commit()
}

// View runs fn in a read-only transaction under the shared lock. A journal
// left by a crashed writer must be replayed first, which needs the
// exclusive lock; the View then runs under that.
func (s *fileStore) View(ctx context.Context, fn func(Tx) error) error {
	if s.closed.Load() {
		return errFileClosed
	}
	lk, err := s.lock(ctx, unix.LOCK_SH)
	if err != nil {
		return err
	}
	defer func() { lk.Close() }()
	if _, err := os.Lstat(s.path(fileJournalName)); err == nil {
		lk.Close()
		if lk, err = s.lock(ctx, unix.LOCK_EX); err != nil {
			return err
		}
		if err := s.recoverJournal(); err != nil {
			return err
		}
	}
	tx := s.newTx(false)
	defer func() { tx.done = true }()
	return fn(tx)
}

// Info reports the folder and the total size of the files in it.
func (s *fileStore) Info() (Info, error) {
	var size int64
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed by a concurrent writer
			}
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		return Info{}, fmt.Errorf("measure store: %w", err)
	}
	return Info{Backend: "file", Location: s.dir, SizeBytes: size}, nil
}

// Close marks the store closed; it holds nothing open between transactions.
func (s *fileStore) Close() error {
	s.closed.Store(true)
	return nil
}

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

// fileReadBufs holds the buffers records are first read into. Most records
// are small; reading into a pooled buffer needs no fstat and no allocation
// beyond the value itself.
var fileReadBufs = sync.Pool{New: func() any { b := make([]byte, fileSmallRecord+1); return &b }}

// readRecord reads a record file; ok is false when it does not exist. With
// wantValue false a large record is read only up to its header.
//
// It uses raw system calls: os.Open costs two more per file (for the
// poller), which shows in a scan over many keys. O_NONBLOCK keeps a FIFO
// planted in a bucket folder from hanging the reader.
func readRecord(path string, wantValue bool) (rec fileRecord, ok bool, err error) {
	fd, err := fileOpen(path, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ENOENT) {
		return fileRecord{}, false, nil
	}
	if err != nil {
		return fileRecord{}, false, fmt.Errorf("read record: %w", &fs.PathError{Op: "open", Path: path, Err: err})
	}
	defer unix.Close(fd)
	bp := fileReadBufs.Get().(*[]byte)
	defer fileReadBufs.Put(bp)
	buf := *bp
	n, err := fileReadFull(fd, buf)
	if err != nil {
		return fileRecord{}, false, fmt.Errorf("read record: %w", &fs.PathError{Op: "read", Path: path, Err: err})
	}
	if n <= fileSmallRecord {
		// The whole file: decode and checksum it, then copy the value out
		// of the shared buffer.
		rec, err = fileRecordDecode(buf[:n])
		if err == nil {
			if wantValue {
				rec.Value = bytes.Clone(rec.Value)
			} else {
				rec.Value = nil
			}
		}
	} else {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return fileRecord{}, false, fmt.Errorf("read record: %w", &fs.PathError{Op: "stat", Path: path, Err: err})
		}
		if !wantValue {
			rec, _, err = fileRecordDecodeHeader(buf[:min(n, fileRecordHeaderMax)], st.Size)
		} else {
			// The size comes from the filesystem, not from the record, so
			// a damaged length field cannot make this allocation huge.
			data := make([]byte, st.Size)
			copy(data, buf[:n])
			m, rerr := fileReadFull(fd, data[n:])
			if rerr != nil {
				return fileRecord{}, false, fmt.Errorf("read record: %w", &fs.PathError{Op: "read", Path: path, Err: rerr})
			}
			rec, err = fileRecordDecode(data[:n+m])
		}
	}
	if err != nil {
		return fileRecord{}, false, fmt.Errorf("%s: %w", path, err)
	}
	return rec, true, nil
}

// fileOpen is open(2) with O_CLOEXEC, retried on EINTR.
func fileOpen(path string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, perm)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// fileReadFull reads into buf until it is full or the file ends.
func fileReadFull(fd int, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

// fileWriteAll writes data to a new or truncated file, fsyncing it when
// asked, with raw system calls for the same reason as readRecord.
func fileWriteAll(path string, data []byte, sync bool) error {
	fd, err := fileOpen(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o600)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	for len(data) > 0 && err == nil {
		var m int
		m, err = unix.Write(fd, data)
		switch {
		case err == unix.EINTR:
			err = nil
		case err == nil && m == 0:
			err = io.ErrShortWrite
		}
		data = data[max(m, 0):]
	}
	if err == nil && sync {
		err = unix.Fsync(fd)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return &fs.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}

// readKey reads key's record from disk, checking that the file holds that
// key (it may not, for a hashed name or a misplaced file).
func (tx *fileTx) readKey(tb *fileTxBucket, key string, wantValue bool) (fileRecord, bool, error) {
	path := filepath.Join(tb.dir, fileKeyEncode(key))
	rec, ok, err := readRecord(path, wantValue)
	if err != nil || !ok {
		return fileRecord{}, false, err
	}
	if rec.Key != key {
		return fileRecord{}, false, fmt.Errorf("%w: %s holds another key (hash collision or misplaced file)", ErrCorrupt, path)
	}
	return rec, true, nil
}

// readDir calls fn for each record file in the bucket's folder, reading only
// headers. Names the store would not produce are skipped: they are not ours.
func (tx *fileTx) readDir(tb *fileTxBucket, fn func(rec fileRecord, name string) (stop bool)) error {
	f, err := os.Open(tb.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read bucket %s: %w", tb.name, err)
	}
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
			rec, ok, rerr := readRecord(path, false)
			if rerr != nil {
				return rerr
			}
			if !ok {
				continue
			}
			if fileKeyEncode(rec.Key) != name {
				return fmt.Errorf("%w: %s holds another key (hash collision or misplaced file)", ErrCorrupt, path)
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
		err := tx.readDir(tb, func(rec fileRecord, name string) bool {
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
			if withValues {
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
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Policy{}, nil
	}
	if err != nil {
		return Policy{}, fmt.Errorf("read bucket policy: %w", err)
	}
	p, err := filePolicyDecode(data)
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

// DropBucket buffers the removal of the bucket's folder.
func (tx *fileTx) DropBucket(bucket string) (bool, error) {
	if err := tx.check(true); err != nil {
		return false, err
	}
	tb, err := tx.userBucket(bucket)
	if err != nil {
		return false, err
	}
	if err := tx.load(tb); err != nil {
		return false, err
	}
	p, err := tx.policy(tb)
	if err != nil {
		return false, err
	}
	had := tb.live > 0 || !p.IsZero()
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
	tb.policySet, tb.policy = false, Policy{}
	return had, nil
}

// loadHint reads DIR/.next-expiry once per transaction. A missing or
// unreadable hint counts as due, which costs one walk, never a missed entry.
func (tx *fileTx) loadHint() {
	if tx.hintLoaded {
		return
	}
	h := int64(fileHintUnknown)
	if data, err := os.ReadFile(tx.s.path(fileHintName)); err == nil {
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
			err := tx.readDir(tb, func(rec fileRecord, _ string) bool {
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

// ops lists the buffered writes; with withHint, a changed hint comes last.
func (tx *fileTx) ops(withHint bool) fileOpSource {
	return func(yield func(fileOp) error) error {
		names := make([]string, 0, len(tx.buckets))
		for name := range tx.buckets {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			tb := tx.buckets[name]
			if tb.dropped {
				if err := yield(fileOp{kind: fileOpDrop, bucket: name}); err != nil {
					return err
				}
			}
			for key, op := range tb.ops {
				o := fileOp{kind: fileOpDel, bucket: name, key: key}
				if !op.del {
					o.kind, o.data = fileOpPut, fileRecordEncode(op.expiresAt, key, op.value)
				}
				if err := yield(o); err != nil {
					return err
				}
			}
			if tb.policySet {
				o := fileOp{kind: fileOpPolicy, bucket: name}
				if !tb.policy.IsZero() {
					o.data = filePolicyEncode(tb.policy)
				}
				if err := yield(o); err != nil {
					return err
				}
			}
		}
		if withHint && tx.hintChanged() {
			return yield(fileOp{kind: fileOpHint, hint: tx.hint})
		}
		return nil
	}
}

func (tx *fileTx) hintChanged() bool { return tx.hintLoaded && tx.hint != tx.diskHint }

// commit applies the buffered writes. One write needs no journal: a rename
// or unlink is atomic by itself. Several (or a bucket drop, which removes
// many files) go through the journal.
func (tx *fileTx) commit() error {
	n, writes, journal, internal := 0, 0, false, false
	for name, tb := range tx.buckets {
		n += len(tb.ops)
		internal = internal || IsInternal(name) && len(tb.ops) > 0
		for _, op := range tb.ops {
			if !op.del {
				writes++
			}
		}
		if tb.policySet {
			n++
			writes++
		}
		journal = journal || tb.dropped
	}
	s := tx.s
	if journal || n > 1 {
		version := byte(fileJournalVersion)
		if internal {
			version = fileJournalVersionInternal
		}
		if err := s.writeJournal(tx.ops(true), version); err != nil {
			return err
		}
		if s.crashAfterJournal {
			return errFileTestCrash
		}
		// Deletes only need their folders synced, so a reap batch never
		// pays for a syncfs of the whole filesystem.
		return s.applyJournaled(tx.ops(true), writes <= fileSmallCommit)
	}
	full := s.opts.Durability == Full
	// The hint must stay a lower bound of every deadline on disk even if
	// we die half way, so a lower hint goes first and a higher one last.
	lowered := tx.hintChanged() && tx.hint != 0 && (tx.diskHint == 0 || tx.hint < tx.diskHint)
	if lowered {
		if err := s.writeHint(tx.hint, full); err != nil {
			return err
		}
	}
	err := tx.ops(false)(func(op fileOp) error { return s.applyOne(op, full) })
	if err != nil {
		return err
	}
	if tx.hintChanged() && !lowered {
		return s.writeHint(tx.hint, full)
	}
	return nil
}

// writeHint replaces DIR/.next-expiry.
func (s *fileStore) writeHint(v int64, full bool) error {
	return writeFileAtomic(s.dir, fileHintName, fileTempName, []byte(strconv.FormatInt(v, 10)+"\n"), full, full)
}

// applyOne applies the only write of a transaction atomically: the new
// file is written beside the old one, fsynced so a crash cannot leave it
// torn, and renamed over it.
func (s *fileStore) applyOne(op fileOp, full bool) error {
	dir := s.bucketDir(op.bucket)
	switch op.kind {
	case fileOpPut, fileOpPolicy:
		name := filePolicyName
		if op.kind == fileOpPut {
			name = fileKeyEncode(op.key)
		}
		if op.data == nil {
			return removeFile(filepath.Join(dir, name), full)
		}
		created, parentCreated, err := ensureDir(dir)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(dir, name, fileTempName, op.data, true, full); err != nil {
			return err
		}
		if parentCreated && full {
			if err := fileSyncDir(s.dir); err != nil {
				return err
			}
		}
		if created && full {
			return fileSyncDir(filepath.Dir(dir))
		}
		return nil
	case fileOpDel:
		return removeFile(filepath.Join(dir, fileKeyEncode(op.key)), full)
	}
	return fmt.Errorf("file store: cannot apply op %q alone", op.kind)
}

// applyJournaled applies the ops of a durable journal, makes them durable,
// then removes the journal. With small, files and folders are fsynced one
// by one; otherwise one syncfs covers them all.
func (s *fileStore) applyJournaled(src fileOpSource, small bool) error {
	made := map[string]bool{}
	touched := map[string]bool{}
	bdir := s.path(fileBucketsDir)
	ensure := func(dir string) error {
		if made[dir] {
			return nil
		}
		created, parentCreated, err := ensureDir(dir)
		if err != nil {
			return err
		}
		if created {
			touched[filepath.Dir(dir)] = true // DIR/b or DIR/i
		}
		if parentCreated {
			touched[s.dir] = true // DIR/i, on its first use
		}
		made[dir] = true
		return nil
	}
	write := func(path string, data []byte) error {
		// No temporary file: nobody reads while we hold the lock, and the
		// journal rewrites a file a crash tore.
		return fileWriteAll(path, data, small)
	}
	remove := func(path string) error {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		return nil
	}
	err := src(func(op fileOp) error {
		dir := s.bucketDir(op.bucket)
		switch op.kind {
		case fileOpDrop:
			delete(made, dir)
			touched[bdir] = true
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("drop bucket %s: %w", op.bucket, err)
			}
		case fileOpPut:
			touched[dir] = true
			if err := ensure(dir); err != nil {
				return err
			}
			return write(filepath.Join(dir, fileKeyEncode(op.key)), op.data)
		case fileOpDel:
			touched[dir] = true
			return remove(filepath.Join(dir, fileKeyEncode(op.key)))
		case fileOpPolicy:
			touched[dir] = true
			if op.data == nil {
				return remove(filepath.Join(dir, filePolicyName))
			}
			if err := ensure(dir); err != nil {
				return err
			}
			return write(filepath.Join(dir, filePolicyName), op.data)
		case fileOpHint:
			touched[s.dir] = true
			return write(s.path(fileHintName), []byte(strconv.FormatInt(op.hint, 10)+"\n"))
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Everything applied must be durable before the journal goes, or a
	// power loss could leave a torn file with nothing left to repair it.
	if small {
		for dir := range touched {
			if err := fileSyncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	} else if err := fileSyncFS(s.dir); err != nil {
		return fmt.Errorf("sync store: %w", err)
	}
	if err := os.Remove(s.path(fileJournalName)); err != nil {
		return fmt.Errorf("remove journal: %w", err)
	}
	// A journal that came back after a power loss would replay old writes
	// over newer ones.
	return fileSyncDir(s.dir)
}

// ensureDir creates a bucket folder (and DIR/b or DIR/i) when missing.
// parentCreated says the folder above it had to be made too, so the
// store's own folder changed.
func ensureDir(dir string) (created, parentCreated bool, err error) {
	err = os.Mkdir(dir, 0o700)
	if errors.Is(err, fs.ErrNotExist) {
		parentCreated = true
		err = os.MkdirAll(dir, 0o700)
	}
	if err == nil {
		return true, parentCreated, nil
	}
	if errors.Is(err, fs.ErrExist) {
		return false, false, nil
	}
	return false, false, fmt.Errorf("create bucket folder: %w", err)
}

// writeFileAtomic replaces dir/name by the temporary file tmpName renamed
// over it. Writers hold the exclusive lock, so they use one fixed temporary
// name per folder and a crash leaves at most one stray file behind.
func writeFileAtomic(dir, name, tmpName string, data []byte, syncFile, syncDir bool) error {
	tmp := filepath.Join(dir, tmpName)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	_, err = f.Write(data)
	if err == nil && syncFile {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	if syncDir {
		return fileSyncDir(dir)
	}
	return nil
}

// removeFile unlinks path; a missing file is already removed.
func removeFile(path string, syncDir bool) error {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if syncDir {
		return fileSyncDir(filepath.Dir(path))
	}
	return nil
}

// fileSyncDir fsyncs a folder so renames and unlinks in it are durable.
func fileSyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTSUP) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
