package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests check what a shell user sees of real livedict processes:
// signals, pipes and CPU use, which testscript's exec cannot show.

// TestDaemonFarDeadlineSleeps: a deadline three centuries out (an old
// import allowed it) must put the daemon to sleep. A time.Duration of
// nanoseconds overflows past 292 years; the daemon's wait went negative
// and it spun at 100% CPU.
func TestDaemonFarDeadlineSleeps(t *testing.T) {
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Skip("needs the sqlite3 command to plant a deadline import now refuses")
	}
	e := newProcEnv(t, "sqlite")
	e.mustRun("set", "far", "v")
	far := time.Now().AddDate(300, 0, 0).UnixMilli()
	if out, err := exec.Command("sqlite3", e.path, fmt.Sprintf("UPDATE entries SET expires_at = %d", far)).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	c := e.command("daemon", "--duration", "2s")
	_, errs, code := runCmd(t, c)
	if code != 0 {
		t.Fatalf("daemon: exit %d: %s", code, errs)
	}
	ru := c.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	// Sleeping, it wakes once a second (the safety poll); spinning, it
	// burns the whole two seconds on a core.
	if cpu > 700*time.Millisecond {
		t.Errorf("daemon used %v of CPU in a 2s run with one deadline 300 years out: it spins", cpu)
	}
}

// TestImportEarlySIGTERM: SIGTERM while import still reads its input exits
// 130, as during its transaction, and imports nothing. The handler used to
// be installed only when the transaction began, so the default action
// killed the process (143 in a shell) during the read.
func TestImportEarlySIGTERM(t *testing.T) {
	e := newProcEnv(t, "sqlite")
	e.mustRun("set", "keep", "v")
	c := e.command("import")
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	// Writing well past a pipe's 64 KiB buffer returns only once import
	// has read the rest: it is then reading, the stage the signal must hit.
	var lines strings.Builder
	for i := 0; lines.Len() < 1<<20; i++ {
		fmt.Fprintf(&lines, "{\"key\":\"k%d\",\"value\":\"v\"}\n", i)
	}
	if _, err := io.WriteString(stdin, lines.String()); err != nil {
		t.Fatalf("feeding import: %v", err)
	}
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = c.Wait()
	stdin.Close()
	ws := c.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() || ws.ExitStatus() != 130 {
		t.Fatalf("import after SIGTERM: %v (signaled %v), want exit 130\nstderr: %s", err, ws.Signaled(), errb.String())
	}
	if out.Len() != 0 || errb.Len() != 0 {
		t.Errorf("import printed stdout %q stderr %q; want nothing", out.String(), errb.String())
	}
	if keys, _, _ := e.run("keys"); keys != "keep\n" {
		t.Errorf("keys after an interrupted import = %q, want only keep", keys)
	}
}

// TestFewDescriptorsNoRuntimeCrash: with a small ulimit -n, a command
// that runs out of descriptors fails with one line (or warns), never with
// the Go runtime's "fatal error: runtime: eventfd failed" and its stack
// trace (exit 2, a usage error): the runtime makes its poller's
// descriptors on first use, which used to come after the store had
// taken the last ones (watch, wait, lock, a set that starts hook
// delivery).
func TestFewDescriptorsNoRuntimeCrash(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit is not installed")
	}
	e := newProcEnv(t, "sqlite")
	e.mustRun("set", "k", "v")
	e.mustRun("hook", "add", "--on", "set", "--", "true")
	// From 10 up: the runtime holds 3 and 4 (its cgroup files), and the
	// poller needs two more, made with a pipe's two, before livedict
	// copies stdout and stderr; below that no poller can be made.
	for n := 10; n <= 16; n++ {
		for _, args := range [][]string{
			{"watch", "--events", "set"},
			{"wait", "nothing", "--timeout", "100ms"},
			{"lock", "L", "--", "true"},
			{"set", "k", "v2"},
		} {
			c := e.commandVia([]string{"prlimit", fmt.Sprintf("--nofile=%d", n), "--"}, args...)
			if args[0] == "watch" {
				c = exec.Command("timeout", append([]string{"0.5"}, c.Args...)...)
				c.Env = e.env
			}
			_, stderr, code := runCmd(t, c)
			if code == 2 || strings.Contains(stderr, "fatal error") || strings.Contains(stderr, "goroutine ") {
				t.Errorf("ulimit -n %d, %s: exit %d\n%s", n, strings.Join(args, " "), code, firstLines(stderr, 3))
			}
		}
	}
	e.stopDispatcher()
}

// firstLines is s cut after n lines.
func firstLines(s string, n int) string {
	lines := strings.SplitAfterN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "")
}

// TestRunHugeOutputMemoryBounded: `run` of a command whose output is far
// over max_value_bytes cannot cache it, and must not hold it all in memory
// to print it: it held 1 GB of `head -c 1G /dev/zero` (2 GB resident),
// however small the limit. The output is still printed whole, stdout
// before stderr as a replay, with the one warning.
func TestRunHugeOutputMemoryBounded(t *testing.T) {
	e := newProcEnv(t, "sqlite")
	e.setenv("LIVEDICT_MAX_VALUE_BYTES=1048576")
	const size = 300 << 20
	c := e.command("run", "--key", "huge", "--", "sh", "-c", fmt.Sprintf("head -c %d /dev/zero; echo err >&2", size))
	var errb bytes.Buffer
	c.Stderr = &errb
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, out)
	if err := c.Wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, errb.String())
	}
	if n != size {
		t.Errorf("printed %d bytes of stdout, want %d", n, size)
	}
	if !strings.HasSuffix(errb.String(), "err\n") || !strings.Contains(errb.String(), "not cached: value too large: its output is 314572804 bytes") {
		t.Errorf("stderr: %q", errb.String())
	}
	ru := c.ProcessState.SysUsage().(*syscall.Rusage)
	if rss := ru.Maxrss << 10; rss > 120<<20 {
		t.Errorf("run held %d MB resident for %d MB of output over a 1 MB limit", rss>>20, size>>20)
	}
	if _, _, code := e.run("exists", "-b", "run", "huge"); code != 1 {
		t.Errorf("exists huge: exit %d, want 1 (not cached)", code)
	}
}

// TestImportKeepsSIGINTIgnored: an import started with SIGINT ignored (a
// background job of a script, whose ^C is meant for the foreground) goes
// on through a SIGINT, as README says any livedict does. Catching SIGINT
// undid the ignore: the import rolled back and exited 130.
func TestImportKeepsSIGINTIgnored(t *testing.T) {
	e := newProcEnv(t, "sqlite")
	c := e.commandVia([]string{"sh", "-c", `trap "" INT; exec "$@"`, "sh"}, "import")
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := e.startCmd(c)
	// Past a pipe's 64 KiB buffer: the write returns once import reads.
	var lines strings.Builder
	for i := 0; lines.Len() < 1<<20; i++ {
		fmt.Fprintf(&lines, "{\"key\":\"k%d\",\"value\":\"v\"}\n", i)
	}
	if _, err := io.WriteString(stdin, lines.String()); err != nil {
		t.Fatalf("feeding import: %v", err)
	}
	p.signal(syscall.SIGINT)
	time.Sleep(300 * time.Millisecond) // time for the signal to end it, if it would
	if p.exited() {
		t.Fatalf("import started with SIGINT ignored exited %d on SIGINT; want it to go on\nstderr: %s", p.code, p.stderr.String())
	}
	io.WriteString(stdin, "{\"key\":\"last\",\"value\":\"v\"}\n")
	stdin.Close()
	if code := p.wait(60 * time.Second); code != 0 {
		t.Fatalf("import exited %d, want 0\nstderr: %s", code, p.stderr.String())
	}
	if out, _, code := e.run("get", "last"); code != 0 || out != "v" {
		t.Errorf("get last after the import = %q, exit %d; want v", out, code)
	}
}

// TestImportSecondSIGINT: a ^C that comes once a file store's import has
// passed its commit point (the journal is in place; applying it writes a
// file per key) cannot roll it back, but a second ^C must end it at once,
// as it ends any command; the next command replays the journal, so the
// import is whole. Both used to be swallowed: it ran to its end. One
// that comes at once after the first is that same stop, sent twice.
func TestImportSecondSIGINT(t *testing.T) {
	e := newProcEnv(t, "file")
	const n = 30000
	var lines strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&lines, "{\"key\":\"k%d\",\"value\":\"%0100d\"}\n", i, i)
	}
	c := e.command("import")
	c.Stdin = strings.NewReader(lines.String())
	p := e.startCmd(c)
	journal := filepath.Join(e.path, ".journal")
	pollEvery(t, time.Millisecond, 60*time.Second, "the import's journal", func() bool {
		if p.exited() {
			t.Skipf("import of %d keys ended (%d) before its journal was seen: too fast here", n, p.code)
		}
		_, err := os.Stat(journal)
		return err == nil
	})
	p.signal(syscall.SIGINT)
	// One more at once is the same stop delivered twice (timeout(1)
	// signals its child, then its process group): not a second ^C.
	time.Sleep(100 * time.Millisecond)
	p.signal(syscall.SIGINT)
	time.Sleep(1500 * time.Millisecond)
	if p.exited() {
		t.Skipf("import of %d keys ended (%d) before the second SIGINT: too fast here", n, p.code)
	}
	p.signal(syscall.SIGINT)
	if code := p.wait(5 * time.Second); code != 130 {
		t.Fatalf("import after a second SIGINT exited %d, want 130\nstderr: %s", code, p.stderr.String())
	}
	out, _, code := e.run("stats")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("keys\t%d\n", n)) {
		t.Errorf("stats after the import's journal replayed (exit %d):\n%s", code, out)
	}
	for _, name := range []string{".journal", ".journal.tmp"} {
		if _, err := os.Stat(filepath.Join(e.path, name)); err == nil {
			t.Errorf("%s left after the next command replayed it", name)
		}
	}
}
