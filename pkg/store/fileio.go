//go:build unix

package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// Raw file I/O of the file store: record reads without Go's poller, and
// atomic and durable writes (syncfs lives in filesync_*.go).

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
	fd, err := fileOpen(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if errors.Is(err, unix.ENOENT) {
		return fileRecord{}, false, nil
	}
	if err == unix.ELOOP {
		return fileRecord{}, false, untrusted(path, "is a symbolic link", unix.S_IFLNK)
	}
	if err != nil {
		return fileRecord{}, false, fmt.Errorf("read record: %w", &fs.PathError{Op: "open", Path: path, Err: err})
	}
	defer unix.Close(fd)
	// The trust rule on the descriptor already open: a record another
	// user planted (in a folder whose mode was loosened) is refused.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fileRecord{}, false, fmt.Errorf("read record: %w", &fs.PathError{Op: "stat", Path: path, Err: err})
	}
	if err := checkKind(path, &st); err != nil {
		return fileRecord{}, false, err
	}
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
		if !wantValue {
			rec, _, err = fileRecordDecodeHeader(buf[:min(n, fileRecordHeaderMax)], st.Size)
		} else if _, _, err = fileRecordDecodeHeader(buf[:min(n, fileRecordHeaderMax)], st.Size); err == nil {
			// The header must agree with the file's size before the file
			// is read whole: a record grown by truncate(1) or a damaged
			// filesystem can claim terabytes (sparse), and allocating its
			// size would kill the process instead of reporting damage.
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

// fileWriteAll makes path hold exactly data, fsyncing it when asked, with
// raw system calls for the same reason as readRecord. A file that is there
// is overwritten in place, and cut only when it was longer: O_TRUNC freed
// its blocks just to allocate new ones, and on ext4 (the truncate's orphan
// list and block freeing, discard, the writeback auto_da_alloc starts on
// close) that made applying a 50,000-key import --replace take 8-27 s
// under the lock, against 0.5-2 s in place. Only applyJournaled writes
// this way: a file a crash leaves half overwritten is as torn as one half
// written after O_TRUNC, and nobody reads it before the journal's replay
// has rewritten it whole.
//
// A file with other hard links (a snapshot taken with cp -al, or
// rsync --link-dest run against the live store) is not overwritten: that
// would change the snapshot's copy too, which a rename never did. It is
// unlinked and written anew. The fstat that finds this also gives the old
// size, so it costs no extra system call. O_NONBLOCK keeps a FIFO at the
// path from blocking the open while the store is locked. A file that
// cannot be opened for writing (chmod a-w) is replaced the same way, as
// the rename of a single write replaces it.
func fileWriteAll(path string, data []byte, sync bool) error {
	var st unix.Stat_t
	fd, err := fileOpen(path, unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0o600)
	// ENXIO: a FIFO nobody reads; EACCES: a record made read-only (a
	// rename would replace either).
	replace := err == unix.ENXIO || err == unix.EACCES
	if err == nil {
		if err = unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink > 1 {
			unix.Close(fd)
			replace = err == nil
		}
	}
	if replace {
		st = unix.Stat_t{}
		if uerr := unix.Unlink(path); uerr == nil {
			fd, err = fileOpen(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600)
		} else if err == nil {
			err = uerr
		}
	}
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	size := int64(len(data))
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
	if err == nil && st.Size > size {
		err = unix.Ftruncate(fd, size)
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
		// A folder that is there must pass the trust rule before a record
		// goes into it.
		return false, false, CheckPath(dir)
	}
	return false, false, fmt.Errorf("create bucket folder: %w", err)
}

// readTrusted reads a small file of the store (marker, policy, hint,
// journal header) through OpenTrusted. A missing file is fs.ErrNotExist.
func readTrusted(path string) ([]byte, error) {
	fd, err := OpenTrusted(path, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	return io.ReadAll(f)
}

// writeFileAtomic replaces dir/name by the temporary file tmpName renamed
// over it. Writers hold the exclusive lock, so they use one fixed temporary
// name per folder and a crash leaves at most one stray file behind.
//
// Whatever is at the temporary name is unlinked first and the file made
// new (O_EXCL): opening it in place would follow what is there, and a FIFO
// there (planted, or left by a tool) blocked open(2) for a reader that
// never came, so every set hung holding the store's lock. Something that
// cannot be unlinked (a folder with files) fails the create with one error.
func writeFileAtomic(dir, name, tmpName string, data []byte, syncFile, syncDir bool) error {
	tmp := filepath.Join(dir, tmpName)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write %s: remove stale %w", filepath.Join(dir, name), err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
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
