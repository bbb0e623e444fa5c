package hooks

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Processes tell the deliverer and the daemon about changes with one
// datagram on a Unix socket in the store's state dir. A datagram is a
// wake-up, nothing more: a lost one costs promptness (the daemon polls
// slowly behind it), never an event, because events are in the outbox and
// deadlines in the store.
//
// The socket is a file in the state dir (mode 0700, checked by the trust
// rule), not an abstract name: anyone could bind an abstract name first
// and silence the daemon, while only the owner can create a file in the
// state dir. The listener also checks the sender's uid on every datagram
// (SCM_CREDENTIALS), so no other user's process is heard even if it
// reached the socket (root's, for one).
const (
	// DeliverSocket is bound by whoever holds DeliverLock.
	DeliverSocket = "deliver"
	// DaemonSocket is bound by the daemon.
	DaemonSocket = "daemon"
)

// SocketPath is the socket file role listens on for the store whose state
// dir is stateDir.
func SocketPath(stateDir, role string) string {
	return filepath.Join(stateDir, role+".sock")
}

// maxSunPath is the room in sockaddr_un's sun_path, less its NUL.
const maxSunPath = 107

// sockAddr returns an address for the socket file at path. A path too
// long for sun_path is reached through /proc/self/fd/N/NAME, where N is a
// descriptor of its folder, which then must stay open while the address
// is used (done closes it).
func sockAddr(path string) (addr *unix.SockaddrUnix, done func(), err error) {
	if len(path) <= maxSunPath {
		return &unix.SockaddrUnix{Name: path}, func() {}, nil
	}
	dfd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	name := "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + filepath.Base(path)
	if len(name) > maxSunPath {
		unix.Close(dfd)
		return nil, nil, fmt.Errorf("socket name %s is too long", path)
	}
	return &unix.SockaddrUnix{Name: name}, func() { unix.Close(dfd) }, nil
}

// Notify sends msg to the process listening as role for the store whose
// state dir is stateDir, without blocking, and reports whether one was
// listening. It uses raw system calls: a short command should not start
// Go's network poller for one datagram.
func Notify(stateDir, role string, msg []byte) bool {
	addr, done, err := sockAddr(SocketPath(stateDir, role))
	if err != nil {
		return false
	}
	defer done()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	err = unix.Sendto(fd, msg, 0, addr)
	// A full queue means the listener is there, just busy.
	return err == nil || err == unix.EAGAIN
}

// Listener receives notifications.
type Listener struct {
	conn *net.UnixConn
	// C receives each datagram's bytes.
	C <-chan []byte
}

// errInUse is returned by Listen when a process listens already.
var errInUse = errors.New("another process listens on it")

// Listen binds the socket for role. It fails if another process has it.
// The caller holds the lock of the role (DeliverLock, DaemonLock), so a
// socket file nobody listens on is a stale one, and is replaced.
// Datagrams are wake-ups: one queued is as good as many.
func Listen(stateDir, role string) (*Listener, error) {
	return listen(stateDir, SocketPath(stateDir, role), 512, true)
}

// listen binds the socket file at path in stateDir and passes on each
// datagram of up to bufSize bytes from our own uid; lossy drops a
// datagram while one is already queued (a wake-up), otherwise every one
// is kept, in order (a watcher's events).
func listen(stateDir, path string, bufSize int, lossy bool) (*Listener, error) {
	if err := OpenStateDir(stateDir); err != nil {
		return nil, err
	}
	addr, done, err := sockAddr(path)
	if err != nil {
		// A path too long for sun_path opens its folder here, not at
		// Bind: the error must name it as Bind's does.
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	defer done()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close() // net.FileConn holds its own descriptor
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return nil, err
	}
	if !lossy {
		// Room for bursts of events; the kernel caps it at rmem_max.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	err = unix.Bind(fd, addr)
	if err == unix.EADDRINUSE {
		if err := removeStaleSocket(path, addr); err != nil {
			return nil, err
		}
		err = unix.Bind(fd, addr)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	conn := c.(*net.UnixConn)
	ch := make(chan []byte, 64)
	go receive(conn, ch, bufSize, lossy)
	return &Listener{conn: conn, C: ch}, nil
}

// removeStaleSocket removes the socket file at path when nobody listens
// on it (connecting is refused), and says so when somebody does.
func removeStaleSocket(path string, addr *unix.SockaddrUnix) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("listen on %s: it is not a socket", path)
	}
	probe, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(probe)
	if err := unix.Connect(probe, addr); err != unix.ECONNREFUSED {
		return fmt.Errorf("listen on %s: %w", path, errInUse)
	}
	return os.Remove(path)
}

// receive passes on each datagram sent by a process of our own uid, until
// the socket is closed (see listen for bufSize and lossy).
func receive(conn *net.UnixConn, c chan<- []byte, bufSize int, lossy bool) {
	defer close(c)
	uid := uint32(os.Geteuid())
	buf := make([]byte, bufSize)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for {
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return // closed
		}
		if !fromUID(oob[:oobn], uid) {
			continue
		}
		msg := append([]byte(nil), buf[:n]...)
		if !lossy {
			// A watcher's datagram packs event lines (publish): one
			// line at a time on c.
			for len(msg) > 0 {
				i := bytes.IndexByte(msg, '\n') + 1
				if i == 0 {
					i = len(msg)
				}
				c <- msg[:i:i]
				msg = msg[i:]
			}
			continue
		}
		select {
		case c <- msg:
		default: // a wake-up is already queued
		}
	}
}

// fromUID reports whether the credentials the kernel attached to a
// datagram (SO_PASSCRED) name uid.
func fromUID(oob []byte, uid uint32) bool {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return false
	}
	for i := range msgs {
		if cred, err := unix.ParseUnixCredentials(&msgs[i]); err == nil {
			return cred.Uid == uid
		}
	}
	return false
}

// Close unbinds the socket.
func (l *Listener) Close() error { return l.conn.Close() }

// sendAll sends each of msgsFor(name) to every socket file in stateDir
// whose name matches pattern, never blocking: a listener that is gone, or whose
// queue is full, is skipped, and nothing of it is removed (it may be
// another user's doing, or a process about to clean up after itself).
func sendAll(stateDir, pattern string, msgsFor func(name string) [][]byte) {
	ents, err := os.ReadDir(stateDir)
	if err != nil {
		return
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	// What a Unix datagram socket has sent and its reader not yet read
	// counts against the sender's buffer: room for a burst of events
	// (the kernel caps it at twice wmem_max).
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	for _, ent := range ents {
		if ok, _ := filepath.Match(pattern, ent.Name()); !ok || ent.Type() != fs.ModeSocket {
			continue
		}
		addr, done, err := sockAddr(filepath.Join(stateDir, ent.Name()))
		if err != nil {
			continue
		}
		for _, m := range msgsFor(ent.Name()) {
			if err := unix.Sendto(fd, m, unix.MSG_DONTWAIT, addr); err != nil && err != unix.EMSGSIZE {
				break // gone or full: skip this watcher
			}
		}
		done()
	}
}

// setOFDLock takes an open file description lock (see WatchLock).
const setOFDLock = unix.F_OFD_SETLK

// removeStaleWatchers removes the socket files, other than own, that
// watchers which did not end by themselves left in stateDir: a watch
// whose terminal closed (SIGHUP) or that was killed. Writers skip them,
// but each cost every event a send, and they piled up, one per session
// closed with a watch running. Only this user's sockets that nobody is
// bound to go (see removeStaleSocket); writers never remove anything
// (see sendAll), so this runs when a watcher starts.
func removeStaleWatchers(stateDir, own string) {
	ents, err := os.ReadDir(stateDir)
	if err != nil {
		return
	}
	uid := uint32(os.Geteuid())
	for _, ent := range ents {
		path := filepath.Join(stateDir, ent.Name())
		if ok, _ := filepath.Match(watchPattern, ent.Name()); !ok || ent.Type() != fs.ModeSocket || path == own {
			continue
		}
		var st unix.Stat_t
		if unix.Lstat(path, &st) != nil || st.Uid != uid {
			continue
		}
		addr, done, err := sockAddr(path)
		if err != nil {
			continue
		}
		removeStaleSocket(path, addr)
		done()
	}
}
