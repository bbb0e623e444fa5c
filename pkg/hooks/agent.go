package hooks

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/livedict/livedict/pkg/store"
	"golang.org/x/sys/unix"
)

// StateDir is where livedict keeps what belongs to a store but is not data:
// the delivery and daemon locks and the hooks' private work dirs. It sits
// beside a SQLite file (PATH.d, beside the real file when PATH is a
// symlink to it) and inside a file store (DIR/.d), so it has
// the same owner and permissions as the store. A store that is not local
// (Redis) names its own (Info.StateDir).
func StateDir(info store.Info) string {
	if info.StateDir != "" {
		return info.StateDir
	}
	if info.Backend == "file" {
		return filepath.Join(info.Location, store.FileStateDir)
	}
	if info.Real != "" {
		// Beside the real file, not beside a symlink to it: the state
		// folder held beside each name of the store let a daemon start
		// on the symlink while another ran on the file, and two
		// deliverers run the same events at once, out of order.
		return info.Real + ".d"
	}
	return info.Location + ".d"
}

// Lock names in the state dir.
const (
	// DeliverLock is held by whoever delivers events: a detached
	// dispatcher or the daemon.
	DeliverLock = "deliver.lock"
	// DaemonLock is held by the daemon.
	DaemonLock = "daemon.lock"
)

// ErrLocked is returned by TryLock when another process holds the lock.
var ErrLocked = errors.New("lock is held by another process")

// Lock is a held lock file.
type Lock struct{ f *os.File }

// OpenStateDir makes the state dir (mode 0700) or checks the one there
// against the trust rule: another user's folder, or one others can write,
// could hold files they planted for hooks to run into (a work dir's
// .bashrc) or a lock file that is a symlink to something of ours. The
// refusal wraps ErrUnsafe (exit 4).
func OpenStateDir(stateDir string) error {
	// The store's own folder may not be there yet (a daemon started
	// before the first write): make it as a write would, 0700.
	if err := os.MkdirAll(filepath.Dir(stateDir), 0o700); err != nil {
		return err
	}
	if err := store.MkdirTrusted(stateDir); err != nil {
		return refuse(err)
	}
	return nil
}

// openStateFile opens name in the (checked) state dir without following a
// symlink, and checks what it opened.
func openStateFile(stateDir, name string, flags int) (*os.File, error) {
	path := filepath.Join(stateDir, name)
	fd, err := store.OpenTrusted(path, flags)
	if err != nil {
		return nil, refuse(err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// TryLock takes the named lock in stateDir without waiting. It uses a POSIX
// record lock, which the kernel drops when the holder dies (kill -9
// included) and which other processes can test without taking (Holder).
func TryLock(stateDir, name string) (*Lock, error) {
	return tryLock(stateDir, name, unix.F_SETLK, unix.F_WRLCK)
}

// tryLock takes the named lock with fcntl command cmd (F_SETLK, or
// F_OFD_SETLK for a lock that no other descriptor of the process can
// drop) as typ: F_WRLCK (exclusive) or F_RDLCK (shared).
func tryLock(stateDir, name string, cmd int, typ int16) (*Lock, error) {
	if err := OpenStateDir(stateDir); err != nil {
		return nil, err
	}
	f, err := openStateFile(stateDir, name, unix.O_RDWR|unix.O_CREAT)
	if err != nil {
		return nil, err
	}
	lk := unix.Flock_t{Type: typ, Whence: 0}
	if err := unix.FcntlFlock(f.Fd(), cmd, &lk); err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, ErrLocked
		}
		return nil, err
	}
	return &Lock{f: f}, nil
}

// WriteInfo replaces the lock file's content (the daemon writes its pid and
// start time there for 'daemon status'). The descriptor is the checked
// file TryLock opened, so the truncation cannot reach through a symlink.
func (l *Lock) WriteInfo(s string) error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	_, err := l.f.WriteAt([]byte(s), 0)
	return err
}

// Release gives the lock up.
func (l *Lock) Release() error { return l.f.Close() }

// Lost reports, as an error naming the lock file, that the file this lock
// is held on is no longer the one at its path: removed (rm -rf of the
// state folder, or of a file store with it) or replaced. The kernel's lock
// went with the old file, so another process may take the lock at the
// path while this one still thinks it holds it.
func (l *Lock) Lost() error {
	var held, now unix.Stat_t
	if err := unix.Fstat(int(l.f.Fd()), &held); err != nil {
		return nil // cannot tell
	}
	err := unix.Stat(l.f.Name(), &now)
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("lock %s was removed while this process held it; another may take it now", l.f.Name())
	case err != nil:
		return nil
	case now.Dev != held.Dev || now.Ino != held.Ino:
		return fmt.Errorf("lock %s was replaced while this process held it; another may take it now", l.f.Name())
	}
	return nil
}

// Holder returns the pid of the process holding the named lock, or 0 when
// none does. It never takes the lock, so it cannot get in the way of a
// process starting up. A process testing a lock it holds itself sees 0
// (POSIX locks do not conflict within a process), and must not test its own
// locks: closing any descriptor of a locked file drops the lock. It
// creates nothing: a missing state dir or lock means no holder.
func Holder(stateDir, name string) (int, error) {
	f, err := openStateFile(stateDir, name, unix.O_RDONLY|unix.O_NONBLOCK)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil {
		return 0, err
	}
	if lk.Type == unix.F_UNLCK {
		return 0, nil
	}
	return int(lk.Pid), nil
}

// ReadInfo returns what the holder wrote with WriteInfo ("" when the file
// is missing or fails the trust rule).
func ReadInfo(stateDir, name string) string {
	f, err := openStateFile(stateDir, name, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 4096))
	return strings.TrimSpace(string(b))
}

// WorkDirFor returns the folder holding hooks' private work dirs for a
// store whose state dir is stateDir, creating both private (0700) or
// checking the ones there: a hook's HOME is inside, so a file another
// user could plant there would run as us.
func WorkDirFor(stateDir string) (string, error) {
	dir := filepath.Join(stateDir, "work")
	if err := OpenStateDir(stateDir); err != nil {
		return "", err
	}
	return dir, OpenStateDir(dir)
}

// ErrUnsafe is wrapped by CheckSafe's errors and by every refusal of a
// state-dir file: hooks are refused (exit 4).
var ErrUnsafe = errors.New("hooks are not run from a store that other users can write")

// refusal is a trust-rule refusal seen by hooks: it reads as ErrUnsafe's
// message with the store's detail, and matches both ErrUnsafe and the
// store's error (errors.Is).
type refusal struct {
	detail string
	cause  error
}

func (r *refusal) Error() string   { return ErrUnsafe.Error() + ": " + r.detail }
func (r *refusal) Unwrap() []error { return []error{ErrUnsafe, r.cause} }

// ErrLinked refuses hooks on a SQLite store file with other hard links.
var ErrLinked = store.NewError(store.KindPolicy, "hooks are not run from a store file with other hard links")

// checkOneName refuses a SQLite store file that has other hard links. The
// state folder (locks, wake-up sockets, work dirs) sits beside each name
// (PATH.d), so a daemon or dispatcher started through each name held its
// own delivery lock: both delivered, and every event ran twice, at once,
// out of order. A symlink is resolved to the one file and its one folder.
func checkOneName(info store.Info) error {
	if info.Backend != "sqlite" {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(info.Location, &st); err != nil || st.Nlink < 2 {
		return nil // no store yet (or gone): nothing to deliver from
	}
	return fmt.Errorf("%w: %s has %d names, each with its own state folder, so deliverers through two of them would run every event twice", ErrLinked, info.Location, st.Nlink)
}

// ErrorKind makes a refusal a policy error (exit 4) although it also wraps
// the trust rule's own refusal, a store error (exit 3): for hooks it is
// the policy that says no.
func (r *refusal) ErrorKind() store.Kind { return store.KindPolicy }

// refuse turns a trust-rule refusal into a hooks refusal; other errors
// pass unchanged.
func refuse(err error) error {
	var te *store.TrustError
	if errors.As(err, &te) {
		return &refusal{detail: te.Detail(), cause: err}
	}
	return err
}

// CheckSafe refuses to run hooks from a store that another user could have
// written, or could plant files beside: the store (resolved through
// symlinks) must pass the trust rule, the folder holding it must be
// writable by nobody else — sticky or not, /tmp included — and the
// folders above it must be writable by nobody else unless sticky
// (store.CheckHooksPath). The state dir, when it exists, must pass the
// rule too, and so must the folder holding a symlink to the store. Group write counts as
// another user's, as it does for sshd's StrictModes.
func CheckSafe(info store.Info) error {
	if info.Location == "" {
		return nil
	}
	if info.StateDir != "" {
		// No local store file to check: only the state dir is ours, and
		// the folders above it, which hold the hooks' work dirs, are held
		// to the rule a local store's are: someone who can write one can
		// swap the state dir for a folder of theirs after this check.
		err := store.CheckPath(info.StateDir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil {
			err = store.CheckHooksFolder(filepath.Dir(info.StateDir))
		}
		return refuse(err)
	}
	if err := store.CheckHooksPath(info.Location); err != nil {
		return refuse(err)
	}
	if err := checkOneName(info); err != nil {
		return err
	}
	dir := StateDir(info)
	err := store.CheckPath(dir)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if fi, lerr := os.Lstat(info.Location); err == nil && lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
		// The folder holding the symlink: whoever can write it can
		// point the name at a store of theirs.
		err = store.CheckHooksFolder(filepath.Dir(info.Location))
	}
	return refuse(err)
}
