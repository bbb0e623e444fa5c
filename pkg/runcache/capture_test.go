package runcache

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/livedict/livedict/pkg/store"
)

// Within the limit the output is the entry's; past it, both streams go to
// files, the entry holds none of it, and printing gives every byte in order.
func TestCapture(t *testing.T) {
	c := NewCapture(10)
	defer c.Close()
	io.WriteString(c.Stdout(), "hello")
	io.WriteString(c.Stderr(), "err")
	if c.Spilled() {
		t.Fatal("spilled at 8 of 10 bytes")
	}
	if e := c.Entry(3); string(e.Stdout) != "hello" || string(e.Stderr) != "err" || e.Status != 3 {
		t.Fatalf("entry %+v", e)
	}
	io.WriteString(c.Stdout(), " world")
	io.WriteString(c.Stderr(), strings.Repeat("x", 1000))
	if !c.Spilled() {
		t.Fatal("not spilled at 1,014 of 10 bytes")
	}
	if e := c.Entry(0); e.Stdout != nil || e.Stderr != nil {
		t.Fatalf("spilled entry holds output: %+v", e)
	}
	if err := c.TooLarge(); !errors.Is(err, store.ErrValueTooLarge) || !strings.Contains(err.Error(), "1014 bytes") {
		t.Fatalf("TooLarge = %v", err)
	}
	var out, errb bytes.Buffer
	c.PrintTo(&out, &errb)
	if out.String() != "hello world" || errb.String() != "err"+strings.Repeat("x", 1000) {
		t.Fatalf("printed %q and %q", out.String(), errb.String())
	}
}
