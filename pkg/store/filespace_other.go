//go:build !linux

package store

// fileStatFree is not measured outside Linux: statfs differs between the
// systems, and a journaled commit that runs out of room there stays
// committed and is applied once there is room again.
func fileStatFree(dir string) (fileRoom, bool) { return fileRoom{}, false }

// noSpaceFS is not measured outside Linux (see fileStatFree).
func noSpaceFS(dir string) bool { return false }
