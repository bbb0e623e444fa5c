package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// fileStatFree reports the block size of the filesystem holding dir, the
// bytes this process may still write there (root may use the blocks
// reserved for it) and the inodes left, -1 when the filesystem does not
// count them (btrfs). ok is false when the filesystem does not say.
func fileStatFree(dir string) (room fileRoom, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Bsize <= 0 || st.Blocks == 0 {
		return fileRoom{}, false
	}
	avail := st.Bavail
	if os.Geteuid() == 0 {
		avail = st.Bfree
	}
	room = fileRoom{bsize: st.Bsize, bytes: 1 << 62, inodes: -1}
	if avail <= uint64(1<<62)/uint64(st.Bsize) {
		room.bytes = int64(avail) * st.Bsize
	}
	if st.Files > 0 {
		room.inodes = int64(min(st.Ffree, 1<<62))
	}
	return room, true
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
