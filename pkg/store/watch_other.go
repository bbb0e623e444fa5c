//go:build !unix

package store

// Watch names a folder whose changes are the visible trace of a commit.
type Watch struct {
	Dir  string
	Name string
}

// ChangeWatches returns nothing where livedict has no inotify: waiters
// re-check on a timer.
func ChangeWatches(s Store, bucket string) []Watch { return nil }
