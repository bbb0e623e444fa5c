package cmd

import (
	"io"
	"os"

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
	isTTY := func(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
	io := &IOStreams{
		In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		InTTY: isTTY(os.Stdin), OutTTY: isTTY(os.Stdout), ErrTTY: isTTY(os.Stderr),
	}
	if os.Getenv("LIVEDICT_FORCE_TTY") == "1" {
		io.OutTTY = true
	}
	return io
}
