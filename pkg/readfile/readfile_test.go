package readfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestOwned(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := Owned(p, 5); err != nil || string(b) != "12345" {
		t.Errorf("Owned(5 bytes, 5) = %q, %v; want the bytes", b, err)
	}
	if _, err := Owned(p, 4); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Owned(5 bytes, 4) = %v; want ErrTooLarge", err)
	}
	if _, err := Owned(dir, 4); err == nil {
		t.Errorf("Owned(directory) read it")
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		if _, err := Owned("/dev/zero", 1<<20); !errors.Is(err, ErrTooLarge) {
			t.Errorf("Owned(/dev/zero) = %v; want ErrTooLarge", err)
		}
	}
}
