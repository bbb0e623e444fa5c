package sandbox

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTailBufferKeepsTheLastBytes(t *testing.T) {
	for _, chunk := range []int{1, 3, 7, 10, 11, 64} {
		tb := &tailBuffer{limit: 10}
		var all []byte
		for i := 0; i < 200; i++ {
			p := bytes.Repeat([]byte{byte('a' + (i % 26))}, chunk)
			p[0] = byte('0' + i%10)
			all = append(all, p...)
			if n, err := tb.Write(p); n != len(p) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		got, cut := tb.tail()
		if want := all[len(all)-10:]; !bytes.Equal(got, want) || cut != int64(len(all)-10) {
			t.Errorf("chunk %d: tail %q cut %d, want %q cut %d", chunk, got, cut, want, len(all)-10)
		}
		if cap(tb.buf) > 2*10+64 {
			t.Errorf("chunk %d: buffer grew to %d", chunk, cap(tb.buf))
		}
	}
	tb := &tailBuffer{limit: 10}
	tb.Write([]byte("short"))
	if got, cut := tb.tail(); string(got) != "short" || cut != 0 {
		t.Errorf("short: %q %d", got, cut)
	}
}

func TestNormalizeChecksTheSpec(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]Spec{
		"no command":        {WorkDir: dir},
		"no work dir":       {Argv: []string{"true"}},
		"NUL in argument":   {Argv: []string{"echo", "a\x00b"}, WorkDir: dir},
		"bad env name":      {Argv: []string{"true"}, WorkDir: dir, Env: map[string]string{"A=B": "x"}},
		"missing write dir": {Argv: []string{"true"}, WorkDir: dir, WriteDirs: []string{filepath.Join(dir, "nope")}},
		"write dir is file": {Argv: []string{"true"}, WorkDir: dir, WriteDirs: []string{file}},
	} {
		if _, err := s.normalize(false); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	s, err := Spec{Argv: []string{"true"}, WorkDir: filepath.Join(dir, "new", "wd")}.normalize(false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Timeout != DefaultTimeout || s.Grace != DefaultGrace || s.OutputCap != DefaultOutputCap {
		t.Errorf("defaults not filled: %+v", s)
	}
	if fi, err := os.Stat(s.WorkDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("work dir not created 0700: %v %v", fi, err)
	}
}

func TestLookPathUsesTheHookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "hook")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := lookPath("hook", "relative:"+dir, "/"); err != nil || p != exe {
		t.Errorf("lookPath = %q, %v", p, err)
	}
	if p, err := lookPath("./hook", "", dir); err != nil || p != exe {
		t.Errorf("relative to the work dir: %q, %v", p, err)
	}
	// A relative PATH entry is never searched: it would be the work dir.
	if _, err := lookPath("hook", ".", dir); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("relative PATH entry searched: %v", err)
	}
}
