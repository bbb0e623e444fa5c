//go:build !unix

package store

// ChangePaths returns nothing where livedict has no inotify: waiters
// re-check on a timer.
func ChangePaths(s Store, bucket string) []string { return nil }
