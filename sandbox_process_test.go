package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests run real livedict processes as a shell script would, with
// the descriptors a shell hands them, against issue 8 (hole 3).

// shellRun runs script with sh in e's environment, livedict as $LIVEDICT
// and the store as $STORE, and returns its combined output and how long it
// took.
func (e *procEnv) shellRun(script string) (string, time.Duration) {
	e.tb.Helper()
	p, _ := livedictPath()
	c := exec.Command("sh", "-c", script)
	c.Env = append(e.env, "LIVEDICT="+p, "STORE="+e.url)
	start := time.Now()
	out, err := c.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		e.tb.Fatalf("sh -c %q: %v\n%s", script, err, out)
	}
	return string(out), took
}

// TestDetachedDelivererLeavesCallersPipe: a script pipes livedict's output
// into another command, with a second descriptor on the same pipe (fd 9,
// as `exec 9>&1` or any wrapper leaves it). The pipeline must end when
// `set` does, not when the detached deliverer that `set` started is done
// with a slow hook: the deliverer must hold none of the caller's
// descriptors.
func TestDetachedDelivererLeavesCallersPipe(t *testing.T) {
	const hookSleep = 8 * time.Second
	e := newProcEnv(t, "sqlite")
	e.mustRun("hook", "add", "--on", "set", "--timeout", "20s", "--",
		"/bin/sh", "-c", `touch "$HOME/started"; exec sleep `+strings.TrimSuffix(hookSleep.String(), "s"))
	out, took := e.shellRun(`( exec 9>&1; "$LIVEDICT" --store "$STORE" set k v ) | cat`)
	if out != "" {
		t.Errorf("output %q", out)
	}
	// Generous: a loaded machine takes well under a second for one set.
	if took >= hookSleep/2 {
		t.Errorf("the pipeline took %v: it waited for the hook (%v) the deliverer ran", took, hookSleep)
	}
	// The hook did run, in the deliverer: the bound above meant something.
	deadline := time.Now().Add(15 * time.Second)
	for {
		started, _ := filepath.Glob(filepath.Join(e.stateDir(), "work", "*", "started"))
		if len(started) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hook never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stealPy is a hostile hook: it looks for a descriptor that leads to the
// file named in argv[1] among its own, its parent's (pidfd_getfd) and its
// ancestors' (/proc/PID/fd), and writes through any it gets.
const stealPy = `import ctypes, os, sys
target = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
def write(how, fd):
    try:
        if os.readlink("/proc/self/fd/%d" % fd) == target:
            os.write(fd, b"stolen via " + how.encode() + b"\n")
            print("WROTE via", how)
    except OSError:
        pass
for fd in range(3, 64):
    write("inherited fd %d" % fd, fd)
try:
    pidfd = os.pidfd_open(os.getppid())
    for fd in range(64):
        got = libc.syscall(438, pidfd, fd, 0)  # pidfd_getfd
        if got >= 0:
            write("pidfd_getfd %d" % fd, got)
            os.close(got)
except OSError as e:
    print("pidfd_open:", e)
# In a PID namespace os.getpid() is the namespace's number, which the
# host's /proc may not have: then there is no ancestor to walk.
pid = os.getpid()
for _ in range(5):
    try:
        stat = open("/proc/%d/stat" % pid).read()
    except OSError:
        break
    pid = int(stat[stat.rindex(")") + 2:].split()[1])
    if pid <= 1:
        break
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        continue
    for n in names:
        p = "/proc/%d/fd/%s" % (pid, n)
        try:
            if os.readlink(p) == target:
                fd = os.open(p, os.O_WRONLY | os.O_APPEND)
                write("reopen " + p, fd)
                os.close(fd)
        except OSError:
            pass
print("DONE")
`

// TestHookCannotWriteThroughCallersFile: the command that causes an event
// runs with a file open on fd 9 (`9>>file`), a file outside everything the
// hook may write. A real hook (python3) tries to write to it through an
// inherited descriptor, pidfd_getfd on its parent and /proc/PID/fd.
func TestHookCannotWriteThroughCallersFile(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("skipped: the attacking hook needs /usr/bin/python3")
	}
	e := newProcEnv(t, "sqlite")
	dir := e.dir
	steal := filepath.Join(dir, "steal.py")
	target := filepath.Join(dir, "callers-file")
	if err := os.WriteFile(steal, []byte(stealPy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.mustRun("hook", "add", "--on", "set", "--", "/usr/bin/python3", steal, target)
	e.shellRun(`"$LIVEDICT" --store "$STORE" --wait-hooks set k v 9>>` + target)
	log := e.mustRun("hook", "log")
	if !strings.Contains(log, "DONE") {
		t.Fatalf("the hook did not run to its end:\n%s", log)
	}
	if strings.Contains(log, "WROTE") {
		t.Errorf("the hook wrote through the caller's descriptor:\n%s", log)
	}
	if b, _ := os.ReadFile(target); len(b) > 0 {
		t.Errorf("the caller's file was written: %q", b)
	}
}
