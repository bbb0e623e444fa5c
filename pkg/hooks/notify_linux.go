package hooks

import (
	"crypto/sha256"
	"encoding/hex"
	"net"

	"golang.org/x/sys/unix"
)

// Processes tell the deliverer and the daemon about changes with one
// datagram on an abstract Unix socket named after the store's state dir.
// A datagram is a wake-up, nothing more: a lost one costs promptness
// (the daemon polls slowly behind it), never an event, because events are
// in the outbox and deadlines in the store.
const (
	// DeliverSocket is bound by whoever holds DeliverLock.
	DeliverSocket = "deliver"
	// DaemonSocket is bound by the daemon.
	DaemonSocket = "daemon"
)

func socketName(stateDir, role string) string {
	sum := sha256.Sum256([]byte(stateDir))
	return "@livedict-" + hex.EncodeToString(sum[:12]) + "-" + role
}

// Notify sends msg to the process listening as role for the store whose
// state dir is stateDir, without blocking, and reports whether one was
// listening. It uses raw system calls: a short command should not start
// Go's network poller for one datagram.
func Notify(stateDir, role string, msg []byte) bool {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	err = unix.Sendto(fd, msg, 0, &unix.SockaddrUnix{Name: socketName(stateDir, role)})
	// A full queue means the listener is there, just busy.
	return err == nil || err == unix.EAGAIN
}

// Listener receives notifications.
type Listener struct {
	conn *net.UnixConn
	// C receives each datagram's bytes.
	C <-chan []byte
}

// Listen binds the socket for role. It fails if another process has it.
func Listen(stateDir, role string) (*Listener, error) {
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socketName(stateDir, role), Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	c := make(chan []byte, 64)
	go func() {
		defer close(c)
		buf := make([]byte, 512)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msg := append([]byte(nil), buf[:n]...)
			select {
			case c <- msg:
			default: // a wake-up is already queued
			}
		}
	}()
	return &Listener{conn: conn, C: c}, nil
}

// Close unbinds the socket.
func (l *Listener) Close() error { return l.conn.Close() }

// SocketName is the abstract socket address role is bound at for the store
// whose state dir is stateDir. Tests look for it in /proc/net/unix to see
// that a daemon listens without sending it a datagram it would act on.
func SocketName(stateDir, role string) string { return socketName(stateDir, role) }
