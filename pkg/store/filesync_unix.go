//go:build unix && !linux

package store

import "golang.org/x/sys/unix"

// fileSyncFS flushes the filesystems; Unix systems other than Linux have
// no syncfs(2), so this syncs them all.
func fileSyncFS(dir string) error {
	unix.Sync()
	return nil
}
