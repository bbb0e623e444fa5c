package sandbox

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// unixAttackEnv makes a copy of this test binary, run as a hook, try to
// reach Unix sockets outside its sandbox instead of running tests (see
// TestMain). Its value is "STREAM-PATH|@ABSTRACT|DGRAM-PATH".
const unixAttackEnv = "LIVEDICT_SANDBOX_TEST_UNIX"

// reachUnixSockets is the hostile hook: one line per socket it reached.
func reachUnixSockets(arg string) {
	parts := strings.Split(arg, "|")
	stream, abstract, dgram := parts[0], parts[1], parts[2]
	try := func(what, network, addr string) {
		c, err := net.DialTimeout(network, addr, 2*time.Second)
		if err != nil {
			fmt.Printf("%s: %v\n", what, err)
			return
		}
		defer c.Close()
		fmt.Printf("REACHED %s\n", what)
		// A datagram only counts once sent; a stream server may already
		// have closed its end.
		_, _ = c.Write([]byte("hello from the hook\n"))
	}
	try("path", "unix", stream)
	try("abstract", "unix", abstract)
	try("datagram-path", "unixgram", dgram)
	// A datagram pair from socketpair(2) can sendto(2) any datagram
	// socket by path.
	for _, typ := range []int{unix.SOCK_DGRAM, unix.SOCK_RAW} {
		fds, err := unix.Socketpair(unix.AF_UNIX, typ, 0)
		if err != nil {
			fmt.Printf("socketpair(%d): %v\n", typ, err)
			continue
		}
		if err := unix.Sendto(fds[0], []byte("hello from the hook\n"), 0, &unix.SockaddrUnix{Name: dgram}); err == nil {
			fmt.Printf("REACHED datagram-path through socketpair(%d)\n", typ)
		} else {
			fmt.Printf("socketpair(%d) sendto: %v\n", typ, err)
		}
		unix.Close(fds[0])
		unix.Close(fds[1])
	}
	// A stream pair is what --no-network leaves: it must still work.
	if fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err == nil {
		fmt.Println("STREAM-PAIR ok")
		unix.Close(fds[0])
		unix.Close(fds[1])
	} else {
		fmt.Printf("STREAM-PAIR %v\n", err)
	}
	fmt.Println("DONE")
}

// TestNoNetworkBlocksUnixSockets is the attack of issue 8 (hole 6): a
// --no-network hook reached a server through its socket file. Servers
// listen on a Unix socket by path, on an abstract one and on a datagram
// socket by path; a --no-network hook must reach none of them, while a
// plain hook reaches the socket file (a network namespace does not hide
// the filesystem; that is what --no-network is for).
func TestNoNetworkBlocksUnixSockets(t *testing.T) {
	t.Parallel()
	needLayer(t, layerNetNS)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stream := filepath.Join(dir, "stream.sock")
	abstract := fmt.Sprintf("@livedict-sandbox-test-%d", rand.Int64())
	dgram := filepath.Join(dir, "dgram.sock")
	var reached atomic.Int64
	for _, addr := range []string{stream, abstract} {
		ln, err := net.Listen("unix", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				reached.Add(1)
				c.Close()
			}
		}()
	}
	pc, err := net.ListenPacket("unixgram", dgram)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 256)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			reached.Add(1)
		}
	}()
	arg := stream + "|" + abstract + "|" + dgram

	out := runAttack(t, "--no-network hook", Spec{Argv: []string{self}, Env: map[string]string{unixAttackEnv: arg}, NoNetwork: true})
	if strings.Contains(out, "REACHED") {
		t.Errorf("a --no-network hook reached a Unix socket outside its sandbox:\n%s", out)
	}
	if !strings.Contains(out, "STREAM-PAIR ok") {
		t.Errorf("socketpair(AF_UNIX, SOCK_STREAM) must still work under --no-network:\n%s", out)
	}
	time.Sleep(50 * time.Millisecond)
	if n := reached.Load(); n != 0 {
		t.Errorf("the servers saw %d connection(s) or datagram(s) from a --no-network hook", n)
	}

	// The control, and what the README promises of a plain hook: socket
	// files are reachable without --no-network.
	out = runAttack(t, "plain hook", Spec{Argv: []string{self}, Env: map[string]string{unixAttackEnv: arg}})
	for _, want := range []string{"REACHED path\n", "REACHED datagram-path\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("a plain hook should reach the socket file (%q missing):\n%s", want, out)
		}
	}
	// Abstract names: Landlock's scoping (ABI 6) blocks them for plain
	// hooks too; without it they are reachable, and hook sandbox says so.
	scoped := strings.Contains(layer(t, Probe(false), layerNetwork).Why, "abstract Unix sockets outside the sandbox are blocked")
	if got := strings.Contains(out, "REACHED abstract\n"); got == scoped {
		t.Errorf("plain hook reached the abstract socket: %v, but hook sandbox says blocked: %v\n%s", got, scoped, out)
	}
}
