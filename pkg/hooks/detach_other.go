//go:build !linux

package hooks

// PrepareSpawn does nothing here: hooks run only on Linux.
func PrepareSpawn() error { return nil }

// Detach does nothing here: hooks run only on Linux.
func Detach() error { return nil }
