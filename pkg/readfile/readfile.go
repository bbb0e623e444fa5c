// Package readfile reads the small files a user names in the
// configuration (the configuration file itself, recipients_file) without
// trusting them to be small: a path that turns out to be /dev/zero, a
// huge log or a directory gives an error, never a hang or a process that
// eats all memory.
package readfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrTooLarge is returned for a file longer than the limit.
var ErrTooLarge = errors.New("file too large")

// readMax reads f, which may hold at most limit bytes. A directory is
// refused with syscall.EISDIR (as os.ReadFile does). A pipe or FIFO is
// read like any file (process substitution, <(...), works), and so is a
// device: /dev/null reads empty, /dev/zero is too large.
func readMax(f *os.File, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %s", ErrTooLarge, size(limit))
	}
	return b, nil
}

// ErrNotOwned is returned by Owned for a file another user could have
// written.
var ErrNotOwned = errors.New("another user could have written it")

// Owned reads path, at most limit bytes of it (see readMax). path names
// a file that steers what livedict does (the configuration file,
// recipients_file, redis_ca_file), so Owned refuses one that another
// user could have written, owned by someone other than this user or
// root, or writable by everyone, since whoever writes it could send
// this user's values to a server or a recipient of theirs. A
// group-writable file passes: with per-user groups (umask 002) every
// file a user makes is one. Character devices (/dev/null) are read as
// they are.
func Owned(path string, limit int64) ([]byte, error) {
	f, fi, err := openStat(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Mode()&fs.ModeCharDevice == 0 {
		if uid, ok := owner(fi); ok && uid != os.Geteuid() && uid != 0 {
			return nil, fmt.Errorf("%w: it is owned by uid %d", ErrNotOwned, uid)
		}
		if fi.Mode().Perm()&0o002 != 0 {
			return nil, fmt.Errorf("%w: it is writable by every user (chmod o-w it)", ErrNotOwned)
		}
	}
	return readMax(f, limit)
}

// ErrNotPrivate is returned by Private for a file that is not a regular
// file only its owner can read.
var ErrNotPrivate = errors.New("must be a regular file only its owner can read (chmod 600)")

// Private reads path, a secret (redis_password_file), at most limit
// bytes of it. The checks are made on the file it opened, not on the
// path before: one swapped for a FIFO in between would hang the command,
// one swapped for a huge file would be read whole.
func Private(path string, limit int64) ([]byte, error) {
	f, fi, err := openStat(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return nil, ErrNotPrivate
	}
	return readMax(f, limit)
}

// openStat opens path and stats what it opened. Not blocking in open: a
// FIFO nobody writes to (planted by another user) must reach the caller's
// checks, not hang the command.
func openStat(path string) (*os.File, fs.FileInfo, error) {
	f, err := openNonblock(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
