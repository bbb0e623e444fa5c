package hooks

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/store"
)

// lockHelperEnv makes the test binary a process that holds a lock: the
// value is "STATEDIR|NAME". It prints "locked" and holds the lock until its
// stdin closes.
const lockHelperEnv = "LIVEDICT_HOOKS_TEST_LOCK_HOLDER"

func TestLockHelperProcess(t *testing.T) {
	spec := os.Getenv(lockHelperEnv)
	if spec == "" {
		t.Skip("helper for the lock tests; does nothing on its own")
	}
	dir, name, _ := strings.Cut(spec, "|")
	l, err := TryLock(dir, name)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	l.Release()
	os.Exit(0)
}

// lockHolder is another process holding a lock.
type lockHolder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func holdLock(t *testing.T, dir, name string) *lockHolder {
	t.Helper()
	c := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$", "-test.count=1")
	c.Env = append(os.Environ(), lockHelperEnv+"="+dir+"|"+name, "GORACE=atexit_sleep_ms=0")
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	h := &lockHolder{cmd: c, stdin: stdin}
	t.Cleanup(h.release)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("lock helper: %q, %v", line, err)
	}
	return h
}

func (h *lockHolder) pid() int { return h.cmd.Process.Pid }

// release lets the holder exit and waits for it.
func (h *lockHolder) release() {
	if h.stdin != nil {
		h.stdin.Close()
		h.stdin = nil
		h.cmd.Wait()
	}
}

func (h *lockHolder) kill9() {
	h.cmd.Process.Signal(syscall.SIGKILL)
	h.stdin.Close()
	h.stdin = nil
	h.cmd.Wait()
}

func TestTryLockAndHolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s.db.d") // created by TryLock
	if pid, err := Holder(dir, DeliverLock); err != nil || pid != 0 {
		t.Fatalf("Holder with no lock file = %d, %v", pid, err)
	}
	h := holdLock(t, dir, DeliverLock)
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dir, DeliverLock)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v, %v", fi.Mode(), err)
	}
	if pid, err := Holder(dir, DeliverLock); err != nil || pid != h.pid() {
		t.Fatalf("Holder = %d, %v; want %d", pid, err, h.pid())
	}
	if pid, _ := Holder(dir, DaemonLock); pid != 0 {
		t.Fatalf("another lock's Holder = %d", pid)
	}
	if _, err := TryLock(dir, DeliverLock); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock while held = %v, want ErrLocked", err)
	}
	// The other lock is free.
	dl, err := TryLock(dir, DaemonLock)
	if err != nil {
		t.Fatal(err)
	}
	if err := dl.WriteInfo("pid 1 started x\n"); err != nil {
		t.Fatal(err)
	}
	if err := dl.WriteInfo("short"); err != nil {
		t.Fatal(err)
	}
	if got := ReadInfo(dir, DaemonLock); got != "short" {
		t.Fatalf("ReadInfo = %q", got)
	}
	dl.Release()

	h.release()
	if pid, err := Holder(dir, DeliverLock); err != nil || pid != 0 {
		t.Fatalf("Holder after release = %d, %v", pid, err)
	}
	l, err := TryLock(dir, DeliverLock)
	if err != nil {
		t.Fatalf("TryLock after release = %v", err)
	}
	l.Release()

	// kill -9 drops the lock too.
	h = holdLock(t, dir, DeliverLock)
	if pid, _ := Holder(dir, DeliverLock); pid != h.pid() {
		t.Fatalf("Holder = %d, want %d", pid, h.pid())
	}
	h.kill9()
	if pid, _ := Holder(dir, DeliverLock); pid != 0 {
		t.Fatalf("Holder after kill -9 = %d", pid)
	}
	l, err = TryLock(dir, DeliverLock)
	if err != nil {
		t.Fatalf("TryLock after kill -9 = %v", err)
	}
	// Now the child cannot have it.
	c := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$", "-test.count=1")
	c.Env = append(os.Environ(), lockHelperEnv+"="+dir+"|"+DeliverLock, "GORACE=atexit_sleep_ms=0")
	out, _ := c.Output()
	if !strings.Contains(string(out), ErrLocked.Error()) {
		t.Fatalf("child TryLock while we hold it: %q", out)
	}
	l.Release()
}

func TestStateDir(t *testing.T) {
	if got := StateDir(store.Info{Backend: "sqlite", Location: "/a/b/s.db"}); got != "/a/b/s.db.d" {
		t.Fatalf("sqlite: %q", got)
	}
	if got := StateDir(store.Info{Backend: "file", Location: "/a/store"}); got != "/a/store/.d" {
		t.Fatalf("file: %q", got)
	}
	dir := t.TempDir()
	w, err := WorkDirFor(filepath.Join(dir, "x.d"))
	if err != nil || w != filepath.Join(dir, "x.d", "work") {
		t.Fatalf("WorkDirFor = %q, %v", w, err)
	}
	if fi, err := os.Stat(w); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("work dir: %v", err)
	}
}

func TestCheckSafe(t *testing.T) {
	if err := CheckSafe(store.Info{Backend: "memory"}); err != nil {
		t.Fatalf("memory: %v", err)
	}
	mk := func(t *testing.T, dirMode, fileMode os.FileMode) (dir, file string) {
		t.Helper()
		dir = filepath.Join(t.TempDir(), "d")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		file = filepath.Join(dir, "s.db")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, dirMode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, fileMode); err != nil {
			t.Fatal(err)
		}
		return dir, file
	}
	for _, c := range []struct {
		name              string
		dirMode, fileMode os.FileMode
		safe              bool
	}{
		{"private", 0o700, 0o600, true},
		{"readable", 0o755, 0o644, true},
		{"world-writable folder", 0o777, 0o600, false},
		{"group-writable folder", 0o770, 0o600, false},
		// Sticky does not help the folder holding the store: others can
		// still plant files beside it (SPEC: /tmp stores get no hooks).
		{"sticky world-writable folder", 0o777 | os.ModeSticky, 0o600, false},
		{"sticky group-writable folder", 0o770 | os.ModeSticky, 0o600, false},
		{"group-writable file", 0o700, 0o620, false},
		{"world-writable file", 0o700, 0o602, false},
		{"group-writable file in sticky folder", 0o777 | os.ModeSticky, 0o660, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, file := mk(t, c.dirMode, c.fileMode)
			err := CheckSafe(store.Info{Backend: "sqlite", Location: file})
			if c.safe && err != nil {
				t.Fatalf("CheckSafe = %v, want nil", err)
			}
			if !c.safe && !errors.Is(err, ErrUnsafe) {
				t.Fatalf("CheckSafe = %v, want ErrUnsafe", err)
			}
			if err != nil && !strings.Contains(err.Error(), filepath.Dir(file)) {
				t.Fatalf("error does not name the path: %v", err)
			}
		})
	}
	t.Run("file store folder", func(t *testing.T) {
		dir, _ := mk(t, 0o700, 0o600)
		if err := CheckSafe(store.Info{Backend: "file", Location: dir}); err != nil {
			t.Fatalf("private file store: %v", err)
		}
		os.Chmod(dir, 0o777)
		if err := CheckSafe(store.Info{Backend: "file", Location: dir}); !errors.Is(err, ErrUnsafe) {
			t.Fatalf("world-writable file store: %v", err)
		}
		os.Chmod(dir, 0o700)
		os.Chmod(filepath.Dir(dir), 0o777)
		if err := CheckSafe(store.Info{Backend: "file", Location: dir}); !errors.Is(err, ErrUnsafe) {
			t.Fatalf("file store in a world-writable folder: %v", err)
		}
	})
	t.Run("owned by another user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to chown")
		}
		_, file := mk(t, 0o700, 0o600)
		if err := os.Chown(file, 12345, 12345); err != nil {
			t.Skip(err)
		}
		if err := CheckSafe(store.Info{Backend: "sqlite", Location: file}); !errors.Is(err, ErrUnsafe) {
			t.Fatalf("CheckSafe = %v, want ErrUnsafe", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		// A store not made yet is judged by the nearest folder that is
		// there: the first write makes the rest, private.
		dir := t.TempDir()
		if err := CheckSafe(store.Info{Backend: "sqlite", Location: filepath.Join(dir, "a", "nope.db")}); err != nil {
			t.Fatalf("missing store in a private folder: %v", err)
		}
		os.Chmod(dir, 0o777|os.ModeSticky)
		if err := CheckSafe(store.Info{Backend: "sqlite", Location: filepath.Join(dir, "nope.db")}); !errors.Is(err, ErrUnsafe) {
			t.Fatalf("missing store in a sticky world-writable folder: %v", err)
		}
		if err := CheckSafe(store.Info{Backend: "sqlite", Location: filepath.Join(dir, "new", "s.db")}); err != nil {
			t.Fatalf("missing store in a folder livedict will make in a sticky one: %v", err)
		}
	})
	t.Run("real sqlite store", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "new")
		s, err := store.Open("sqlite:"+filepath.Join(dir, "s.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Update(context.Background(), func(store.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		info, err := s.Info()
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckSafe(info); err != nil {
			t.Fatalf("a store livedict created is unsafe: %v", err)
		}
	})
	t.Run("ancestors", func(t *testing.T) {
		// A folder above the store's that others can write lets them
		// rename the way to it, unless it is sticky.
		top := t.TempDir()
		dir := filepath.Join(top, "a", "b")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "s.db")
		if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(top, "a"), 0o777)
		if err := CheckSafe(store.Info{Backend: "sqlite", Location: file}); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), filepath.Join(top, "a")+" is writable by every user") {
			t.Fatalf("world-writable grandparent: %v", err)
		}
		os.Chmod(filepath.Join(top, "a"), 0o777|os.ModeSticky)
		if err := CheckSafe(store.Info{Backend: "sqlite", Location: file}); err != nil {
			t.Fatalf("sticky grandparent: %v", err)
		}
		// Through a symlink: the real file's folders are what count.
		link := filepath.Join(t.TempDir(), "link.db")
		os.Symlink(file, link)
		os.Chmod(filepath.Join(top, "a"), 0o777)
		if err := CheckSafe(store.Info{Backend: "sqlite", Location: link}); !errors.Is(err, ErrUnsafe) {
			t.Fatalf("symlink into a world-writable grandparent: %v", err)
		}
	})
}

func TestNotifyListen(t *testing.T) {
	dir := t.TempDir()
	if Notify(dir, DeliverSocket, MsgEvents) {
		t.Fatal("Notify with nobody listening reported a listener")
	}
	l, err := Listen(dir, DeliverSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Listen(dir, DeliverSocket); err == nil {
		t.Fatal("a second Listen on the same socket succeeded")
	}
	if Notify(dir, DaemonSocket, MsgEvents) {
		t.Fatal("the daemon socket reached the deliver listener")
	}
	if Notify(t.TempDir(), DeliverSocket, MsgEvents) {
		t.Fatal("another store's socket reached this listener")
	}
	if !Notify(dir, DeliverSocket, []byte("hello")) {
		t.Fatal("Notify did not reach the listener")
	}
	select {
	case msg := <-l.C:
		if string(msg) != "hello" {
			t.Fatalf("got %q", msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no datagram")
	}
	// Many notifications never block the sender.
	start := time.Now()
	for i := 0; i < 2000; i++ {
		Notify(dir, DeliverSocket, MsgEvents)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("2000 notifications took %v", el)
	}
	l.Close()
	for range l.C { // drains, then closes
	}
	l2, err := Listen(dir, DeliverSocket)
	if err != nil {
		t.Fatalf("Listen after Close: %v", err)
	}
	l2.Close()
}

// expectMsg waits for the listener's next datagram and checks it.
func expectMsg(t *testing.T, l *Listener, want string) {
	t.Helper()
	select {
	case msg := <-l.C:
		if string(msg) != want {
			t.Fatalf("got %q, want %q", msg, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no %q notification", want)
	}
}

func TestKick(t *testing.T) {
	listen := func(t *testing.T, dir, role string) *Listener {
		l, err := Listen(dir, role)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	expect := expectMsg

	t.Run("nobody delivers", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "s.d")
		spawned := 0
		if err := Kick(dir, func() error { spawned++; return nil }); err != nil || spawned != 1 {
			t.Fatalf("Kick = %v, spawned %d", err, spawned)
		}
		boom := errors.New("cannot start")
		if err := Kick(dir, func() error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("Kick = %v", err)
		}
	})
	t.Run("dispatcher delivers", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "s.d")
		holdLock(t, dir, DeliverLock)
		l := listen(t, dir, DeliverSocket)
		if err := Kick(dir, func() error { t.Fatal("spawned while a dispatcher runs"); return nil }); err != nil {
			t.Fatal(err)
		}
		expect(t, l, string(MsgEvents))
	})
	t.Run("daemon delivers", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "s.d")
		holdLock(t, dir, DaemonLock)
		holdLock(t, dir, DeliverLock)
		ld := listen(t, dir, DaemonSocket)
		lv := listen(t, dir, DeliverSocket)
		if err := Kick(dir, func() error { t.Fatal("spawned while the daemon runs"); return nil }); err != nil {
			t.Fatal(err)
		}
		expect(t, ld, string(MsgEvents))
		expect(t, lv, string(MsgEvents))
	})
	t.Run("takeover", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "s.d")
		l := listen(t, dir, DeliverSocket)
		Takeover(dir)
		expect(t, l, "takeover")
	})
}

func TestMessages(t *testing.T) {
	if ev, at := ParseMessage(MsgEvents); !ev || at != 0 {
		t.Fatalf("events: %v %d", ev, at)
	}
	if ev, at := ParseMessage(ChangedMessage(1234)); ev || at != 1234 {
		t.Fatalf("changed: %v %d", ev, at)
	}
	for _, m := range []string{"changed 0", "changed -1", "changed x", "takeover", "", "events 5"} {
		ev, at := ParseMessage([]byte(m))
		if at != 0 || (ev && m != "events 5") {
			t.Errorf("ParseMessage(%q) = %v, %d", m, ev, at)
		}
	}
}

func TestDispatch(t *testing.T) {
	t.Run("delivers and lets go", func(t *testing.T) {
		s, _ := memStore(t)
		addHook(t, s, Hook{Events: Set})
		for i := 0; i < 5; i++ {
			set(t, s, "main", fmt.Sprintf("k%d", i), "v")
		}
		dir := filepath.Join(t.TempDir(), "s.d")
		f := newFakeRunner(t)
		if err := Dispatch(context.Background(), newDeliverer(t, s, f), dir); err != nil {
			t.Fatal(err)
		}
		if len(f.snapshot()) != 5 || len(outbox(t, s)) != 0 {
			t.Fatalf("%d runs, %d left", len(f.snapshot()), len(outbox(t, s)))
		}
		// The lock is free again, and the socket unbound.
		l, err := TryLock(dir, DeliverLock)
		if err != nil {
			t.Fatalf("lock after Dispatch: %v", err)
		}
		l.Release()
		ln, err := Listen(dir, DeliverSocket)
		if err != nil {
			t.Fatalf("socket after Dispatch: %v", err)
		}
		ln.Close()
	})
	for _, holder := range []struct{ lock, who string }{{DeliverLock, "another dispatcher"}, {DaemonLock, "the daemon"}} {
		t.Run(holder.who+" runs", func(t *testing.T) {
			s, _ := memStore(t)
			addHook(t, s, Hook{Events: Set})
			set(t, s, "main", "k", "v")
			dir := filepath.Join(t.TempDir(), "s.d")
			holdLock(t, dir, holder.lock)
			f := newFakeRunner(t)
			if err := Dispatch(context.Background(), newDeliverer(t, s, f), dir); err != nil {
				t.Fatal(err)
			}
			if len(f.snapshot()) != 0 || len(outbox(t, s)) != 1 {
				t.Fatalf("delivered while %s holds %s", holder.who, holder.lock)
			}
		})
	}
	t.Run("wake-up while delivering", func(t *testing.T) {
		s, _ := memStore(t)
		addHook(t, s, Hook{Events: Set})
		set(t, s, "main", "a", "1")
		dir := filepath.Join(t.TempDir(), "s.d")
		f := newFakeRunner(t)
		f.gate = make(chan struct{})
		f.started = make(chan call, 10)
		errc := make(chan error, 1)
		go func() { errc <- Dispatch(context.Background(), newDeliverer(t, s, f), dir) }()
		recvCall(t, f.started, "a=1")
		// A writer commits and wakes the dispatcher, as Kick does when it
		// sees the lock held. (Kick itself cannot be called here: Holder
		// does not see this process's own lock, and closing its descriptor
		// would drop the lock.)
		set(t, s, "main", "b", "1")
		if !Notify(dir, DeliverSocket, MsgEvents) {
			t.Fatal("the dispatcher does not listen")
		}
		recvCall(t, f.started, "b=1")
		close(f.gate)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if len(outbox(t, s)) != 0 {
			t.Fatal("events left")
		}
	})
	t.Run("takeover by the daemon", func(t *testing.T) {
		s, _ := memStore(t)
		addHook(t, s, Hook{Events: Set})
		for i := 0; i < 3; i++ {
			set(t, s, "main", "k", fmt.Sprint(i))
		}
		dir := filepath.Join(t.TempDir(), "s.d")
		f := newFakeRunner(t)
		f.gate = make(chan struct{})
		f.started = make(chan call, 10)
		errc := make(chan error, 1)
		go func() { errc <- Dispatch(context.Background(), newDeliverer(t, s, f), dir) }()
		recvCall(t, f.started, "k=0")
		holdLock(t, dir, DaemonLock) // the daemon starts...
		Takeover(dir)                // ...and asks the dispatcher to stand aside
		time.Sleep(50 * time.Millisecond)
		close(f.gate)
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("Dispatch after takeover = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Dispatch did not stand aside")
		}
		// The running hook finished and was recorded; the rest wait for
		// the daemon.
		if got := statuses(runs(t, s, 0, false)); got != "ok/1" {
			t.Fatalf("log = %s", got)
		}
		if n := len(outbox(t, s)); n != 2 {
			t.Fatalf("%d events left, want 2", n)
		}
		if pid, _ := Holder(dir, DeliverLock); pid != 0 {
			t.Fatal("deliver lock still held")
		}
	})
	t.Run("HasPending", func(t *testing.T) {
		s, _ := memStore(t)
		if p, err := HasPending(context.Background(), s); p || err != nil {
			t.Fatalf("empty: %v %v", p, err)
		}
		addHook(t, s, Hook{Events: Set})
		set(t, s, "main", "k", "v")
		if p, err := HasPending(context.Background(), s); !p || err != nil {
			t.Fatalf("one event: %v %v", p, err)
		}
	})
}

// A Redis store's state dir holds the hooks' work dirs and the locks: a
// folder above it that another user can write (or owns) lets them rename
// it away between the check and a hook's run, and put a folder of theirs
// in its place, as for a local store's folders (CheckHooksPath). It was
// checked alone.
func TestCheckSafeStateDirFolders(t *testing.T) {
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(open, "livedict", "redis", "0123")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	info := store.Info{Backend: "redis", Location: "redis://h:1", StateDir: state}
	if err := CheckSafe(info); err != nil {
		t.Fatalf("private folders: %v", err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := CheckSafe(info); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), open) {
		t.Fatalf("state dir under a world-writable folder: %v, want ErrUnsafe naming %s", err, open)
	}
}

// With no home directory (a uid without HOME or a user database entry)
// hook_key_file has no default and is empty. LoadHookKey took "" as a file
// in ".": it wrote a temporary key into the working directory, then failed
// with "link ./.hook.key.N : no such file or directory" and livedict's
// "please report it as a bug" hint. It names the setting now (exit 3, as an
// empty identity_file is) and writes nothing.
func TestLoadHookKeyEmptyPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	_, err := LoadHookKey("")
	if err == nil || store.KindOf(err) != store.KindStore || !strings.Contains(err.Error(), "hook_key_file") {
		t.Fatalf("LoadHookKey(\"\") = %v (kind %v), want a store error naming hook_key_file", err, store.KindOf(err))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("LoadHookKey(\"\") wrote %s in the working directory", ents[0].Name())
	}
}
