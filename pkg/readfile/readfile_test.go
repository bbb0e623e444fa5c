package readfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestMax(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := Max(p, 5); err != nil || string(b) != "12345" {
		t.Errorf("Max(5 bytes, 5) = %q, %v; want the bytes", b, err)
	}
	if _, err := Max(p, 4); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Max(5 bytes, 4) = %v; want ErrTooLarge", err)
	}
	if _, err := Max(dir, 4); err == nil {
		t.Errorf("Max(directory) read it")
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		if _, err := Max("/dev/zero", 1<<20); !errors.Is(err, ErrTooLarge) {
			t.Errorf("Max(/dev/zero) = %v; want ErrTooLarge", err)
		}
	}
}
