package cmd

import "syscall"

// childAttr makes the kernel send CMD SIGTERM if livedict dies first (kill
// -9): its lease will lapse, and CMD must not go on without it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
