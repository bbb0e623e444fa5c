package store

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSQLiteNoDescriptors: a write that cannot open the store's -journal
// because the process has no file descriptor left (ulimit -n) is reported
// as that (EMFILE), not as a permission problem to check: SQLite says
// "unable to open" either way.
func TestSQLiteNoDescriptors(t *testing.T) {
	s, err := Open("sqlite:"+filepath.Join(t.TempDir(), "s.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(v string) error {
		return s.Update(context.Background(), func(tx Tx) error {
			return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte(v)})
		})
	}
	if err := put("1"); err != nil {
		t.Fatal(err)
	}

	// Lower the soft limit a little above the descriptors open now and
	// take up the rest but one.
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	probe, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(probe)
	lim := old
	lim.Cur = uint64(probe) + 64
	if lim.Cur > old.Cur {
		t.Skipf("soft limit %d is already below %d", old.Cur, lim.Cur)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot lower RLIMIT_NOFILE: %v", err)
	}
	var fillers []int
	defer func() {
		for _, fd := range fillers {
			unix.Close(fd)
		}
		unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
	}()
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		fillers = append(fillers, fd)
	}

	// One left: enough for livedict's own per-commit open, not for
	// SQLite's -journal.
	unix.Close(fillers[len(fillers)-1])
	fillers = fillers[:len(fillers)-1]
	err = put("2")
	if !errors.Is(err, syscall.EMFILE) || errors.Is(err, fs.ErrPermission) {
		t.Errorf("write with no descriptor left: %v, want EMFILE", err)
	}
}
