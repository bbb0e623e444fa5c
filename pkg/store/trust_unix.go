//go:build unix

package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The trust rule, in one place (SPEC "Store", Trust). Everything livedict
// opens beside a store — the store itself, SQLite's -journal/-wal/-shm,
// the state folder and what is in it, a file store's folders and records —
// must belong to the invoking user and must not be writable by anyone
// else; otherwise another local user could have written it, and livedict
// would act on their data (a hot journal rolled back into the store, a
// hook definition, a lock file that is a symlink to something of ours).
//
// The checks are cheap on purpose: a file livedict opens anyway is checked
// with fstat on the open descriptor (opened O_NOFOLLOW, so the descriptor
// is the file the name held, not what a symlink points to); a file it does
// not open is checked with one lstat. Only hooks look further, at the
// folders above the store (CheckHooksPath), because a folder others can
// write lets them plant files beside the store — which matters for code
// that runs as us, not for data whose every file is checked itself.

// TrustError is a refusal of the trust rule, naming the path and why.
type TrustError struct {
	Path string
	Why  string
	Mode uint32
}

// Detail is the refusal without the leading "not trusted: ".
func (e *TrustError) Detail() string {
	return fmt.Sprintf("%s %s (mode %04o)", e.Path, e.Why, e.Mode&07777)
}

func (e *TrustError) Error() string { return ErrUntrusted.Error() + ": " + e.Detail() }

// Unwrap makes errors.Is(err, ErrUntrusted) hold.
func (e *TrustError) Unwrap() error { return ErrUntrusted }

// untrusted builds the one-line refusal naming path.
func untrusted(path, why string, mode uint32) error {
	return &TrustError{Path: path, Why: why, Mode: mode}
}

// trustStat is the rule for one file or folder livedict uses: owned by the
// invoking user, writable by nobody else. Root-owned folders are not ours
// to accept here: root may use only its own stores' files, as any user.
func trustStat(path string, st *unix.Stat_t) error {
	uid := uint32(os.Geteuid())
	switch {
	case st.Uid != uid:
		return untrusted(path, "is owned by uid "+strconv.FormatUint(uint64(st.Uid), 10), uint32(st.Mode))
	case st.Mode&0o002 != 0:
		return untrusted(path, "is writable by every user", uint32(st.Mode))
	case st.Mode&0o020 != 0:
		return untrusted(path, "is writable by its group", uint32(st.Mode))
	}
	return nil
}

// CheckFD applies the trust rule to an open descriptor of path (path is
// only for the message). A regular file or a folder is expected; anything
// else (a FIFO, a device, a socket) is refused too.
func CheckFD(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return checkKind(path, &st)
}

func checkKind(path string, st *unix.Stat_t) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFDIR:
		return trustStat(path, st)
	case unix.S_IFLNK:
		return untrusted(path, "is a symbolic link", uint32(st.Mode))
	}
	return untrusted(path, "is not a regular file or folder", uint32(st.Mode))
}

// CheckPath applies the trust rule to path with lstat (a symlink is
// refused, not followed). A missing path is reported as fs.ErrNotExist.
func CheckPath(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return checkKind(path, &st)
}

// checkAbsent refuses path when it exists and fails the rule: SQLite's
// side files, which SQLite itself opens and would trust.
func checkAbsent(path string) error {
	err := CheckPath(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// checkSideFile is the trust rule for one of SQLite's side files, as st
// describes it, with one more condition: no other hard link. Where the
// kernel lets a user link files that are not theirs
// (fs.protected_hardlinks=0), another user can link one of ours as
// STORE-journal beside a store in /tmp; it is ours and nobody else can
// write it, and SQLite would write its journal into it (pages of the
// store, in a file others may read) or roll it back and delete it. A
// journal SQLite makes has one link.
func checkSideFile(path string, st *unix.Stat_t) error {
	if err := checkKind(path, st); err != nil {
		return err
	}
	if st.Nlink > 1 {
		return untrusted(path, "has other hard links ("+strconv.FormatUint(uint64(st.Nlink), 10)+")", uint32(st.Mode))
	}
	return nil
}

// checkStoreLinks refuses a store file with other hard links in a folder
// others can write. Where the kernel lets a user link files that are not
// theirs (fs.protected_hardlinks=0), another user can link one of ours
// at the name a script's --store gives in /tmp; it is ours and nobody else
// can write it, and the script's writes (del, bucket drop) would go into
// that store. Links of a store in a folder only we can write are ours (a
// cp -l backup). It costs one lstat, only for a file with other links.
func checkStoreLinks(path string, st *unix.Stat_t) error {
	if st.Nlink <= 1 {
		return nil
	}
	dir := filepath.Dir(path)
	var d unix.Stat_t
	if err := unix.Lstat(dir, &d); err != nil {
		return &fs.PathError{Op: "stat", Path: dir, Err: err}
	}
	if uid := uint32(os.Geteuid()); d.Mode&0o022 == 0 && (d.Uid == uid || d.Uid == 0) {
		return nil
	}
	// The creator's temporary name may be removed while we look: count
	// those names first, then the links there are now. Other links can
	// only have come since (nobody else removes our names from a sticky
	// folder), so they are refused.
	n := creatorLinks(path, st)
	var now unix.Stat_t
	if unix.Lstat(path, &now) == nil && now.Dev == st.Dev && now.Ino == st.Ino && uint64(now.Nlink)-1 <= n {
		return nil
	}
	return untrusted(path, "has other hard links ("+strconv.FormatUint(uint64(st.Nlink), 10)+") and is in a folder others can write", uint32(st.Mode))
}

// creatorLinks counts the other links of the store at path that are a
// creator's temporary name (see sqliteStore.create: a new store is made as
// PATH.tmp-PID-N and linked into place, then that name is removed). A
// process that opens the store in between, after losing the race to
// create it, sees two links; they are the creator's, in a folder only it
// (the sticky bit) can remove them from.
func creatorLinks(path string, st *unix.Stat_t) uint64 {
	names, _ := filepath.Glob(globEscape(path) + ".tmp-*")
	var n uint64
	for _, name := range names {
		var o unix.Stat_t
		if unix.Lstat(name, &o) == nil && o.Dev == st.Dev && o.Ino == st.Ino {
			n++
		}
	}
	return n
}

// globEscape quotes path's glob metacharacters for filepath.Glob.
func globEscape(path string) string {
	var b strings.Builder
	for _, r := range path {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// checkSideAbsent is checkAbsent for SQLite's side files (checkSideFile).
func checkSideAbsent(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return checkSideFile(path, &st)
}

// OpenTrusted opens path with O_NOFOLLOW and O_CLOEXEC added to flags and
// applies the trust rule to what it opened. With O_CREAT the file is made
// mode 0600. The caller closes the descriptor.
func OpenTrusted(path string, flags int) (int, error) {
	fd, _, err := openTrusted(path, flags)
	return fd, err
}

// openTrusted is OpenTrusted that also returns the descriptor's stat.
func openTrusted(path string, flags int) (int, *unix.Stat_t, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != unix.EINTR {
			break
		}
	}
	if err == unix.ELOOP {
		return -1, nil, untrusted(path, "is a symbolic link", unix.S_IFLNK)
	}
	if err != nil {
		return -1, nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	st := new(unix.Stat_t)
	if err := unix.Fstat(fd, st); err != nil {
		unix.Close(fd)
		return -1, nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if err := checkKind(path, st); err != nil {
		unix.Close(fd)
		return -1, nil, err
	}
	return fd, st, nil
}

// MkdirTrusted makes the folder path, mode 0700, or checks the one that is
// there: a symlink, another user's folder or one others can write is
// refused. Its parent must exist.
func MkdirTrusted(path string) error {
	err := unix.Mkdir(path, 0o700)
	if err == nil || err != unix.EEXIST {
		if err != nil {
			return &fs.PathError{Op: "mkdir", Path: path, Err: err}
		}
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return checkKind(path, &st)
	}
	return trustStat(path, &st)
}

// CheckHooksPath is the stricter rule for running hooks from the store at
// path (a file or a file store's folder): path resolved through symlinks
// passes the trust rule, and so do the folders above it (CheckHooksFolder).
// A store that does not exist yet is judged by the nearest folder above it
// that does: the folders livedict makes on the way are its own, mode 0700.
func CheckHooksPath(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, lerr := os.Lstat(path); lerr == nil {
			return err // a dangling symlink
		}
		for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
			if _, err := os.Lstat(dir); err == nil {
				real, err := filepath.EvalSymlinks(dir)
				if err != nil {
					return err
				}
				// The folder to hold the store is dir itself, or one
				// livedict will make inside it (then dir is an ancestor).
				return checkFolders(real, dir == filepath.Dir(path))
			}
			if dir == filepath.Dir(dir) {
				return err
			}
		}
	}
	if err != nil {
		return err
	}
	if err := CheckPath(real); err != nil {
		return err
	}
	return checkFolders(filepath.Dir(real), true)
}

// CheckHooksFolder applies the hooks rule to the folder dir that holds
// (or will hold) a store's files, resolved through symlinks: dir is owned
// by the user or root and writable by nobody else — sticky or not, since
// others could plant files beside the store — and every folder above it is
// owned by the user or root and, when others can write it, sticky (so they
// cannot rename what leads to the store). This is OpenSSH's StrictModes
// walk, with tmpfiles' view of sticky folders for the ancestors.
func CheckHooksFolder(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	return checkFolders(real, true)
}

// checkFolders walks from dir up to /; holder says dir is the folder that
// holds the store's files, which sticky does not excuse.
func checkFolders(dir string, holder bool) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	uid := uint32(os.Geteuid())
	for first := holder; ; dir, first = filepath.Dir(dir), false {
		var st unix.Stat_t
		if err := unix.Lstat(dir, &st); err != nil {
			return &fs.PathError{Op: "stat", Path: dir, Err: err}
		}
		sticky := st.Mode&unix.S_ISVTX != 0 && !first
		switch {
		case st.Uid != uid && st.Uid != 0:
			return untrusted(dir, "is owned by uid "+strconv.FormatUint(uint64(st.Uid), 10), uint32(st.Mode))
		case st.Mode&0o002 != 0 && !sticky:
			return untrusted(dir, "is writable by every user", uint32(st.Mode))
		case st.Mode&0o020 != 0 && !sticky:
			return untrusted(dir, "is writable by its group", uint32(st.Mode))
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

// resolveStore resolves a store path that may be a symlink to the real
// path SQLite and the checks use. A missing path is not an error (exists
// is false); a dangling symlink is refused rather than letting a create
// follow it to wherever it points. A symlink on the way (the store's name
// or a folder above it) owned by anyone but the user or root is refused:
// in a sticky /tmp another user can make `job.db` first as a link to one
// of the user's own stores, and every check of the real file would pass,
// since that file is the user's. The kernel's protected_symlinks refuses
// to follow such a link, but only where it is on, and livedict resolves
// links itself.
func resolveStore(abs string) (real string, exists bool, err error) {
	real, err = evalTrustedSymlinks(abs)
	if err != nil {
		return "", false, err
	}
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		if err == unix.ENOENT {
			return abs, false, nil
		}
		// ENOTDIR: a folder on the path is a file, so no store can ever
		// be there; a read says so (exit 3) rather than "not found", as
		// a write does and as the file store does.
		return "", false, &fs.PathError{Op: "stat", Path: abs, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return abs, true, nil
	}
	if _, err := os.Lstat(real); errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("%w: %s is a symbolic link to nothing; livedict does not create a store through it", ErrNotStore, abs)
	} else if err != nil {
		return "", false, err
	}
	return real, true, nil
}

// evalTrustedSymlinks is filepath.EvalSymlinks of the absolute path abs
// that refuses a symlink owned by anyone but the user or root. What does
// not exist yet is kept as written (a store to be made).
func evalTrustedSymlinks(abs string) (string, error) {
	uid := uint32(os.Geteuid())
	done, rest, links := "/", abs, 0
	for rest != "" {
		var name string
		name, rest, _ = strings.Cut(strings.TrimLeft(rest, "/"), "/")
		switch name {
		case "", ".":
			continue
		case "..":
			done = filepath.Dir(done)
			continue
		}
		next := filepath.Join(done, name)
		var st unix.Stat_t
		if err := unix.Lstat(next, &st); err != nil {
			// Missing (or not a folder): the rest is left as written,
			// and the callers' own lstat reports what is wrong.
			return filepath.Join(next, rest), nil
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			done = next
			continue
		}
		if st.Uid != uid && st.Uid != 0 {
			return "", untrusted(next, "is a symbolic link owned by uid "+strconv.FormatUint(uint64(st.Uid), 10), uint32(st.Mode))
		}
		if links++; links > 255 {
			return "", &fs.PathError{Op: "resolve", Path: abs, Err: unix.ELOOP}
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			done = "/"
		}
		rest = target + "/" + rest
	}
	return done, nil
}

// readOnlyFS reports whether path's filesystem is mounted read-only, so
// a refused write can say so instead of "permission denied".
func readOnlyFS(path string) bool {
	return unix.Access(filepath.Dir(path), unix.W_OK) == unix.EROFS
}

// noDescriptor returns EMFILE or ENFILE when this process can open no
// more files, else nil: SQLite reports a -journal it could not open for
// that as "unable to open", as it does a permission it lacks.
func noDescriptor() error {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
		return nil
	}
	if err == unix.EMFILE || err == unix.ENFILE {
		return err
	}
	return nil
}

// othersHomeForRoot reports whether livedict runs as root and dir is
// another user's folder (HomeDir).
func othersHomeForRoot(dir string) bool {
	if os.Geteuid() != 0 {
		return false
	}
	var st unix.Stat_t
	return unix.Stat(dir, &st) == nil && st.Uid != 0
}
