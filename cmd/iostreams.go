package cmd

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// IOStreams are the standard streams a command uses, with what is known
// about them. Commands never touch os.Stdout directly, so tests can hand
// them buffers and pretend to be a terminal.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	Err    io.Writer
	InTTY  bool
	OutTTY bool
	ErrTTY bool
}

// SystemIO returns the process's streams. LIVEDICT_FORCE_TTY=1 makes stdout
// count as a terminal (for tests and for tools like `watch` that capture
// output but show it to a person).
func SystemIO() *IOStreams {
	reservePoller() // first: before the copies below take descriptors
	isTTY := func(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
	io := &IOStreams{
		In: os.Stdin, Out: noSIGPIPE(os.Stdout), Err: noSIGPIPE(os.Stderr),
		InTTY: isTTY(os.Stdin), OutTTY: isTTY(os.Stdout), ErrTTY: isTTY(os.Stderr),
	}
	if os.Getenv("LIVEDICT_FORCE_TTY") == "1" {
		io.OutTTY = true
	}
	return io
}

// noSIGPIPE returns a copy of the standard stream f whose writes to a pipe
// with no reader fail with EPIPE instead of killing the process: Go raises
// SIGPIPE for a broken stdout or stderr (the shell then reports 141), but
// only on descriptors 1 and 2. With the error in hand livedict exits 3 as
// documented, quietly (see App.Run). Catching SIGPIPE with signal.Notify
// would do the same at the cost of a signal goroutine and its threads in
// every one-shot command; ignoring it would be inherited by hook commands.
func noSIGPIPE(f *os.File) io.Writer {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return f // closed or not a descriptor: write to it as it is
	}
	return os.NewFile(uintptr(fd), f.Name())
}

// readerGone returns a channel that is closed when w writes to a pipe or
// socket whose reader went away (livedict watch | head -1), and a func
// that stops looking. A command that may sit long between writes (watch)
// ends on it at once, as GNU tail -f does, instead of at its next write,
// which may never come. For anything else the channel never closes.
func readerGone(w io.Writer) (<-chan struct{}, func()) {
	gone := make(chan struct{})
	if c, ok := w.(*checkedWriter); ok {
		w = c.w
	}
	f, ok := w.(*os.File)
	var st unix.Stat_t
	if !ok || unix.Fstat(int(f.Fd()), &st) != nil ||
		st.Mode&unix.S_IFMT != unix.S_IFIFO && st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return gone, func() {}
	}
	stopR, stopW, err := os.Pipe() // close-on-exec, on every Unix
	if err != nil {
		return gone, func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer stopR.Close()
		// Asking for no events still reports POLLERR (a pipe with no
		// reader) and POLLHUP (a socket shut down by its peer).
		fds := []unix.PollFd{{Fd: int32(f.Fd())}, {Fd: int32(stopR.Fd()), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			if err != nil || fds[1].Revents != 0 {
				return
			}
			if fds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
				close(gone)
				return
			}
		}
	}()
	return gone, func() { stopW.Close(); <-done }
}
