// Package readfile reads the small files a user names in the
// configuration (the configuration file itself, recipients_file) without
// trusting them to be small: a path that turns out to be /dev/zero, a
// huge log or a directory gives an error, never a hang or a process that
// eats all memory.
package readfile

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge is returned for a file longer than the limit.
var ErrTooLarge = errors.New("file too large")

// Max reads path, which may hold at most limit bytes. A directory is
// refused with syscall.EISDIR (as os.ReadFile does). A pipe or FIFO is
// read like any file (process substitution, <(...), works), and so is a
// device: /dev/null reads empty, /dev/zero is too large.
func Max(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %s", ErrTooLarge, size(limit))
	}
	return b, nil
}

func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
