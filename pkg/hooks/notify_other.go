//go:build !linux

package hooks

import (
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Without abstract Unix sockets there are no notifications: the daemon
// finds changes by its slow poll and writers always start a deliverer
// (which exits at once when one already runs).
const (
	DeliverSocket = "deliver"
	DaemonSocket  = "daemon"
)

// Notify does nothing here and reports that nobody listens.
func Notify(stateDir, role string, msg []byte) bool { return false }

// Listener receives notifications; here it never does.
type Listener struct{ C <-chan []byte }

// Listen returns a listener that never receives.
func Listen(stateDir, role string) (*Listener, error) { return &Listener{}, nil }

// Close does nothing.
func (l *Listener) Close() error { return nil }

// SocketPath is where the socket of role would be; nothing binds it here.
func SocketPath(stateDir, role string) string { return filepath.Join(stateDir, role+".sock") }

// listen returns a listener that never receives.
func listen(stateDir, path string, bufSize int, lossy bool) (*Listener, error) {
	return &Listener{}, nil
}

// sendAll does nothing here.
func sendAll(stateDir, pattern string, msgsFor func(name string) [][]byte) {}

// setOFDLock falls back to a process lock where there are no OFD locks.
const setOFDLock = unix.F_SETLK

// removeStaleWatchers does nothing here: no watcher binds a socket.
func removeStaleWatchers(stateDir, own string) {}
