package runcache

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/livedict/livedict/pkg/store"
)

// Capture holds a command's stdout and stderr for run: in memory while
// together they may still fit the cache (limit, max_value_bytes; 0: no
// limit), then, once they cannot be cached, each in an unlinked temporary
// file, so that printing them does not hold them all in memory (`run --
// cat disk.img` held the whole image, however small the limit).
type Capture struct {
	mu       sync.Mutex
	limit    int64
	total    int64
	over     bool
	out, err spillBuf
}

// NewCapture returns an empty capture for output of up to limit bytes.
func NewCapture(limit int64) *Capture {
	c := &Capture{limit: limit}
	c.out.c, c.err.c = c, c
	return c
}

// Stdout and Stderr are what the command writes to.
func (c *Capture) Stdout() io.Writer { return &c.out }
func (c *Capture) Stderr() io.Writer { return &c.err }

// Entry is the result to cache for status: the output, unless Spilled.
func (c *Capture) Entry(status int) Entry {
	if c.Spilled() {
		return Entry{Status: status}
	}
	return Entry{Status: status, Stdout: c.out.mem.Bytes(), Stderr: c.err.mem.Bytes()}
}

// Spilled reports whether the output went past the limit (and to files).
func (c *Capture) Spilled() bool { return c.out.f != nil || c.err.f != nil }

// TooLarge is the reason spilled output was not cached, as Cache says it.
func (c *Capture) TooLarge() error {
	return fmt.Errorf("%w: its output is %d bytes (stdout and stderr, %d stored), max_value_bytes is %d",
		store.ErrValueTooLarge, c.total, EncodedSize(int(c.out.n), int(c.err.n)), c.limit)
}

// PrintTo writes the captured stdout to stdout, then its stderr to stderr.
func (c *Capture) PrintTo(stdout, stderr io.Writer) {
	c.out.printTo(stdout)
	c.err.printTo(stderr)
}

// Close lets the temporary files go.
func (c *Capture) Close() {
	for _, b := range []*spillBuf{&c.out, &c.err} {
		if b.f != nil {
			b.f.Close()
		}
	}
}

// spillBuf is one stream of a capture: what went to its file (if any),
// then what is in mem.
type spillBuf struct {
	c    *Capture
	n    int64 // bytes written, wherever they went
	f    *os.File
	full bool // f could take no more
	mem  bytes.Buffer
}

func (b *spillBuf) Write(p []byte) (int, error) {
	c := b.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total += int64(len(p))
	if !c.over && c.limit > 0 && c.total > c.limit {
		c.over = true
		c.out.spill()
		c.err.spill()
	}
	b.n += int64(len(p))
	if b.f != nil && !b.full {
		n, err := b.f.Write(p)
		if err == nil {
			return n, nil
		}
		// The temporary folder is full: keep the rest in memory, after
		// what the file holds, rather than lose it.
		b.full = true
		b.mem.Write(p[n:])
		return len(p), nil
	}
	return b.mem.Write(p)
}

// spill moves the stream to an unlinked temporary file (made O_EXCL,
// mode 0600, in $TMPDIR); where none can be made, it stays in memory.
func (b *spillBuf) spill() {
	f, err := os.CreateTemp("", "livedict-run-*")
	if err != nil {
		return
	}
	os.Remove(f.Name())
	if _, err := f.Write(b.mem.Bytes()); err != nil {
		f.Close()
		return
	}
	b.f = f
	b.mem = bytes.Buffer{}
}

// printTo writes the stream to w: its file from the start, then memory.
func (b *spillBuf) printTo(w io.Writer) {
	if b.f != nil {
		if _, err := b.f.Seek(0, io.SeekStart); err == nil {
			io.Copy(w, b.f)
		}
	}
	w.Write(b.mem.Bytes())
}
