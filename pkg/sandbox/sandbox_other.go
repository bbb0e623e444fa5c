//go:build !linux

package sandbox

import "context"

// MaybeRunChild returns at once: there is no helper mode off Linux.
func MaybeRunChild() {}

// Run fails with ErrUnsupported: the sandbox's guarantees (process-group
// and namespace kills, Landlock, seccomp) are Linux-specific, and a hook
// must not run with fewer than `hook sandbox` promises.
func Run(ctx context.Context, s Spec) (Result, error) {
	return Result{}, ErrUnsupported
}

// Probe reports every layer off on systems other than Linux.
func Probe(noNetwork bool) []Layer {
	var out []Layer
	for _, name := range layerOrder() {
		out = append(out, off(name, "hook sandbox is only implemented on Linux"))
	}
	return out
}

// CloseInherited does nothing off Linux.
func CloseInherited(from int) error { return nil }

// MarkCloseOnExec does nothing off Linux.
func MarkCloseOnExec(from int) error { return nil }

// CloseSpawners does nothing off Linux.
func CloseSpawners() {}

// CheckCommand accepts every command here: no hook runs off Linux.
func CheckCommand(path string) error { return nil }
