//go:build !unix

package store

// guardSideFiles is unix's check of SQLite's side files as SQLite opens
// them (sqliteopen_unix.go); elsewhere there is no trust rule to apply.
func guardSideFiles() error { return nil }

// takeRefused is nil here: nothing is refused (sqliteopen_unix.go).
func takeRefused(real string) error { return nil }
