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
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests are attacks by a second local account (livedict-other) on a
// store owned by the user running livedict (root here), as issue 8 found
// them. They need root to create and become that account, and are skipped
// otherwise (procEnv.withOther). Each lays out the stores it attacks in
// e.shared, a folder both users reach, and runs the attacker's steps with
// e.asOther. Each must fail on a livedict without the trust rule.

// squatTool is the attacker's small tool, built once into sharedBinDir so
// the other user can run it.
var squatTool = sync.OnceValues(func() (string, error) {
	dir, err := sharedBinDir()
	if err != nil {
		return "", err
	}
	src, tool := filepath.Join(dir, "tool.go"), filepath.Join(dir, "tool")
	if err := os.WriteFile(src, []byte(trustToolSource), 0o644); err != nil {
		return "", err
	}
	c := exec.Command("go", "build", "-o", tool, src)
	c.Env = append(os.Environ(), "GO111MODULE=off")
	if out, err := c.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build tool: %v\n%s", err, out)
	}
	return tool, nil
})

// trustToolSource is the attacker's tool: bind an abstract Unix socket
// name and hold it, or flap a file in and out of place.
const trustToolSource = `package main

import (
	"net"
	"os"
	"syscall"
	"time"
)

func main() {
	switch os.Args[1] {
	case "flap":
		// Link the file at Args[2] to Args[3] and remove it again, in a
		// loop, for a minute: a file that is there for some looks and
		// not for others.
		os.Stdout.WriteString("flapping\n")
		for end := time.Now().Add(time.Minute); time.Now().Before(end); {
			syscall.Link(os.Args[2], os.Args[3])
			time.Sleep(100 * time.Microsecond)
			syscall.Unlink(os.Args[3])
			time.Sleep(100 * time.Microsecond)
		}
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

// mkdir makes dir with mode (umask aside).
func mkdir(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

// plant writes data to path as the other account (the file is theirs).
func (e *procEnv) plant(path string, data []byte) {
	e.tb.Helper()
	c := e.asOther("/bin/sh", "-c", `cat > "$1"`, "sh", path)
	c.Stdin = bytes.NewReader(data)
	mustRunCmd(e.tb, c)
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
	e := newProcEnv(t, "sqlite").withOther()
	pub := mkdir(t, filepath.Join(e.shared, "tmp"), 0o777|os.ModeSticky)
	store := filepath.Join(pub, "s.db")
	s := e.withStore(store)
	s.mustRun("set", "k", "mine")

	// The attacker's own database, with their key and a hook, made where
	// hooks are allowed for them.
	evil := filepath.Join(e.otherHome, "evil.db")
	mustRunCmd(t, e.asOther("livedict", "--store", evil, "set", "k", "theirs"))
	mustRunCmd(t, e.asOther("livedict", "--store", evil, "hook", "add", "--on", "get", "--", "/bin/sh", "-c", "touch "+filepath.Join(pub, "pwned")))
	db, err := os.ReadFile(evil)
	if err != nil {
		t.Fatal(err)
	}
	e.plant(store+"-journal", hotJournal(t, db))

	_, stderr, code := s.run("get", "k")
	if code != 3 || !strings.Contains(stderr, store+"-journal") || strings.Count(stderr, "livedict: error:") != 1 {
		t.Errorf("get with a planted journal: exit %d, stderr %q; want exit 3 naming the journal", code, stderr)
	}
	// Whatever the owner runs, the store keeps the owner's data.
	os.Remove(store + "-journal")
	out, stderr, code := s.run("get", "k")
	if code != 0 || out != "mine" {
		t.Errorf("the store was replaced: get k = %q (exit %d, %q)", out, code, stderr)
	}
	if out, _, _ := s.run("hook", "list"); out != "" {
		t.Errorf("a planted hook is in the store:\n%s", out)
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
	e := newProcEnv(t, "sqlite").withOther()
	pub := mkdir(t, filepath.Join(e.shared, "tmp"), 0o777|os.ModeSticky)
	store := filepath.Join(pub, "s.db")
	s := e.withStore(store)
	s.mustRun("set", "x", "1")

	state := store + ".d"
	work := filepath.Join(state, "work", "1")
	mustRunCmd(t, e.asOther("/bin/sh", "-c", `mkdir -p "$1" && chmod 0777 "$2" "$2/work" "$1"`, "sh", work, state))
	pwned := filepath.Join(pub, "pwned")
	e.plant(filepath.Join(work, ".bashrc"), []byte("touch "+pwned+"\n"))
	e.plant(filepath.Join(work, "usercustomize.py"), []byte("open('"+pwned+"', 'w')\n"))

	_, stderr, code := s.run("hook", "add", "--on", "set", "--", "/usr/bin/bash", "-i", "-c", "true")
	if code != 4 || strings.Count(stderr, "livedict: error: hooks are not run") != 1 {
		t.Errorf("hook add beside a sticky world-writable folder: exit %d, %q; want 4", code, stderr)
	}
	if _, stderr, code := s.run("--wait-hooks", "set", "k", "v"); code != 0 {
		t.Errorf("data must still work: exit %d %q", code, stderr)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("a file planted in the state dir ran as the owner")
	}

	// The owner tightens the folder: the attacker's state dir stays.
	if err := os.Chmod(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = s.run("hook", "add", "--on", "set", "--", "/usr/bin/bash", "-i", "-c", "true")
	if code != 4 || !strings.Contains(stderr, state) {
		t.Errorf("hook add with another user's state dir: exit %d, %q; want 4 naming %s", code, stderr, state)
	}
	_, stderr, code = s.run("daemon", "--once")
	if code != 4 || !strings.Contains(stderr, state) {
		t.Errorf("daemon --once with another user's state dir: exit %d, %q; want 4 naming it", code, stderr)
	}
	s.run("--wait-hooks", "set", "k", "v2")
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("a file planted in the state dir ran as the owner")
	}
}

// Hole 2: the attacker replaces the daemon's lock file by a symlink to a
// root-owned file; daemon --once must not truncate or write it.
func TestTrustLockSymlink(t *testing.T) {
	e := newProcEnv(t, "sqlite").withOther()
	pub := mkdir(t, filepath.Join(e.shared, "tmp"), 0o777|os.ModeSticky)
	store := filepath.Join(pub, "s.db")
	s := e.withStore(store)
	s.mustRun("set", "x", "1", "--ttl", "1s")
	victim := filepath.Join(e.shared, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := store + ".d"
	mustRunCmd(t, e.asOther("/bin/sh", "-c", `mkdir -m 0777 "$1" && ln -s "$2" "$1/daemon.lock" && ln -s "$2" "$1/deliver.lock"`, "sh", state, victim))
	_, stderr, code := s.run("daemon", "--once")
	if code != 4 || !strings.Contains(stderr, state) {
		t.Errorf("daemon --once: exit %d, %q; want 4 naming %s", code, stderr, state)
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
	_, stderr, code = s.run("daemon", "--once")
	if code != 4 {
		t.Errorf("daemon --once with a symlinked lock: exit %d, %q; want 4", code, stderr)
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious\n" {
		t.Fatalf("the daemon wrote through a symlinked lock: %q", got)
	}
}

// plantTree copies the attacker's files from their own file store into
// the owner's, as the attacker, keeping names.
func (e *procEnv) plantTree(from, to string) int {
	e.tb.Helper()
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
	e := newProcEnv(t, "sqlite").withOther()
	dir := filepath.Join(e.shared, "fs")
	s := e.withStore("file:" + dir)
	s.mustRun("set", "other", "1")
	s.mustRun("hook", "add", "--on", "set", "--", "/bin/true")
	s.mustRun("hook", "rm", "1")

	evil := "file:" + filepath.Join(e.otherHome, "fs")
	mustRunCmd(t, e.asOther("livedict", "--store", evil, "set", "k", "theirs"))
	mustRunCmd(t, e.asOther("livedict", "--store", evil, "hook", "add", "--on", "get", "--", "/bin/sh", "-c", "touch /tmp/livedict-pwned"))

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

	out, stderr, code := s.run("get", "k")
	if code != 3 || !strings.Contains(stderr, filepath.Join(bucket, "k")) {
		t.Errorf("get of a planted record: exit %d, out %q, err %q; want 3 naming the record", code, out, stderr)
	}
	out, stderr, code = s.run("hook", "list")
	if code != 3 || strings.Contains(out, "pwned") {
		t.Errorf("hook list with a planted definition: exit %d, out %q, err %q; want 3", code, out, stderr)
	}
}

// Hole 4: a store reached through a symlink into a folder whose parent
// every user can write (not sticky): hooks are refused, judged by the real
// file's folders, not the symlink's.
func TestTrustSymlinkedStore(t *testing.T) {
	e := newProcEnv(t, "sqlite").withOther()
	open := mkdir(t, filepath.Join(e.shared, "open"), 0o777)
	real := mkdir(t, filepath.Join(open, "mine"), 0o700)
	e.withStore(filepath.Join(real, "s.db")).mustRun("set", "k", "v")
	// The link lives in the owner's private folder.
	link := filepath.Join(e.dir, "link.db")
	if err := os.Symlink(filepath.Join(real, "s.db"), link); err != nil {
		t.Fatal(err)
	}
	l := e.withStore(link)
	_, stderr, code := l.run("hook", "add", "--on", "set", "--", "/bin/true")
	if code != 4 || !strings.Contains(stderr, open+" is writable by every user") {
		t.Errorf("hook add through a symlink: exit %d, %q; want 4 naming %s", code, stderr, open)
	}
	// The attacker can rename the owner's folder away and put theirs in
	// its place: the store then is theirs, and refused for data too.
	mustRunCmd(t, e.asOther("/bin/sh", "-c", `mv "$1/mine" "$1/gone" && mkdir "$1/mine" && cp "$1/gone/s.db" "$1/mine/s.db" 2>/dev/null || echo > "$1/mine/s.db"`, "sh", open))
	if _, stderr, code := l.run("get", "k"); code != 3 {
		t.Errorf("get through a symlink to another user's file: exit %d, %q; want 3", code, stderr)
	}
}

// Hole 7: another user binds the daemon's socket name first. The daemon
// must still hear notifications: its socket is a file in the 0700 state
// dir, which nobody else can bind.
func TestTrustDaemonSocketSquat(t *testing.T) {
	e := newProcEnv(t, "sqlite").withOther()
	tool, err := squatTool()
	if err != nil {
		t.Fatal(err)
	}
	dir := mkdir(t, filepath.Join(e.shared, "private"), 0o755)
	store := filepath.Join(dir, "s.db")
	s := e.withStore(store)
	s.mustRun("set", "x", "1")
	state := store + ".d"
	// The abstract name livedict used to bind, squatted first.
	sum := sha256.Sum256([]byte(state))
	squat := e.asOther(tool, "bind", "@livedict-"+hex.EncodeToString(sum[:12])+"-daemon")
	var squatOut syncBuffer
	squat.Stdout = &squatOut
	sq := e.startCmd(squat) // killed at cleanup
	poll(t, 10*time.Second, "the other user to bind the name", func() bool {
		return sq.running() && strings.Contains(squatOut.String(), "bound")
	})
	_, stderr, code := s.run("daemon", "--duration", "3s")
	if code != 0 {
		t.Fatalf("daemon: exit %d %s", code, stderr)
	}
	if strings.Contains(stderr, "polling") || strings.Contains(stderr, "no change notifications") {
		t.Errorf("another user silenced the daemon:\n%s", stderr)
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
	e := newProcEnv(t, "sqlite")
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	defer exec.Command("umount", "-l", mnt).Run()
	for _, url := range []string{filepath.Join(mnt, "s.db"), "file:" + filepath.Join(mnt, "fs")} {
		e.withStore(url).mustRun("set", "k", "v")
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v %s", err, out)
	}
	for _, url := range []string{filepath.Join(mnt, "s.db"), "file:" + filepath.Join(mnt, "fs"), filepath.Join(mnt, "new.db")} {
		_, stderr, code := e.withStore(url).run("set", "k", "v2")
		if code != 3 || !strings.Contains(stderr, "read-only file system") || strings.Contains(stderr, "permission denied") {
			t.Errorf("%s: set on a read-only filesystem: exit %d, %q; want 3 saying read-only file system", url, code, stderr)
		}
	}
	out, stderr, code := e.withStore(filepath.Join(mnt, "s.db")).run("get", "k")
	if code != 0 || out != "v" {
		t.Errorf("get on a read-only filesystem: exit %d %q %q", code, out, stderr)
	}
}

// A config file or a recipients_file another user wrote steers where the
// owner's values go: a store URL of theirs (their Redis server), a
// recipient of theirs that every rekeyed data key is then wrapped to.
// Planted by the other account in a shared /tmp-like folder and named with
// --config, the file is refused (exit 2, config; exit 3, recipients), and
// nothing is written anywhere but the owner's own store.
func TestTrustPlantedConfigFile(t *testing.T) {
	e := newProcEnv(t, "sqlite").withOther()
	pub := mkdir(t, filepath.Join(e.shared, "tmp"), 0o777|os.ModeSticky)
	theirs := filepath.Join(pub, "theirs.db")
	conf := filepath.Join(pub, "livedict.toml")
	e.plant(conf, []byte("store = \""+theirs+"\"\n"))
	_, stderr, code := e.run("--config", conf, "set", "k", "secret")
	if code != 2 || !strings.Contains(stderr, conf) || !strings.Contains(stderr, "owned by uid") {
		t.Errorf("set with another user's config: exit %d, stderr %q; want exit 2 naming the file and its owner", code, stderr)
	}
	if _, err := os.Stat(theirs); err == nil {
		t.Error("the value went to the store their config named")
	}

	recs := filepath.Join(pub, "recipients.txt")
	e.plant(recs, []byte("age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq\n"))
	e.setenv("LIVEDICT_RECIPIENTS_FILE=" + recs)
	_, stderr, code = e.run("bucket", "policy", "sec", "--encrypt")
	if code != 3 || !strings.Contains(stderr, recs) {
		t.Errorf("encrypt with another user's recipients_file: exit %d, stderr %q; want exit 3 naming it", code, stderr)
	}
}

// A store path in a sticky world-writable folder (a script's
// --store /tmp/job.db) that another user made first as a symlink to one
// of the owner's own stores: following it, the script's writes (a del, a
// bucket drop at cleanup) land in the owner's private store, and checking
// only the real file finds nothing wrong, since that file is the owner's.
// The kernel's protected_symlinks refuses to follow such a link for the
// owner; livedict resolves symlinks itself, so it must refuse one owned by
// anyone but the owner or root (exit 3, naming it), whether it is the
// store's name or a folder on the way, and leave the private store alone.
func TestTrustPlantedStoreSymlink(t *testing.T) {
	e := newProcEnv(t, "sqlite").withOther()
	pub := mkdir(t, filepath.Join(e.shared, "tmp"), 0o777|os.ModeSticky)
	private := mkdir(t, filepath.Join(e.shared, "private"), 0o700)
	for _, c := range []struct{ scheme, name string }{
		{"sqlite:", "main.db"},
		{"file:", "fs"},
	} {
		mine := filepath.Join(private, c.name)
		e.withStore(c.scheme+mine).mustRun("set", "precious", "1")
		link := filepath.Join(pub, "job-"+c.name)
		dirLink := filepath.Join(pub, "work-"+c.name)
		mustRunCmd(t, e.asOther("/bin/sh", "-c", `ln -s "$1" "$2" && ln -s "$3" "$4"`, "sh", mine, link, private, dirLink))
		for _, target := range []struct{ url, names string }{
			{c.scheme + link, link},
			{c.scheme + filepath.Join(dirLink, c.name), dirLink},
		} {
			s := e.withStore(target.url)
			for _, args := range [][]string{{"set", "job", "x"}, {"del", "precious"}, {"get", "precious"}} {
				out, stderr, code := s.run(args...)
				if code != 3 || !strings.Contains(stderr, target.names) || !strings.Contains(stderr, "owned by uid") {
					t.Errorf("%s %v through another user's symlink: exit %d, out %q, stderr %q; want exit 3 naming %s", target.url, args, code, out, stderr, target.names)
				}
			}
		}
		out, _, _ := e.withStore(c.scheme + mine).run("keys")
		if out != "precious\n" {
			t.Errorf("%s: the owner's private store was changed through a planted symlink: keys %q", mine, out)
		}
	}
	// The owner's own symlink (and root's: the owner is root here) still works.
	own := filepath.Join(e.dir, "own.db")
	if err := os.Symlink(filepath.Join(private, "main.db"), own); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := e.withStore(own).run("get", "precious"); code != 0 || out != "1" {
		t.Errorf("get through the owner's own symlink: exit %d %q %q", code, out, stderr)
	}
}

// Hole 1 again, as a race: livedict checks STORE-journal by name before a
// transaction and SQLite opens it by name a moment later. Another user who
// links a hot journal of theirs in and out of place in a loop, beside a
// store in a sticky /tmp-like folder, had it rolled back into the store
// within a few dozen of the owner's commands (14 gets, the first time it
// was tried). Every get must print the owner's value or refuse (exit 3).
func TestTrustHotJournalRace(t *testing.T) {
	e := newProcEnv(t, "sqlite").withOther()
	tool, err := squatTool()
	if err != nil {
		t.Fatal(err)
	}
	pub := mkdir(t, filepath.Join(e.shared, "tmp"), 0o777|os.ModeSticky)
	store := filepath.Join(pub, "s.db")
	s := e.withStore(store)
	s.mustRun("set", "k", "mine")

	evil := filepath.Join(e.otherHome, "evil.db")
	mustRunCmd(t, e.asOther("livedict", "--store", evil, "set", "k", "theirs"))
	db, err := os.ReadFile(evil)
	if err != nil {
		t.Fatal(err)
	}
	// Mode 0666, so that an owner who is not root could open it
	// read-write, as a rollback needs.
	journal := filepath.Join(e.otherHome, "j")
	e.plant(journal, hotJournal(t, db))
	mustRunCmd(t, e.asOther("chmod", "0666", journal))
	flap := e.asOther(tool, "flap", journal, store+"-journal")
	var flapOut syncBuffer
	flap.Stdout = &flapOut
	f := e.startCmd(flap)
	poll(t, 10*time.Second, "the other user to start", func() bool {
		return f.running() && strings.Contains(flapOut.String(), "flapping")
	})
	refused := 0
	for i := 0; i < 150; i++ {
		out, stderr, code := s.run("get", "k")
		switch {
		case code == 0 && out == "mine":
		case code == 3 && strings.Contains(stderr, store+"-journal"):
			refused++
		default:
			t.Fatalf("get %d while another user flaps a hot journal: exit %d, out %q, stderr %q", i, code, out, stderr)
		}
	}
	t.Logf("%d of 150 gets refused the journal", refused)
}

// Another user makes STORE.d first beside a store in a sticky /tmp-like
// folder. Hooks are refused there, but data keeps working, and a lock is
// data: a contended 'lock --wait' queued on a file in that folder and was
// refused with exit 4 and the hooks' message. It must wait without the
// queue and get the lock once the holder is done.
func TestTrustPlantedStateDirLockWait(t *testing.T) {
	e := newProcEnv(t, "sqlite").withOther()
	pub := mkdir(t, filepath.Join(e.shared, "tmp"), 0o777|os.ModeSticky)
	store := filepath.Join(pub, "s.db")
	s := e.withStore(store)
	s.mustRun("set", "x", "1")
	mustRunCmd(t, e.asOther("/bin/sh", "-c", `mkdir -m 0777 "$1"`, "sh", store+".d"))
	h, err := s.command("lock", "--acquire", "--ttl", "1m", "L").Output()
	if err != nil {
		t.Fatal(err)
	}
	holder := strings.TrimSpace(string(h))
	w := s.command("lock", "--wait", "60s", "L", "--", "echo", "got")
	var out syncBuffer
	w.Stdout = &out
	p := e.startCmd(w)
	time.Sleep(300 * time.Millisecond) // let it find the lock held and wait
	s.mustRun("lock", "L", "--release", holder)
	if code := p.wait(30 * time.Second); code != 0 || out.String() != "got\n" {
		t.Errorf("lock --wait beside another user's state folder: exit %d, out %q", code, out.String())
	}
}

// A hook command that another user can change runs their code as the
// owner at every event: a script of theirs, or one every user can write,
// was accepted by hook add and run by the deliverer. hook add refuses it
// (exit 4, naming it), and so does delivery when the file became so after
// the hook was added (the run fails, naming it; the attacker's code never
// runs).
func TestTrustHookCommandOthersCanWrite(t *testing.T) {
	e := newProcEnv(t, "sqlite").withOther()
	pub := mkdir(t, filepath.Join(e.shared, "tmp"), 0o777|os.ModeSticky)
	theirs := filepath.Join(pub, "theirs.sh")
	e.plant(theirs, []byte("#!/bin/sh\necho pwned\n"))
	mustRunCmd(t, e.asOther("chmod", "0755", theirs))
	_, stderr, code := e.run("hook", "add", "--on", "set", "--", theirs)
	if code != 4 || !strings.Contains(stderr, theirs) {
		t.Errorf("hook add of another user's script: exit %d, %q; want 4 naming it", code, stderr)
	}
	// The owner's own script, which the owner then leaves open to everyone.
	mine := filepath.Join(mkdir(t, filepath.Join(e.shared, "bin"), 0o755), "mine.sh")
	if err := os.WriteFile(mine, []byte("#!/bin/sh\ntrue\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.mustRun("hook", "add", "--on", "set", "--", mine)
	if err := os.Chmod(mine, 0o777); err != nil {
		t.Fatal(err)
	}
	mustRunCmd(t, e.asOther("/bin/sh", "-c", `printf '#!/bin/sh\necho pwned\n' > "$1"`, "sh", mine))
	e.mustRun("--wait-hooks", "set", "k", "v")
	out, _, _ := e.run("hook", "log")
	if strings.Contains(out, "pwned") || !strings.Contains(out, mine) {
		t.Errorf("a hook command another user changed ran as the owner, or its refusal does not name it:\n%s", out)
	}
}
