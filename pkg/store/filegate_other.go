//go:build unix && !linux

package store

import (
	"context"
	"time"
)

// lockGate is a no-op without open-file-description locks: waiters queue
// on the flock alone (see filegate_linux.go).
func lockGate(context.Context, int, bool, time.Duration) (release func(), err error) {
	return func() {}, nil
}
