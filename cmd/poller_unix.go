//go:build unix

package cmd

import (
	"os"
	"syscall"
)

// fewDescriptors is the descriptor limit under which a process makes the
// Go runtime's poller at start.
const fewDescriptors = 1024

// reservePoller makes the Go runtime's poller (its epoll and eventfd
// descriptors) now, while descriptors are free, when the limit on them is
// small (ulimit -n): the runtime makes it on a process's first pipe or
// socket, and one made after the store took the last descriptors was a
// "fatal error: runtime: eventfd failed", a stack trace and exit 2, where
// an open that fails says "too many open files". Under the usual limit
// it does nothing: making the poller costs a one-shot get 60-140 µs that
// it mostly never needs. With too few descriptors free even now (the
// pipe's two and the poller's two) it makes nothing, since the runtime
// would fail the same way: a command that never needs the poller still
// runs.
func reservePoller() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil || lim.Cur >= fewDescriptors {
		return
	}
	var probes []int
	defer func() {
		for _, fd := range probes {
			syscall.Close(fd)
		}
	}()
	for range 4 {
		fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		probes = append(probes, fd)
	}
	for _, fd := range probes {
		syscall.Close(fd)
	}
	probes = nil
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
}
