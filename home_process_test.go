package main

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
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
