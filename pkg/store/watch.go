//go:build unix

package store

import "path/filepath"

// Watch names a folder whose changes are the visible trace of a commit,
// for a waiter that sleeps on inotify instead of polling the store. When
// Name is set, only the removal of that entry of Dir counts.
type Watch struct {
	Dir  string
	Name string
}

// ChangeWatches says where a commit that may have changed bucket shows:
//
//   - SQLite: the removal of STORE-journal. In the default DELETE journal
//     mode every write transaction creates it and deletes it as its last
//     step, when the commit is complete and the write lock about to go;
//     the database file's own writes come earlier, while the lock is
//     still held, and a reader woken by them would only meet the lock.
//   - file store: the bucket's folder (each key is a file renamed into it
//     or deleted from it, under the store's lock, which a woken reader
//     waits for in the kernel), DIR/b, where the bucket's folder appears,
//     and DIR and its parent, where a store made by its first write
//     appears (a read creates nothing, so a waiter may come first).
//
// Folders may not exist yet. A backend with no files (memory) returns
// none: its waiters re-check on a timer. Nothing is read from these
// paths, so nothing about them needs to be trusted.
func ChangeWatches(s Store, bucket string) []Watch {
	switch s := Base(s).(type) {
	case *sqliteStore:
		return []Watch{{Dir: filepath.Dir(s.path), Name: filepath.Base(s.path) + "-journal"}}
	case *fileStore:
		return []Watch{{Dir: filepath.Dir(s.dir)}, {Dir: s.dir}, {Dir: filepath.Join(s.dir, fileBucketsDir)}, {Dir: s.bucketDir(bucket)}}
	}
	return nil
}
