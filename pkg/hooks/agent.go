package hooks

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/livedict/livedict/pkg/store"
	"golang.org/x/sys/unix"
)

// StateDir is where livedict keeps what belongs to a store but is not data:
// the delivery and daemon locks and the hooks' private work dirs. It sits
// beside a SQLite file (PATH.d) and inside a file store (DIR/.d), so it has
// the same owner and permissions as the store.
func StateDir(info store.Info) string {
	if info.Backend == "file" {
		return filepath.Join(info.Location, ".d")
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

// TryLock takes the named lock in stateDir without waiting. It uses a POSIX
// record lock, which the kernel drops when the holder dies (kill -9
// included) and which other processes can test without taking (Holder).
func TryLock(stateDir, name string) (*Lock, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(stateDir, name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, ErrLocked
		}
		return nil, err
	}
	return &Lock{f: f}, nil
}

// WriteInfo replaces the lock file's content (the daemon writes its pid and
// start time there for 'daemon status').
func (l *Lock) WriteInfo(s string) error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	_, err := l.f.WriteAt([]byte(s), 0)
	return err
}

// Release gives the lock up.
func (l *Lock) Release() error { return l.f.Close() }

// Holder returns the pid of the process holding the named lock, or 0 when
// none does. It never takes the lock, so it cannot get in the way of a
// process starting up. A process testing a lock it holds itself sees 0
// (POSIX locks do not conflict within a process), and must not test its own
// locks: closing any descriptor of a locked file drops the lock.
func Holder(stateDir, name string) (int, error) {
	f, err := os.Open(filepath.Join(stateDir, name))
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

// ReadInfo returns what the holder wrote with WriteInfo.
func ReadInfo(stateDir, name string) string {
	b, _ := os.ReadFile(filepath.Join(stateDir, name))
	return strings.TrimSpace(string(b))
}

// ErrUnsafe is wrapped by CheckSafe's errors.
var ErrUnsafe = errors.New("hooks are not run from a store that other users can write")

// CheckSafe refuses a store whose file or folder another user can write:
// whoever can write it can add a hook, which then runs as us. A folder with
// the sticky bit (like /tmp) does not count, since others cannot replace
// what is ours in it. Group write counts as another user's, as it does for
// sshd's StrictModes.
func CheckSafe(info store.Info) error {
	if info.Location == "" {
		return nil
	}
	paths := []string{info.Location, filepath.Dir(info.Location)}
	uid := uint32(os.Geteuid())
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		sticky := fi.IsDir() && fi.Mode()&fs.ModeSticky != 0
		why := ""
		switch {
		case st.Uid != uid && st.Uid != 0:
			why = "is owned by uid " + strconv.FormatUint(uint64(st.Uid), 10)
		case fi.Mode().Perm()&0o002 != 0 && !sticky:
			why = "is writable by every user"
		case fi.Mode().Perm()&0o020 != 0 && !sticky:
			why = "is writable by its group"
		}
		if why != "" {
			return fmt.Errorf("%w: %s %s (mode %04o)", ErrUnsafe, p, why, fi.Mode().Perm())
		}
	}
	return nil
}
