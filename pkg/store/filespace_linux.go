package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// fileStatFree reports the block size of the filesystem holding dir and
// the bytes this process may still write there (root may use the blocks
// reserved for it). ok is false when the filesystem does not say.
func fileStatFree(dir string) (bsize, free int64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Bsize <= 0 || st.Blocks == 0 {
		return 0, 0, false
	}
	avail := st.Bavail
	if os.Geteuid() == 0 {
		avail = st.Bfree
	}
	if avail > uint64(1<<62)/uint64(st.Bsize) {
		return st.Bsize, 1 << 62, true
	}
	return st.Bsize, int64(avail) * st.Bsize, true
}

// noSpaceFS reports whether the filesystem holding dir has no block or no
// inode left for this process: SQLite says only "unable to open" when it
// cannot create its journal there, which is not a permission problem.
func noSpaceFS(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Blocks == 0 {
		return false
	}
	avail := st.Bavail
	if os.Geteuid() == 0 {
		avail = st.Bfree
	}
	return avail == 0 || st.Files > 0 && st.Ffree == 0
}
