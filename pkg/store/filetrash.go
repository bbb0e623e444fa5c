//go:build unix

package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Dropping a bucket: the commit moves its folder into DIR/.trash with one
// rename (the journaled drop op) and the files are deleted only after the
// commit is complete and the store's lock released, so a drop of a huge
// bucket keeps other commands waiting for one rename, not for an unlink
// per key.
//
// Everything in DIR/.trash is garbage: a folder gets there only through a
// drop whose journal is already committed. It is outside DIR/b and DIR/i,
// so nothing reads it as a bucket, and its name starts with '.', which no
// bucket's does. Each moved folder gets a fresh name, so replaying a drop
// (which moves DIR/b/<bucket> again only if it is there) never meets an
// earlier one.
//
// The writer that moved a folder holds a flock on it while it deletes it.
// Every write transaction, once it has released the store's lock, removes
// the folders in the trash that nobody holds: those left by a writer
// killed before it finished.

const fileTrashDir = ".trash"

// fileTrashSeq makes the moved folders' names unique within the process.
var fileTrashSeq atomic.Uint64

// fileTrash is what one Update or View moved into the trash.
type fileTrash struct {
	moved []fileTrashed
}

type fileTrashed struct {
	path string
	f    *os.File // flocked, so no other process deletes it too; may be nil
}

// moveToTrash moves a bucket's folder into the trash. It reports false
// when there was no folder (a drop replayed after its rename). The folder
// is flocked before the store's lock is released, so the sweeps of other
// writers leave it to us.
func (s *fileStore) moveToTrash(dir string, trash *fileTrash) (bool, error) {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	tdir := s.path(fileTrashDir)
	if err := MkdirTrusted(tdir); err != nil {
		if errors.Is(err, ErrUntrusted) {
			return false, fmt.Errorf("drop bucket: %w", err)
		}
		// No trash folder to be had (the commit made one; this is a
		// replay on a full filesystem?): remove the folder in place,
		// under the lock, as livedict always did. It frees room.
		if err := os.RemoveAll(dir); err != nil {
			return false, fmt.Errorf("drop bucket: %w", err)
		}
		return true, nil
	}
	for {
		to := filepath.Join(tdir, strconv.Itoa(os.Getpid())+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)+"-"+strconv.FormatUint(fileTrashSeq.Add(1), 36))
		err := os.Rename(dir, to)
		switch {
		case err == nil:
			var f *os.File
			if fd, err := unix.Open(to, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
				f = os.NewFile(uintptr(fd), to)
				if flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
					f.Close()
					f = nil
				}
			}
			trash.moved = append(trash.moved, fileTrashed{path: to, f: f})
			return true, nil
		case errors.Is(err, fs.ErrNotExist):
			return false, nil
		case errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY):
			continue // a leftover with that name: take another
		case errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EBUSY):
			// The folder cannot be moved (a mount point?): remove it in
			// place, under the lock, as livedict always did.
			if err := os.RemoveAll(dir); err != nil {
				return false, fmt.Errorf("drop bucket: %w", err)
			}
			return true, nil
		default:
			return false, fmt.Errorf("drop bucket: %w", err)
		}
	}
}

// emptyTrash deletes what the transaction moved into the trash, then whatever
// else is there that no other writer is deleting. It runs after the store's
// lock is released; a failure only leaves garbage for the next sweep.
func (s *fileStore) emptyTrash(trash *fileTrash) {
	if s.testBeforeEmptyTrash != nil && len(trash.moved) > 0 {
		s.testBeforeEmptyTrash()
	}
	for _, t := range trash.moved {
		os.RemoveAll(t.path)
		if t.f != nil {
			t.f.Close()
		}
	}
	trash.moved = nil
	tdir := s.path(fileTrashDir)
	var st unix.Stat_t
	if unix.Lstat(tdir, &st) != nil || st.Nlink == 2 {
		// None, or no folder in it (each adds a link to its parent;
		// btrfs counts 1 for every folder, so there it is read): every
		// write passes here, so an empty trash costs one lstat.
		return
	}
	if CheckPath(tdir) != nil {
		return // not ours to clean
	}
	names, err := readDirNames(tdir)
	if err != nil {
		return
	}
	for _, name := range names {
		path := filepath.Join(tdir, name)
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOTDIR || err == unix.ELOOP {
			os.Remove(path) // not a folder we moved: a file or symlink is just unlinked
			continue
		}
		if err != nil {
			continue
		}
		if flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.RemoveAll(path)
		}
		unix.Close(fd)
	}
}
