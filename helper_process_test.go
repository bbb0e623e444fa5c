package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livedict/livedict/pkg/sandbox"
)

// TestSandboxHelperTrust: livedict starts the livedict-sandbox found beside
// its executable only when nobody else could have put it there or changed
// it; otherwise it re-executes itself as the helper and the hook runs all
// the same. The planted helper here is a script that leaves a mark and
// runs nothing: it must run when trusted (so the look-up is what the other
// cases exercise) and never when group- or world-writable, in a folder
// others can write, or a symbolic link.
func TestSandboxHelperTrust(t *testing.T) {
	e := newProcEnv(t, "sqlite")
	src, _ := livedictPath()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(e.dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	ld := filepath.Join(bin, "livedict")
	if err := os.WriteFile(ld, b, 0o755); err != nil {
		t.Fatal(err)
	}
	mark := filepath.Join(e.dir, "planted-ran")
	planted := filepath.Join(bin, sandbox.HelperName)
	script := "#!/bin/sh\necho \"$@\" >> " + mark + "\nexit 3\n"
	out := filepath.Join(e.dir, "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string, int) {
		c := exec.Command(ld, append([]string{"--store", e.url}, args...)...)
		c.Env = e.env
		return runCmd(t, c)
	}
	id, errOut, code := run("hook", "add", "--on", "set", "--write", out, "--", "sh", "-c", "echo ran >> "+out+"/ran")
	if code != 0 {
		t.Fatalf("hook add: exit %d: %s", code, errOut)
	}
	id = strings.TrimSpace(id)

	plant := func(t *testing.T, mode, dirMode os.FileMode, link bool) {
		t.Helper()
		os.Remove(mark)
		os.Remove(filepath.Join(out, "ran"))
		os.Remove(planted)
		target := planted
		if link {
			target = filepath.Join(e.dir, "elsewhere")
			if err := os.Symlink(target, planted); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(target, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		// Chmod, not the umask, decides the modes.
		if err := os.Chmod(target, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(bin, dirMode); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(bin, 0o755) })
	}
	ranPlanted := func() bool {
		_, err := os.Stat(mark)
		return err == nil
	}

	t.Run("trusted", func(t *testing.T) {
		plant(t, 0o755, 0o755, false)
		_, _, code := run("hook", "test", id)
		if !ranPlanted() {
			t.Fatalf("the trusted helper beside livedict was not used (exit %d)", code)
		}
		if code == 0 {
			t.Fatalf("hook test exit 0 with a helper that runs nothing")
		}
	})
	for _, c := range []struct {
		name          string
		mode, dirMode os.FileMode
		link          bool
	}{
		{"group-writable", 0o775, 0o755, false},
		{"world-writable", 0o757, 0o755, false},
		{"folder-writable", 0o755, 0o777, false},
		{"sticky-folder", 0o755, 0o1777, false},
		{"symlink", 0o755, 0o755, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			plant(t, c.mode, c.dirMode, c.link)
			stdout, stderr, code := run("hook", "test", id)
			if ranPlanted() {
				t.Fatalf("livedict ran a helper others could have written")
			}
			if code != 0 {
				t.Fatalf("hook test: exit %d\n%s%s", code, stdout, stderr)
			}
			if got := readIfExists(t, filepath.Join(out, "ran")); string(got) != "ran\n" {
				t.Fatalf("the hook did not run through livedict itself: %q", got)
			}
		})
	}
}
