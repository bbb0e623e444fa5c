//go:build !unix

package store

import (
	"errors"
	"os"
)

// Without Unix owners and modes there is no trust rule to apply; these
// keep the API the same (see trust_unix.go).

// CheckPath accepts every path here.
func CheckPath(path string) error {
	_, err := os.Lstat(path)
	return err
}

// CheckHooksPath accepts every path here.
func CheckHooksPath(path string) error { return CheckPath(path) }

// CheckHooksFolder accepts every folder here.
func CheckHooksFolder(dir string) error { return CheckPath(dir) }

// MkdirTrusted makes the folder path, mode 0700, or accepts the one there.
func MkdirTrusted(path string) error {
	if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

// othersHomeForRoot: no owners to compare here.
func othersHomeForRoot(string) bool { return false }
