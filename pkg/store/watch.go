//go:build unix

package store

import "path/filepath"

// ChangePaths returns the files and folders whose modification is the
// visible trace of a commit that may have changed bucket, so a waiter can
// sleep on inotify instead of polling the store:
//
//   - SQLite: the database file (every commit writes its pages in place,
//     in the default DELETE journal mode);
//   - file store: the bucket's folder (each key is a file renamed into it
//     or deleted from it) and DIR/b, where the bucket's folder appears.
//
// Paths may not exist yet. A backend with no files (memory) returns none:
// its waiters fall back to re-checking on a timer. The list only says where
// to look; readers open nothing here, so nothing is trusted from it.
func ChangePaths(s Store, bucket string) []string {
	switch s := s.(type) {
	case *sqliteStore:
		return []string{s.path}
	case *fileStore:
		return []string{filepath.Join(s.dir, fileBucketsDir), s.bucketDir(bucket)}
	}
	return nil
}
