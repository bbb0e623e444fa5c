package runcache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
)

// KeyInputs are what, beside argv, makes two invocations the same entry.
type KeyInputs struct {
	// Cwd, when not empty, is part of the key (--cwd).
	Cwd string
	// Env names environment variables whose values are part of the key
	// (--env); Getenv looks them up.
	Env    []string
	Getenv func(string) (string, bool)
	// Modtime names files whose modification time (and size) is part of
	// the key (--modtime); a missing file counts as such, not an error.
	Modtime []string
	// Scope separates otherwise identical commands (--scope).
	Scope string
}

// Key derives the entry's key: the command's base name (so list shows
// what it is) and a SHA-256 of every input, each length-prefixed so no
// two different inputs encode alike.
func Key(argv []string, in KeyInputs) string {
	h := sha256.New()
	field := func(tag byte, s string) {
		var n [9]byte
		n[0] = tag
		binary.BigEndian.PutUint64(n[1:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	for _, a := range argv {
		field('a', a)
	}
	if in.Cwd != "" {
		field('c', in.Cwd)
	}
	for _, name := range in.Env {
		field('e', name)
		if v, ok := in.Getenv(name); ok {
			field('v', v)
		} else {
			field('u', "")
		}
	}
	for _, f := range in.Modtime {
		field('m', f)
		if fi, err := os.Stat(f); err == nil {
			var b [16]byte
			binary.BigEndian.PutUint64(b[:], uint64(fi.ModTime().UnixNano()))
			binary.BigEndian.PutUint64(b[8:], uint64(fi.Size()))
			field('t', string(b[:]))
		} else {
			field('x', "")
		}
	}
	field('s', in.Scope)
	name := filepath.Base(argv[0])
	if len(name) > 64 || strings.ContainsFunc(name, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
		name = "cmd"
	}
	return name + "." + hex.EncodeToString(h.Sum(nil)[:16])
}
