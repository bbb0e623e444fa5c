package main

import (
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/livedict/livedict/pkg/store/redistest"
)

// TestRootKeepsOutOfAnotherUsersHome: `sudo livedict set k v` where sudo
// keeps the caller's HOME (older sudo, sudo -E, macOS, su -m) runs as root
// with HOME naming another user's home. livedict made
// ~/.local/share/livedict (and ~/.local itself when missing) there, owned by
// root and 0700, so that user's own livedict, and every other program using
// ~/.local, could no longer use it. Root's default store, config and keys
// are root's own, from the user database, as `sudo -H` gives.
func TestRootKeepsOutOfAnotherUsersHome(t *testing.T) {
	e := newProcEnv(t, "sqlite").withOther()
	u, err := user.Current()
	if err != nil || !filepath.IsAbs(u.HomeDir) {
		t.Skip("no home directory for root in the user database")
	}
	p, _ := livedictPath()
	var env []string
	for _, kv := range e.env {
		if !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_") {
			env = append(env, kv)
		}
	}
	c := e.command("config")
	c.Args = []string{p, "config"} // the default store, not e's
	c.Env = append(env, "HOME="+e.otherHome)
	c.Dir = e.otherHome
	out, stderr, code := runCmd(t, c)
	if code != 0 {
		t.Fatalf("config: exit %d: %s", code, stderr)
	}
	if strings.Contains(out, e.otherHome) {
		t.Errorf("root's paths are in the other user's home:\n%s", out)
	}
	want := `store = "sqlite:` + filepath.Join(u.HomeDir, ".local", "share", "livedict", "livedict.db") + `"`
	if !strings.Contains(out, want) {
		t.Errorf("config shows no %s:\n%s", want, out)
	}
	// A store named explicitly is used where it is named.
	s := filepath.Join(e.otherHome, "explicit.db")
	c = e.command("set", "k", "v")
	c.Args = []string{p, "--store", s, "set", "k", "v"}
	c.Env = append(env, "HOME="+e.otherHome)
	if _, stderr, code := runCmd(t, c); code != 0 {
		t.Fatalf("set --store: exit %d: %s", code, stderr)
	}
	entries, _ := os.ReadDir(e.otherHome)
	for _, d := range entries {
		if d.Name() != "explicit.db" && d.Name() != "explicit.db.d" {
			t.Errorf("root wrote %s in the other user's home", d.Name())
		}
	}
}

// TestRedisStateWithoutHomeIsPerUser: a uid with no HOME and no entry in
// the user database (`env -i` in a container run with --user 12345) keeps a
// Redis store's local state (locks, hooks' work dirs) in a folder of its
// own in the temp folder. It was $TMPDIR/.local/state, one folder for every
// such user: the first to make it (0700) locked all the others out.
func TestRedisStateWithoutHomeIsPerUser(t *testing.T) {
	e := newProcEnv(t, "sqlite").withOther()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	redistest.StartServer(t, "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--port", port)
	url := "redis://127.0.0.1:" + port + "/?prefix=nohome"
	tmp := filepath.Join(e.shared, "tmp")
	if err := os.Mkdir(tmp, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o777|os.ModeSticky); err != nil { // past the umask
		t.Fatal(err)
	}
	bin, _ := sharedBinDir()
	as := func(uid int) {
		t.Helper()
		c := exec.Command(filepath.Join(bin, "livedict"), "--store", url, "daemon", "--once")
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
		keys := filepath.Join(e.shared, "keys-"+strconv.Itoa(uid))
		if err := os.Mkdir(keys, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(keys, uid, uid); err != nil {
			t.Fatal(err)
		}
		c.Env = []string{"PATH=/usr/bin:/bin", "TMPDIR=" + tmp, "LIVEDICT_HOOK_KEY_FILE=" + filepath.Join(keys, "hook.key")}
		c.Dir = tmp
		if _, stderr, code := runCmd(t, c); code != 0 {
			t.Fatalf("uid %d: daemon --once: exit %d: %s", uid, code, stderr)
		}
	}
	owns := func(uid int) {
		t.Helper()
		fi, err := os.Stat(filepath.Join(tmp, "livedict-"+strconv.Itoa(uid)))
		if err != nil || fi.Sys().(*syscall.Stat_t).Uid != uint32(uid) || fi.Mode().Perm() != 0o700 {
			t.Fatalf("uid %d: no private state folder of its own in %s: %v", uid, tmp, err)
		}
	}
	for _, uid := range []int{47301, 47302} { // no entries in the user database
		if _, err := user.LookupId(strconv.Itoa(uid)); err == nil {
			t.Skipf("uid %d has an entry in the user database", uid)
		}
	}
	as(47301)
	as(47302) // locked out by the first when both used $TMPDIR/.local
	owns(47301)
	owns(47302)
	if _, err := os.Lstat(filepath.Join(tmp, ".local")); err == nil {
		t.Errorf("a state folder shared by every user without a home was made: %s", filepath.Join(tmp, ".local"))
	}
}

// TestDeletedWorkingDirectory: a command started in a folder that was then
// removed (a script's temp dir, `rm -rf` of the checkout a shell sits in)
// cannot resolve a relative path or the cwd. `run --cwd` failed with an
// error of no kind and the "please report it as a bug" hint; a relative
// --store did not say which store it could not open.
func TestDeletedWorkingDirectory(t *testing.T) {
	e := newProcEnv(t, "sqlite")
	p, _ := livedictPath()
	inGone := func(args ...string) (string, int) {
		t.Helper()
		c := exec.Command("sh", append([]string{"-c", `mkdir gone && cd gone && rmdir ../gone && exec "$@"`, "sh", p}, args...)...)
		c.Env = e.env
		c.Dir = t.TempDir()
		_, stderr, code := runCmd(t, c)
		if strings.Contains(stderr, "report it as a bug") || strings.Count(stderr, "livedict: error:") != 1 {
			t.Errorf("%v: %s", args, stderr)
		}
		return stderr, code
	}
	if stderr, code := inGone("--store", e.url, "run", "--cwd", "--ttl", "1m", "--", "true"); code != 2 || !strings.Contains(stderr, "--cwd") {
		t.Errorf("run --cwd: exit %d, want 2 naming --cwd: %s", code, stderr)
	}
	if stderr, code := inGone("--store", "rel.db", "get", "k"); code != 3 || !strings.Contains(stderr, "rel.db") {
		t.Errorf("--store rel.db: exit %d, want 3 naming rel.db: %s", code, stderr)
	}
}

// TestDefaultStoreUnwritableHomeSaysWhatToSet: in a container run as a uid
// whose HOME is / (or any folder it cannot write), the default store cannot
// be made. The hint said to check the store's permissions, a store the user
// never named; it names what to set.
func TestDefaultStoreUnwritableHomeSaysWhatToSet(t *testing.T) {
	e := newProcEnv(t, "sqlite").withOther()
	c := e.asOther("livedict", "set", "k", "v")
	c.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
	_, stderr, code := runCmd(t, c)
	if code != 3 || !strings.Contains(stderr, "XDG_DATA_HOME") || !strings.Contains(stderr, "--store") {
		t.Fatalf("exit %d, want 3 and a hint naming XDG_DATA_HOME and --store:\n%s", code, stderr)
	}
}
