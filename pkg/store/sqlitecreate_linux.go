package store

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// placeNewStore puts a new store, complete under the temporary name tmp,
// at real unless something is there already (fs.ErrExist). A rename that
// refuses to replace moves it with one link all along: linked at both
// names for a moment, a process opening it then found two links, which
// checkStoreLinks refuses in a folder others can write, and exited 3
// (parallel jobs starting on a new --store /tmp/job.db). Filesystems
// without RENAME_NOREPLACE get the link.
func placeNewStore(tmp, real string) error {
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, real, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return fs.ErrExist
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
		return linkNewStore(tmp, real)
	}
	return &os.LinkError{Op: "rename", Old: tmp, New: real, Err: err}
}
