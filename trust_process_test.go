package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests are attacks by a second local account (livedict-other) on a
// store owned by the user running livedict (root here), as issue 8 found
// them. They need root to create and become that account, and are skipped
// otherwise. Each must fail on a livedict without the trust rule.

const trustOtherUser = "livedict-other"

var (
	trustBuildOnce sync.Once
	trustBinDir    string
	trustBuildErr  error
)

// trustBins builds livedict and the attacker's small tool once, into a
// folder every user can read, since the other account runs them too.
func trustBins(t *testing.T) (livedict, tool string) {
	t.Helper()
	trustBuildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "livedict-trust-bin")
		if err == nil {
			err = os.Chmod(dir, 0o755)
		}
		if err != nil {
			trustBuildErr = err
			return
		}
		trustBinDir = dir
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "livedict"), ".").CombinedOutput(); err != nil {
			trustBuildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		src := filepath.Join(dir, "tool.go")
		if err := os.WriteFile(src, []byte(trustToolSource), 0o644); err != nil {
			trustBuildErr = err
			return
		}
		c := exec.Command("go", "build", "-o", filepath.Join(dir, "tool"), src)
		c.Env = append(os.Environ(), "GO111MODULE=off")
		if out, err := c.CombinedOutput(); err != nil {
			trustBuildErr = fmt.Errorf("go build tool: %v\n%s", err, out)
		}
	})
	if trustBuildErr != nil {
		t.Fatal(trustBuildErr)
	}
	return filepath.Join(trustBinDir, "livedict"), filepath.Join(trustBinDir, "tool")
}

// trustToolSource is the attacker's tool: bind an abstract Unix socket
// name and hold it.
const trustToolSource = `package main

import (
	"net"
	"os"
	"time"
)

func main() {
	switch os.Args[1] {
	case "bind":
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: os.Args[2], Net: "unixgram"})
		if err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("bound\n")
		time.Sleep(time.Minute)
		c.Close()
	}
}
`

// trustOther returns the other account's uid and gid, creating the
// account when missing, or skips the test when not root.
func trustOther(t *testing.T) (uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as a second local user")
	}
	look := func() (int, int, error) {
		u, err := exec.Command("id", "-u", trustOtherUser).Output()
		if err != nil {
			return 0, 0, err
		}
		g, err := exec.Command("id", "-g", trustOtherUser).Output()
		if err != nil {
			return 0, 0, err
		}
		uid, _ := strconv.Atoi(strings.TrimSpace(string(u)))
		gid, _ := strconv.Atoi(strings.TrimSpace(string(g)))
		return uid, gid, nil
	}
	if uid, gid, err := look(); err == nil {
		return uid, gid
	}
	// Another test may be creating it at the same time: look again after.
	out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", trustOtherUser).CombinedOutput()
	uid, gid, lerr := look()
	if lerr != nil {
		t.Skipf("cannot create user %s: %v %s", trustOtherUser, err, out)
	}
	return uid, gid
}

// trustEnv is one attack: a world-traversable base folder, the owner's
// livedict, and the other account.
type trustEnv struct {
	t         *testing.T
	base      string
	bin, tool string
	uid, gid  int
	ownerHome string
	otherHome string
}

func newTrustEnv(t *testing.T) *trustEnv {
	uid, gid := trustOther(t)
	bin, tool := trustBins(t)
	base, err := os.MkdirTemp("", "livedict-trust-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &trustEnv{t: t, base: base, bin: bin, tool: tool, uid: uid, gid: gid,
		ownerHome: filepath.Join(base, "owner-home"), otherHome: filepath.Join(base, "other-home")}
	e.mkdir(e.ownerHome, 0o700)
	e.mkdir(e.otherHome, 0o700)
	if err := os.Chown(e.otherHome, uid, gid); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *trustEnv) mkdir(dir string, mode os.FileMode) string {
	e.t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// result is one finished command.
type result struct {
	out, err string
	code     int
}

func (e *trustEnv) exec(c *exec.Cmd, stdin []byte) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr, c.Stdin = &out, &errb, bytes.NewReader(stdin)
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("%v: %v", c.Args, err)
	}
	return result{out.String(), errb.String(), code}
}

// owner runs livedict as the store's owner.
func (e *trustEnv) owner(store string, args ...string) result {
	e.t.Helper()
	c := exec.Command(e.bin, append([]string{"--store", store}, args...)...)
	c.Env = append(os.Environ(), "HOME="+e.ownerHome, "XDG_CONFIG_HOME="+e.ownerHome, "LIVEDICT_BUSY_TIMEOUT=30s")
	return e.exec(c, nil)
}

// other runs argv as the other account.
func (e *trustEnv) other(stdin []byte, argv ...string) result {
	e.t.Helper()
	c := exec.Command(argv[0], argv[1:]...)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(e.uid), Gid: uint32(e.gid)}}
	c.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + e.otherHome, "XDG_CONFIG_HOME=" + e.otherHome}
	c.Dir = e.otherHome
	return e.exec(c, stdin)
}

// otherLivedict runs livedict as the other account.
func (e *trustEnv) otherLivedict(store string, args ...string) result {
	e.t.Helper()
	return e.other(nil, append([]string{e.bin, "--store", store}, args...)...)
}

// plant writes data to path as the other account (the file is theirs).
func (e *trustEnv) plant(path string, data []byte) {
	e.t.Helper()
	if r := e.other(data, "/bin/sh", "-c", `cat > "$1"`, "sh", path); r.code != 0 {
		e.t.Fatalf("plant %s: %s", path, r.err)
	}
}

func mustCode(t *testing.T, what string, r result, want int) {
	t.Helper()
	if r.code != want {
		t.Fatalf("%s: exit %d, want %d; stdout %q stderr %q", what, r.code, want, r.out, r.err)
	}
}

// hotJournal builds a SQLite rollback journal that, rolled back, makes a
// database of db's pages: what an attacker plants as STORE-journal.
func hotJournal(t *testing.T, db []byte) []byte {
	t.Helper()
	pageSize := int(binary.BigEndian.Uint16(db[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	n := len(db) / pageSize
	const sector, nonce = 512, 0x1badcafe
	j := make([]byte, sector)
	copy(j, []byte{0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7})
	binary.BigEndian.PutUint32(j[8:], uint32(n))
	binary.BigEndian.PutUint32(j[12:], nonce)
	binary.BigEndian.PutUint32(j[16:], uint32(n))
	binary.BigEndian.PutUint32(j[20:], sector)
	binary.BigEndian.PutUint32(j[24:], uint32(pageSize))
	for p := 0; p < n; p++ {
		page := db[p*pageSize : (p+1)*pageSize]
		j = binary.BigEndian.AppendUint32(j, uint32(p+1))
		j = append(j, page...)
		sum := uint32(nonce)
		for i := pageSize - 200; i > 0; i -= 200 {
			sum += uint32(page[i])
		}
		j = binary.BigEndian.AppendUint32(j, sum)
	}
	return j
}

// Hole 1: another user plants STORE-journal beside a store in a /tmp-like
// folder, built from a database of theirs that holds a hook. The owner's
// next command must refuse it (exit 3, naming the journal), never roll it
// back into the store.
func TestTrustPlantedHotJournal(t *testing.T) {
	e := newTrustEnv(t)
	pub := e.mkdir(filepath.Join(e.base, "tmp"), 0o777|os.ModeSticky)
	store := filepath.Join(pub, "s.db")
	mustCode(t, "owner set", e.owner(store, "set", "k", "mine"), 0)

	// The attacker's own database, with their key and a hook, made where
	// hooks are allowed for them.
	evil := filepath.Join(e.otherHome, "evil.db")
	mustCode(t, "other set", e.otherLivedict(evil, "set", "k", "theirs"), 0)
	mustCode(t, "other hook add", e.otherLivedict(evil, "hook", "add", "--on", "get", "--", "/bin/sh", "-c", "touch "+filepath.Join(pub, "pwned")), 0)
	db, err := os.ReadFile(evil)
	if err != nil {
		t.Fatal(err)
	}
	e.plant(store+"-journal", hotJournal(t, db))

	r := e.owner(store, "get", "k")
	if r.code != 3 || !strings.Contains(r.err, store+"-journal") || strings.Count(r.err, "livedict: error:") != 1 {
		t.Errorf("get with a planted journal: exit %d, stderr %q; want exit 3 naming the journal", r.code, r.err)
	}
	// Whatever the owner runs, the store keeps the owner's data.
	os.Remove(store + "-journal")
	r = e.owner(store, "get", "k")
	if r.code != 0 || r.out != "mine" {
		t.Errorf("the store was replaced: get k = %q (exit %d, %q)", r.out, r.code, r.err)
	}
	if r := e.owner(store, "hook", "list"); r.out != "" {
		t.Errorf("a planted hook is in the store:\n%s", r.out)
	}
	if _, err := os.Stat(filepath.Join(pub, "pwned")); err == nil {
		t.Error("the planted hook ran as the owner")
	}
}

// Hole 2: another user pre-creates STORE.d (mode 0777) beside a store in
// a /tmp-like folder, with a .bashrc in a hook's future HOME. Hooks must be
// refused there (exit 4): nothing the attacker planted runs as the owner.
// Then the owner tightens the folder; the attacker's state dir is still
// refused, by hook add and by the daemon.
func TestTrustPlantedStateDir(t *testing.T) {
	e := newTrustEnv(t)
	pub := e.mkdir(filepath.Join(e.base, "tmp"), 0o777|os.ModeSticky)
	store := filepath.Join(pub, "s.db")
	mustCode(t, "owner set", e.owner(store, "set", "x", "1"), 0)

	state := store + ".d"
	work := filepath.Join(state, "work", "1")
	if r := e.other(nil, "/bin/sh", "-c", `mkdir -p "$1" && chmod 0777 "$2" "$2/work" "$1"`, "sh", work, state); r.code != 0 {
		t.Fatal(r.err)
	}
	pwned := filepath.Join(pub, "pwned")
	e.plant(filepath.Join(work, ".bashrc"), []byte("touch "+pwned+"\n"))
	e.plant(filepath.Join(work, "usercustomize.py"), []byte("open('"+pwned+"', 'w')\n"))

	r := e.owner(store, "hook", "add", "--on", "set", "--", "/usr/bin/bash", "-i", "-c", "true")
	if r.code != 4 || strings.Count(r.err, "livedict: error: hooks are not run") != 1 {
		t.Errorf("hook add beside a sticky world-writable folder: exit %d, %q; want 4", r.code, r.err)
	}
	r = e.owner(store, "--wait-hooks", "set", "k", "v")
	if r.code != 0 {
		t.Errorf("data must still work: exit %d %q", r.code, r.err)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("a file planted in the state dir ran as the owner")
	}

	// The owner tightens the folder: the attacker's state dir stays.
	if err := os.Chmod(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	r = e.owner(store, "hook", "add", "--on", "set", "--", "/usr/bin/bash", "-i", "-c", "true")
	if r.code != 4 || !strings.Contains(r.err, state) {
		t.Errorf("hook add with another user's state dir: exit %d, %q; want 4 naming %s", r.code, r.err, state)
	}
	r = e.owner(store, "daemon", "--once")
	if r.code != 4 || !strings.Contains(r.err, state) {
		t.Errorf("daemon --once with another user's state dir: exit %d, %q; want 4 naming it", r.code, r.err)
	}
	e.owner(store, "--wait-hooks", "set", "k", "v2")
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("a file planted in the state dir ran as the owner")
	}
}

// Hole 2: the attacker replaces the daemon's lock file by a symlink to a
// root-owned file; daemon --once must not truncate or write it.
func TestTrustLockSymlink(t *testing.T) {
	e := newTrustEnv(t)
	pub := e.mkdir(filepath.Join(e.base, "tmp"), 0o777|os.ModeSticky)
	store := filepath.Join(pub, "s.db")
	mustCode(t, "owner set", e.owner(store, "set", "x", "1", "--ttl", "1s"), 0)
	victim := filepath.Join(e.base, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := store + ".d"
	if r := e.other(nil, "/bin/sh", "-c", `mkdir -m 0777 "$1" && ln -s "$2" "$1/daemon.lock" && ln -s "$2" "$1/deliver.lock"`, "sh", state, victim); r.code != 0 {
		t.Fatal(r.err)
	}
	r := e.owner(store, "daemon", "--once")
	if r.code != 4 || !strings.Contains(r.err, state) {
		t.Errorf("daemon --once: exit %d, %q; want 4 naming %s", r.code, r.err, state)
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious\n" {
		t.Fatalf("the daemon wrote through the planted symlink: %q", got)
	}
	// Even in a state dir of the owner's, a symlinked lock is refused.
	os.RemoveAll(state)
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Symlink(victim, filepath.Join(state, "daemon.lock"))
	r = e.owner(store, "daemon", "--once")
	if r.code != 4 {
		t.Errorf("daemon --once with a symlinked lock: exit %d, %q; want 4", r.code, r.err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious\n" {
		t.Fatalf("the daemon wrote through a symlinked lock: %q", got)
	}
}

// copyTree copies the attacker's files from their own file store into
// the owner's, as the attacker, keeping names.
func (e *trustEnv) plantTree(from, to string) int {
	e.t.Helper()
	n := 0
	filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		e.plant(filepath.Join(to, d.Name()), data)
		n++
		return nil
	})
	return n
}

// Hole 5: the owner loosened a bucket folder (and the hooks' folder in
// i/) of a file store; the attacker plants records of their own there.
// Reading them must be refused (exit 3, naming the record).
func TestTrustFileStorePlantedRecords(t *testing.T) {
	e := newTrustEnv(t)
	dir := filepath.Join(e.base, "fs")
	url := "file:" + dir
	mustCode(t, "owner set", e.owner(url, "set", "other", "1"), 0)
	mustCode(t, "owner hook add", e.owner(url, "hook", "add", "--on", "set", "--", "/bin/true"), 0)
	mustCode(t, "owner hook rm", e.owner(url, "hook", "rm", "1"), 0)

	evil := "file:" + filepath.Join(e.otherHome, "fs")
	mustCode(t, "other set", e.otherLivedict(evil, "set", "k", "theirs"), 0)
	mustCode(t, "other hook add", e.otherLivedict(evil, "hook", "add", "--on", "get", "--", "/bin/sh", "-c", "touch /tmp/livedict-pwned"), 0)

	for _, d := range []string{dir, filepath.Join(dir, "b"), filepath.Join(dir, "i")} {
		os.Chmod(d, 0o755)
	}
	bucket := filepath.Join(dir, "b", "main")
	hooksDir := filepath.Join(dir, "i", "%21hooks")
	os.Chmod(bucket, 0o777)
	os.Chmod(hooksDir, 0o777)
	if e.plantTree(filepath.Join(e.otherHome, "fs", "b", "main"), bucket) == 0 ||
		e.plantTree(filepath.Join(e.otherHome, "fs", "i", "%21hooks"), hooksDir) == 0 {
		t.Fatal("nothing to plant")
	}

	r := e.owner(url, "get", "k")
	if r.code != 3 || !strings.Contains(r.err, filepath.Join(bucket, "k")) {
		t.Errorf("get of a planted record: exit %d, out %q, err %q; want 3 naming the record", r.code, r.out, r.err)
	}
	r = e.owner(url, "hook", "list")
	if r.code != 3 || strings.Contains(r.out, "pwned") {
		t.Errorf("hook list with a planted definition: exit %d, out %q, err %q; want 3", r.code, r.out, r.err)
	}
}

// Hole 4: a store reached through a symlink into a folder whose parent
// every user can write (not sticky): hooks are refused, judged by the real
// file's folders, not the symlink's.
func TestTrustSymlinkedStore(t *testing.T) {
	e := newTrustEnv(t)
	open := e.mkdir(filepath.Join(e.base, "open"), 0o777)
	real := e.mkdir(filepath.Join(open, "mine"), 0o700)
	mustCode(t, "set", e.owner(filepath.Join(real, "s.db"), "set", "k", "v"), 0)
	link := filepath.Join(e.ownerHome, "s.db")
	if err := os.Symlink(filepath.Join(real, "s.db"), link); err != nil {
		t.Fatal(err)
	}
	r := e.owner(link, "hook", "add", "--on", "set", "--", "/bin/true")
	if r.code != 4 || !strings.Contains(r.err, open+" is writable by every user") {
		t.Errorf("hook add through a symlink: exit %d, %q; want 4 naming %s", r.code, r.err, open)
	}
	// The attacker can rename the owner's folder away and put theirs in
	// its place: the store then is theirs, and refused for data too.
	if r := e.other(nil, "/bin/sh", "-c", `mv "$1/mine" "$1/gone" && mkdir "$1/mine" && cp "$1/gone/s.db" "$1/mine/s.db" 2>/dev/null || echo > "$1/mine/s.db"`, "sh", open); r.code != 0 {
		t.Fatal(r.err)
	}
	if r := e.owner(link, "get", "k"); r.code != 3 {
		t.Errorf("get through a symlink to another user's file: exit %d, %q; want 3", r.code, r.err)
	}
}

// Hole 7: another user binds the daemon's socket name first. The daemon
// must still hear notifications: its socket is a file in the 0700 state
// dir, which nobody else can bind.
func TestTrustDaemonSocketSquat(t *testing.T) {
	e := newTrustEnv(t)
	dir := e.mkdir(filepath.Join(e.base, "private"), 0o755)
	store := filepath.Join(dir, "s.db")
	mustCode(t, "set", e.owner(store, "set", "x", "1"), 0)
	state := store + ".d"
	// The abstract name livedict used to bind, squatted first.
	sum := sha256.Sum256([]byte(state))
	squat := exec.Command(e.tool, "bind", "@livedict-"+hex.EncodeToString(sum[:12])+"-daemon")
	squat.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(e.uid), Gid: uint32(e.gid)}}
	var squatOut bytes.Buffer
	squat.Stdout = &squatOut
	if err := squat.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { squat.Process.Kill(); squat.Wait() }()
	for i := 0; i < 200 && !strings.Contains(squatOut.String(), "bound"); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	c := exec.Command(e.bin, "--store", store, "daemon", "--duration", "3s")
	c.Env = append(os.Environ(), "HOME="+e.ownerHome)
	var errb bytes.Buffer
	c.Stderr = &errb
	if err := c.Run(); err != nil {
		t.Fatalf("daemon: %v %s", err, errb.String())
	}
	if strings.Contains(errb.String(), "polling") || strings.Contains(errb.String(), "no change notifications") {
		t.Errorf("another user silenced the daemon:\n%s", errb.String())
	}
	// And the other user cannot reach the socket file at all.
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v", fi, err)
	}
}

// Hole 7: a store on a read-only filesystem says so, not "permission
// denied", for SQLite and file stores, and for a store to be created.
func TestTrustReadOnlyFS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a filesystem")
	}
	bin, _ := trustBins(t)
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	defer exec.Command("umount", "-l", mnt).Run()
	ld := func(args ...string) result {
		var out, errb bytes.Buffer
		c := exec.Command(bin, args...)
		c.Env = append(os.Environ(), "HOME="+t.TempDir())
		c.Stdout, c.Stderr = &out, &errb
		err := c.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return result{out.String(), errb.String(), code}
	}
	for _, url := range []string{filepath.Join(mnt, "s.db"), "file:" + filepath.Join(mnt, "fs")} {
		mustCode(t, "set", ld("--store", url, "set", "k", "v"), 0)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v %s", err, out)
	}
	for _, url := range []string{filepath.Join(mnt, "s.db"), "file:" + filepath.Join(mnt, "fs"), filepath.Join(mnt, "new.db")} {
		r := ld("--store", url, "set", "k", "v2")
		if r.code != 3 || !strings.Contains(r.err, "read-only file system") || strings.Contains(r.err, "permission denied") {
			t.Errorf("%s: set on a read-only filesystem: exit %d, %q; want 3 saying read-only file system", url, r.code, r.err)
		}
	}
	r := ld("--store", filepath.Join(mnt, "s.db"), "get", "k")
	if r.code != 0 || r.out != "v" {
		t.Errorf("get on a read-only filesystem: exit %d %q %q", r.code, r.out, r.err)
	}
}
