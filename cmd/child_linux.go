package cmd

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// childAttr makes the kernel send CMD SIGTERM if livedict dies first (kill
// -9): its lease will lapse, and CMD must not go on without it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// waitExited blocks until process pid has ended, leaving it to be reaped
// (WNOWAIT): until then its pid cannot be given to another process.
func waitExited(pid int) {
	var info unix.Siginfo
	for unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
	}
}
