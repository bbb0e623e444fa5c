//go:build unix

package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

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
//	DIR/.trash/<name>/     dropped bucket folders, deleted after their commit (filetrash.go)
//	DIR/.d/                livedict's state beside the data: delivery and daemon
//	                       locks, hooks' work dirs (hooks.StateDir)
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
	// FileStateDir is the state dir's name inside a file store.
	FileStateDir = ".d"

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
	dir    string // absolute, symlinks resolved
	opts   Options
	closed atomic.Bool
	ready  atomic.Bool // the store exists (reads of a missing one create nothing)

	// crashAfterJournal makes a commit stop right after its journal is
	// durable, as if the process were killed there. Tests only.
	crashAfterJournal bool
	// testBeforeEmptyTrash runs after a commit that dropped a bucket has
	// released the lock, before the moved folder is deleted; testRecordRead
	// runs for each record a bucket listing reads. Tests only.
	testBeforeEmptyTrash func()
	testRecordRead       func()
	// testBeforeMkdir runs when a write found no store folder, before it
	// makes one. Tests only.
	testBeforeMkdir func()
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
	real, _, err := resolveStore(abs)
	if err != nil {
		return nil, err
	}
	s := &fileStore{dir: real, opts: opts}
	if _, err := s.openDir(false); err != nil {
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

// openDir checks the folder and its marker against the trust rule. When
// the folder is missing or empty it creates a new store if write is set,
// and otherwise reports that there is none yet (reads create nothing). It
// never touches a folder that holds anything else.
func (s *fileStore) openDir(write bool) (exists bool, err error) {
	var st unix.Stat_t
	err = unix.Lstat(s.dir, &st)
	switch {
	case err == unix.ENOENT:
		if !write {
			return false, nil
		}
		if s.testBeforeMkdir != nil {
			s.testBeforeMkdir()
		}
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			return false, fmt.Errorf("create store: %w", err)
		}
		// Likewise a folder on the way that another user made a symlink
		// since openFile resolved the path (sqliteStore.create).
		if _, err := evalTrustedSymlinks(filepath.Dir(s.dir)); err != nil {
			return false, err
		}
		// MkdirAll is content with a folder (or a symlink to one) that
		// another process made since the lstat above: in /tmp another
		// user can make it first, and the new store's files would go
		// into a folder they own. Check what is there now as any
		// existing folder is.
		if err := unix.Lstat(s.dir, &st); err != nil {
			return false, fmt.Errorf("create store: %w", &fs.PathError{Op: "stat", Path: s.dir, Err: err})
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return false, checkKind(s.dir, &st)
		}
		if err := trustStat(s.dir, &st); err != nil {
			return false, err
		}
	case err != nil:
		return false, fmt.Errorf("open store: %w", &fs.PathError{Op: "stat", Path: s.dir, Err: err})
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return false, fmt.Errorf("%w: %s is not a folder", ErrNotStore, s.dir)
	default:
		if err := trustStat(s.dir, &st); err != nil {
			return false, err
		}
	}
	data, err := readTrusted(s.path(fileMarkerName))
	if errors.Is(err, fs.ErrNotExist) {
		empty, lerr := s.looksEmpty()
		if lerr != nil {
			return false, fmt.Errorf("open store: %w", lerr)
		}
		if !empty {
			// Another process may have created the store, and written
			// to it, since the marker was looked for.
			if data, err = readTrusted(s.path(fileMarkerName)); errors.Is(err, fs.ErrNotExist) {
				return false, fmt.Errorf("%w: %s is not empty and has no %s", ErrNotStore, s.dir, fileMarkerName)
			}
		} else {
			if !write {
				return false, nil
			}
			if cerr := s.create(); cerr != nil {
				return false, fmt.Errorf("create store %s: %w", s.dir, cerr)
			}
			data, err = readTrusted(s.path(fileMarkerName))
		}
	}
	if err != nil {
		if errors.Is(err, ErrUntrusted) {
			return false, err
		}
		return false, fmt.Errorf("open store: %w", err)
	}
	var m fileMarker
	if err := json.Unmarshal(data, &m); err != nil || m.Format != fileFormat || m.Version < 1 {
		return false, fmt.Errorf("%w: %s: unreadable store marker", ErrCorrupt, s.path(fileMarkerName))
	}
	if m.Version > fileVersion {
		return false, fmt.Errorf("%w: %s has file store version %d, this livedict reads up to %d", ErrNewerStore, s.dir, m.Version, fileVersion)
	}
	s.sweepTemps()
	// b/ and i/ hold every bucket folder: another user's, or one others
	// can write, could hold folders they made. .trash/ is only deleted
	// from, but nothing is deleted from a folder that is not ours.
	for _, sub := range []string{fileBucketsDir, fileInternalDir, fileTrashDir} {
		if err := checkAbsent(s.path(sub)); err != nil {
			return false, err
		}
	}
	s.ready.Store(true)
	return true, nil
}

// fileStaleTemp is the age past which a temporary file of the store's own
// folder is a leftover: each is renamed or linked into place within
// microseconds of its creation.
const fileStaleTemp = time.Minute

// sweepTemps removes the temporary files a process killed at the wrong
// moment left in the store's folder: a marker being created
// (.livedict.tmp-*) or an expiry hint a reader was correcting
// (.next-expiry.tmp-*). Their names are unique, so nothing else ever
// replaced or removed them and they stayed forever. Each process sweeps
// once, when it opens the store (a listing of a folder of a few names),
// and only files old enough that no live process can still be using them,
// since it holds no lock here.
func (s *fileStore) sweepTemps() {
	names, err := readDirNames(s.dir)
	if err != nil {
		return
	}
	for _, name := range names {
		if !strings.HasPrefix(name, fileMarkerName+".tmp-") && !strings.HasPrefix(name, fileHintName+".tmp-") {
			continue
		}
		var st unix.Stat_t
		path := s.path(name)
		if unix.Lstat(path, &st) != nil || time.Since(time.Unix(st.Mtim.Unix())) < fileStaleTemp {
			continue
		}
		os.Remove(path)
	}
}

// ensure makes sure the store exists before a transaction: a write creates
// it, a read finds it if another process made it since Open. It reports
// whether the store is there.
func (s *fileStore) ensure(write bool) (bool, error) {
	if s.ready.Load() {
		return true, nil
	}
	return s.openDir(write)
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
		case name == FileStateDir:
			// A daemon started before the first write makes the folder
			// for its locks; the store is made around it.
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
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
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
// open file, waiting in the kernel for up to the busy timeout (FlockWait
// says why it does not poll), behind a turnstile that keeps readers from
// starving writers (lockGate). Closing the returned file releases the lock.
//
// The lock is only good if the file locked is still DIR/.lock once it is
// held: .lock is never written, so a cleaner that ages files out
// (systemd-tmpfiles in /tmp, find -mtime -delete) or a user removing a
// "stale lock" can unlink it while commands queue on it. Those queued
// would then each get the lock of a file nobody else uses and write beside
// the processes locking the new .lock: lost updates, and two writers on
// one temporary name could rename a half-written record into place. So
// the locked descriptor is compared with the path, and the lock taken
// again on the file there now when they differ.
func (s *fileStore) lock(ctx context.Context, how int) (*os.File, error) {
	deadline := time.Now().Add(s.opts.BusyTimeout)
	for {
		f, err := s.lockOnce(ctx, how, deadline)
		if err != nil {
			return nil, err
		}
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Lstat(f.Name(), &now) == nil &&
			held.Dev == now.Dev && held.Ino == now.Ino {
			return f, nil
		}
		f.Close()
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("%w: %s stayed locked by another livedict for %s", ErrBusy, s.dir, s.opts.busyFor())
		}
	}
}

// lockOnce opens DIR/.lock (creating it when missing) and takes its lock,
// waiting until deadline.
func (s *fileStore) lockOnce(ctx context.Context, how int, deadline time.Time) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := s.path(fileLockName)
	writable := true
	fd, err := OpenTrusted(path, unix.O_RDWR|unix.O_CREAT)
	if err != nil && how == unix.LOCK_SH && !errors.Is(err, ErrUntrusted) {
		// A store the user may only read can still be read.
		fd, err = OpenTrusted(path, unix.O_RDONLY)
		writable = false
	}
	if errors.Is(err, ErrUntrusted) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("lock store: %w", err)
	}
	f := os.NewFile(uintptr(fd), path)
	leaveGate, err := lockGate(ctx, fd, writable, time.Until(deadline))
	if err == nil {
		err = FlockWait(ctx, fd, how, time.Until(deadline))
		leaveGate()
	}
	if err == nil {
		return f, nil
	}
	f.Close()
	switch {
	case errors.Is(err, errLockTimeout):
		return nil, fmt.Errorf("%w: %s stayed locked by another livedict for %s", ErrBusy, s.dir, s.opts.busyFor())
	case ctx.Err() != nil:
		return nil, ctx.Err()
	default:
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
}

// Update runs fn in a read-write transaction under the exclusive lock.
// What its commit dropped is deleted after the lock is released.
func (s *fileStore) Update(ctx context.Context, fn func(Tx) error) error {
	if s.closed.Load() {
		return errFileClosed
	}
	if ok, err := s.ensure(!noCreate(ctx)); err != nil {
		return err
	} else if !ok {
		return NewMemory(s.opts).Update(ctx, fn) // see NoCreate
	}
	lk, err := s.lock(ctx, unix.LOCK_EX)
	if err != nil {
		return err
	}
	trash := &fileTrash{}
	defer func() {
		lk.Close()
		s.emptyTrash(trash)
	}()
	return s.update(ctx, fn, trash)
}

// update is the part of Update that holds the lock.
func (s *fileStore) update(ctx context.Context, fn func(Tx) error, trash *fileTrash) error {
	if err := s.recoverJournal(trash); err != nil {
		return err
	}
	tx := s.newTx(true)
	tx.trash = trash
	defer func() { tx.done = true }()
	if err := fn(tx); err != nil {
		return err
	}
	// ctx ended while fn ran (a signal to an import writing 100,000
	// keys): commit nothing. Checked only while waiting for the lock, it
	// let such an import commit everything and exit 0 a minute later.
	if err := ctx.Err(); err != nil {
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
	if ok, err := s.ensure(false); err != nil {
		return err
	} else if !ok {
		// A read of a store that does not exist sees an empty one.
		return NewMemory(s.opts).View(ctx, fn)
	}
	lk, err := s.lock(ctx, unix.LOCK_SH)
	if err != nil {
		return err
	}
	trash := &fileTrash{}
	defer func() {
		lk.Close()
		if len(trash.moved) > 0 { // a replayed drop
			s.emptyTrash(trash)
		}
	}()
	if _, err := os.Lstat(s.path(fileJournalName)); err == nil {
		lk.Close()
		if lk, err = s.lock(ctx, unix.LOCK_EX); err != nil {
			return err
		}
		if err := s.recoverJournal(trash); err != nil {
			return err
		}
	}
	tx := s.newTx(false)
	defer func() { tx.done = true }()
	return fn(tx)
}

// Locate says where the store is without walking it (Info measures every
// file): writers ask it once per command, so it must cost nothing.
func (s *fileStore) Locate() Info { return Info{Backend: "file", Location: s.dir} }

// Info reports the folder and the total size of the files in it.
func (s *fileStore) Info() (Info, error) {
	var size int64
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed by a concurrent writer, or no store yet
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
