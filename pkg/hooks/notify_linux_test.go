package hooks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The listener hears only datagrams whose sender's uid (SCM_CREDENTIALS)
// is ours. Root may send credentials naming another uid, which is how this
// test plays another user's datagram without a second account (the
// real-process attack is in trust_process_test.go).
func TestListenDropsOtherUIDs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to send another uid's credentials")
	}
	dir := t.TempDir()
	l, err := Listen(dir, DaemonSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	send := func(uid uint32, msg string) {
		t.Helper()
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		oob := unix.UnixCredentials(&unix.Ucred{Pid: int32(os.Getpid()), Uid: uid, Gid: uid})
		if err := unix.Sendmsg(fd, []byte(msg), oob, &unix.SockaddrUnix{Name: SocketPath(dir, DaemonSocket)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	send(12345, "changed 99")
	send(uint32(os.Geteuid()), "mine")
	expectMsg(t, l, "mine") // and not the other uid's, which came first
}

// A state dir whose socket path does not fit in sun_path (108 bytes) is
// reached through /proc/self/fd, not by falling back to polling.
func TestListenLongPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 100), "s.db.d")
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	if len(SocketPath(dir, DeliverSocket)) <= maxSunPath {
		t.Fatal("path not long enough for the test")
	}
	l, err := Listen(dir, DeliverSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := os.Lstat(SocketPath(dir, DeliverSocket)); err != nil {
		t.Fatalf("socket file not in the state dir: %v", err)
	}
	if _, err := Listen(dir, DeliverSocket); err == nil {
		t.Fatal("a second Listen succeeded")
	}
	if !Notify(dir, DeliverSocket, []byte("hello")) {
		t.Fatal("Notify did not reach the listener")
	}
	expectMsg(t, l, "hello")
}
