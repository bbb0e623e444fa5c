package sandbox

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// CloseInherited closes every descriptor from from up that this process
// inherited from whoever started it. Those are exactly the ones without
// close-on-exec: exec closed every other, and everything Go opens has
// close-on-exec, including the files the runtime keeps open from before
// main (cgroup CPU limits), which a close_range(from, ~0) would pull from
// under it. It fails only when /proc/self/fd cannot be listed.
func CloseInherited(from int) error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < from {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			_ = unix.Close(fd)
		}
	}
	return nil
}

// MarkCloseOnExec marks every descriptor from from up close-on-exec, so a
// process started next gets only what it is given explicitly: Go's
// os/exec passes on every descriptor this process inherited without the
// flag.
func MarkCloseOnExec(from int) error {
	err := unix.CloseRange(uint(from), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	// Kernels before 5.11: walk /proc/self/fd instead.
	entries, rerr := os.ReadDir("/proc/self/fd")
	if rerr != nil {
		return err
	}
	for _, e := range entries {
		if fd, convErr := strconv.Atoi(e.Name()); convErr == nil && fd >= from {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
	return nil
}
