//go:build !unix

package store

import "context"

// writeGate is a no-op where there is no flock(2): writers wait in SQLite's
// busy handler alone.
func (s *sqliteStore) writeGate(context.Context) (release func(), err error) {
	return func() {}, nil
}
