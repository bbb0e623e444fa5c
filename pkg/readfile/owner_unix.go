//go:build unix

package readfile

import (
	"io/fs"
	"os"
	"syscall"
)

// openNonblock opens path for reading without waiting for a FIFO's
// writer. Go reads a non-blocking pipe through its poller, so reading it
// still waits for data as a blocking read would; a FIFO with no writer
// reads as empty.
func openNonblock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// owner returns the uid that owns fi's file.
func owner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
