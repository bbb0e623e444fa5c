package hooks

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/store"
	"golang.org/x/sys/unix"
)

// A committed change reaches every watcher's socket as one datagram per
// event, in the order of the changes, values cut as hooks' are; a socket
// file nobody listens on is skipped and left alone; with no watcher
// nothing is kept.
func TestWatchFanOut(t *testing.T) {
	s, _ := sqliteStore(t)
	info, err := store.Locate(s)
	if err != nil {
		t.Fatal(err)
	}
	dir := StateDir(info)
	sess := &Session{Store: s, MaxEventValue: 4}
	put := func(key, value string) *Tx {
		t.Helper()
		var htx *Tx
		err := sess.Update(context.Background(), func(tx *Tx) error {
			htx = tx
			if err := tx.Put(store.Entry{Bucket: "main", Key: key, Value: []byte(value)}); err != nil {
				return err
			}
			_, err := tx.Delete("main", key)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return htx
	}
	if tx := put("quiet", "v"); len(tx.Watched) != 0 || tx.watchMax != 0 {
		t.Fatalf("no watcher, yet %d events kept", len(tx.Watched))
	}

	w, err := Watch(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	other, err := listen(dir, filepath.Join(dir, "watch-other.sock"), watchBufSize, false)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	dead, err := listen(dir, filepath.Join(dir, "watch-dead.sock"), watchBufSize, false)
	if err != nil {
		t.Fatal(err)
	}
	dead.Close() // its file stays: a watcher killed with -9

	put("k", "long value")
	for _, c := range []<-chan []byte{w.C, other.C} {
		for _, want := range []string{`"event":"set","bucket":"main","key":"k","value":"long","value_truncated":true`, `"event":"delete"`} {
			line := string(<-c)
			if !strings.Contains(line, want) || !strings.HasSuffix(line, "}\n") || !strings.Contains(line, `"hook_id":0`) {
				t.Fatalf("got %q, want it to contain %s", line, want)
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "watch-dead.sock")); err != nil {
		t.Fatalf("a writer removed another's socket file: %v", err)
	}
	w.Close()
	if _, err := os.Lstat(w.path); !os.IsNotExist(err) {
		t.Fatalf("the watcher's socket file outlived it: %v", err)
	}
}

// A watcher hears only datagrams whose sender's uid is ours (root forges
// another uid's credentials here; see TestListenDropsOtherUIDs).
func TestWatchDropsOtherUIDs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to send another uid's credentials")
	}
	dir := t.TempDir()
	w, err := Watch(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, uid := range []uint32{12345, 0} {
		oob := unix.UnixCredentials(&unix.Ucred{Pid: int32(os.Getpid()), Uid: uid, Gid: uid})
		msg := []byte(`{"event":"set","bucket":"main","key":"from` + string(rune('0'+uid%10)) + `"}`)
		if err := unix.Sendmsg(fd, msg, oob, &unix.SockaddrUnix{Name: w.path}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(<-w.C); !strings.Contains(got, `"from0"`) {
		t.Fatalf("got %q first: another uid's event was heard", got)
	}
}

// A burst of events (a reap of 1,500 expired keys, a bucket drop) reaches
// a watcher whole. The kernel queues at most net.unix.max_dgram_qlen (10
// by default) datagrams on a socket, whatever its buffer, and a writer
// never blocks: with one datagram per event a watcher heard 99 of 1,500
// expire events (found by the chaos review). Events now go packed, many
// lines to a datagram.
func TestWatchBurstArrivesWhole(t *testing.T) {
	s, _ := sqliteStore(t)
	info, err := store.Locate(s)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Watch(StateDir(info))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sess := &Session{Store: s}
	const n = 1500
	err = sess.Update(context.Background(), func(tx *Tx) error {
		for i := range n {
			if err := tx.Put(store.Entry{Bucket: "main", Key: fmt.Sprintf("session:%04d", i), Value: []byte("alice")}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		select {
		case line := <-w.C:
			want := fmt.Sprintf(`"key":"session:%04d"`, i)
			if !strings.Contains(string(line), want) || !strings.HasSuffix(string(line), "}\n") || strings.Count(string(line), "\n") != 1 {
				t.Fatalf("event %d: got %q, want one line with %s", i, line, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the watcher heard %d of %d events", i, n)
		}
	}
}

// A watcher of an earlier livedict (watch-PID.sock, 3b07045 and 4834498)
// reads one event per datagram and parses the datagram as one JSON
// object: the packed datagrams of a multi-key commit (mset, a del of
// several keys, import, reap) failed to parse there and every event of
// that commit was dropped without a word, while an upgraded writer and an
// old 'livedict watch' ran side by side (found by the compat review). Such
// a socket still gets one event per datagram; a watcher of this livedict
// gets them packed.
func TestWatchOldWatcherGetsOneEventPerDatagram(t *testing.T) {
	s, _ := sqliteStore(t)
	info, err := store.Locate(s)
	if err != nil {
		t.Fatal(err)
	}
	dir := StateDir(info)
	w, err := Watch(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if !strings.HasSuffix(w.path, packedSuffix) {
		t.Fatalf("this livedict's watcher binds %s, which writers would not pack for", w.path)
	}
	// The old watcher: a plain datagram socket at the name it bound.
	oldPath := filepath.Join(dir, "watch-999999.sock")
	old, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: oldPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	sess := &Session{Store: s}
	const n = 5
	err = sess.Update(context.Background(), func(tx *Tx) error {
		for i := range n {
			if err := tx.Put(store.Entry{Bucket: "main", Key: fmt.Sprintf("k%d", i), Value: []byte("v")}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<16)
	for i := range n {
		old.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := old.Read(buf)
		if err != nil {
			t.Fatalf("old watcher, datagram %d: %v", i, err)
		}
		got := string(buf[:m])
		if strings.Count(got, "\n") != 1 || !strings.Contains(got, fmt.Sprintf(`"key":"k%d"`, i)) {
			t.Fatalf("old watcher, datagram %d: got %q, want the one event of k%d", i, got, i)
		}
	}
	for i := range n {
		select {
		case line := <-w.C:
			if !strings.Contains(string(line), fmt.Sprintf(`"key":"k%d"`, i)) {
				t.Fatalf("new watcher, event %d: got %q", i, line)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the new watcher heard %d of %d events", i, n)
		}
	}
}

// A watcher starting removes dead watchers' sockets only when they are this
// user's: one owned by another uid is left alone, bound or not (the state
// folder is this user's alone, so only root could have put it there, and
// it is not livedict's to delete).
func TestRemoveStaleWatchersOwnOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a socket file to another uid")
	}
	dir := t.TempDir()
	dead := func(name string) string {
		path := filepath.Join(dir, name)
		l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		l.Close() // the file stays, nobody bound: a watcher killed with -9
		return path
	}
	mine, theirs := dead("watch-1.packed.sock"), dead("watch-2.packed.sock")
	if err := os.Lchown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	removeStaleWatchers(dir, filepath.Join(dir, "watch-3.packed.sock"))
	if _, err := os.Lstat(mine); !os.IsNotExist(err) {
		t.Errorf("this user's dead socket is still there: %v", err)
	}
	if _, err := os.Lstat(theirs); err != nil {
		t.Errorf("another uid's socket was removed: %v", err)
	}
}
