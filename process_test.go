package main

import (
	"bytes"
	"encoding/json"
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

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
)

// The real-process harness: every test (and benchmark) that runs real
// livedict processes outside a testscript script uses it. Modelled on
// restic's withTestEnvironment, one value holds everything a test needs:
//
//	e := newProcEnv(t, "sqlite")          // or forEachBackend(t, func(t *testing.T, e *procEnv) {...})
//	e.mustRun("hook", "add", "--on", "set", "--", "true")
//	out, stderr, code := e.run("get", "k") // livedict --store URL get k
//	d := e.startDaemon()                   // returns once it holds its locks and listens
//	poll(t, 3*time.Second, "the event", func() bool { return d.running() && e.status()["events_pending"] == "0" })
//
// What newProcEnv gives:
//   - a store (SQLite file or file-store folder) in a private 0700 folder,
//     e.dir, because hooks refuse stores others can write; the store
//     exists before the test starts;
//   - an environment of its own (e.env): the caller's, without any
//     LIVEDICT_*, XDG_* or HOME, then HOME and XDG dirs inside e.dir and
//     LIVEDICT_BUSY_TIMEOUT=60s (these tests check correctness; a loaded
//     machine may make a waiter wait long). e.setenv adds to it;
//   - the livedict it runs is this test binary: TestMain hands it to
//     testscript.Main, which puts a copy named livedict first on PATH, and
//     the copy runs cmd.App as main does. Nothing else is built;
//   - at cleanup, every process started with e.start is killed if still
//     running (its stderr is logged when the test failed), and a detached
//     dispatcher still delivering is given 10 s, then killed with its hooks.
//
// Lock, socket and state-folder names come from pkg/hooks (hooks.StateDir,
// hooks.DeliverLock, hooks.DaemonLock, hooks.SocketPath): e.stateDir,
// e.holder and e.listening. Waiting is done with poll and a deadline,
// never a fixed sleep; a background process's running() inside the
// condition fails the test at once, with its log, when it died. A command
// run to the end (e.run, runCmd) gets runLimit, a background one
// p.wait(timeout): a hung livedict fails its test, naming it, rather than
// the whole suite at -timeout. parallel runs n copies of a step at once.
//
// Other stores in the same environment (one an attack lays out itself,
// say): e.withStore(url) is e on that store. Attacks by another local
// user (issue 8) start with e.withOther(), which skips the test unless it
// runs as root, creates the account livedict-other when missing, and
// gives e.shared (a folder both users can reach) and e.otherHome (the
// other user's); e.asOther(argv...) is argv as that user, "livedict"
// being a copy of this binary they can execute:
//
//	e := newProcEnv(t, "sqlite").withOther()
//	mustRunCmd(t, e.asOther("livedict", "--store", theirs, "set", "k", "v"))
//	s := e.withStore(filepath.Join(e.shared, "s.db"))
//	out, stderr, code := s.run("get", "k")

// livedictPath is the test binary's copy that testscript.Main put on PATH.
var livedictPath = sync.OnceValues(func() (string, error) {
	p, err := exec.LookPath("livedict")
	if err != nil {
		return "", fmt.Errorf("livedict is not on PATH (TestMain must run testscript.Main): %v", err)
	}
	return p, nil
})

// procEnv is one store and the environment real livedict processes run in.
type procEnv struct {
	tb      testing.TB
	backend string   // "sqlite" or "file"
	url     string   // what --store gets
	path    string   // the store's location: the SQLite file or the file store's folder
	dir     string   // the private folder holding it (and HOME, hook output folders)
	env     []string // the processes' environment

	// Set by withOther.
	other     *otherAccount
	shared    string // a folder every user can traverse, removed at cleanup
	otherHome string // the other user's own 0700 folder in shared
}

// newProcEnv makes a store of backend in a fresh private folder.
func newProcEnv(tb testing.TB, backend string) *procEnv {
	tb.Helper()
	if _, err := livedictPath(); err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	e := &procEnv{tb: tb, backend: backend, dir: dir}
	switch backend {
	case "sqlite":
		e.path = filepath.Join(dir, "s.db")
		e.url = "sqlite:" + e.path
	case "file":
		e.path = filepath.Join(dir, "files")
		e.url = "file:" + e.path
	default:
		tb.Fatalf("unknown backend %q", backend)
	}
	home := filepath.Join(dir, "home")
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		// LIVEDICT_SANDBOX_NO_DIRECT is let through for the benchmarks that
		// measure hooks run through the helper, as before the spawner
		// started them itself (pkg/sandbox).
		if (strings.HasPrefix(name, "LIVEDICT_") && name != "LIVEDICT_SANDBOX_NO_DIRECT") || strings.HasPrefix(name, "XDG_") || name == "HOME" {
			continue
		}
		e.env = append(e.env, kv)
	}
	e.env = append(e.env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"), "LIVEDICT_BUSY_TIMEOUT=60s")
	// Registered first, so it runs last: after the processes the test
	// started are gone.
	tb.Cleanup(e.stopDispatcher)
	// Create the store now, so a daemon and 'daemon status' have one to
	// open: with a write that leaves nothing (reap, del and the other
	// writes that only change what exists create no store).
	e.mustRun("--no-hooks", "set", "livedict-test-init", "x")
	e.mustRun("--no-hooks", "del", "livedict-test-init")
	return e
}

// forEachBackend runs f as a subtest on a fresh store of each backend.
func forEachBackend(t *testing.T, f func(t *testing.T, e *procEnv)) {
	for _, backend := range []string{"sqlite", "file"} {
		t.Run(backend, func(t *testing.T) { f(t, newProcEnv(t, backend)) })
	}
}

// setenv adds NAME=VALUE to the environment of processes started after.
func (e *procEnv) setenv(kv string) { e.env = append(e.env, kv) }

// withStore is e on another store, at url (sqlite:PATH, file:PATH or a
// bare SQLite path), in the same environment: a store a test lays out
// itself, where the attack needs it. The store is not created.
func (e *procEnv) withStore(url string) *procEnv {
	s := *e
	s.url, s.backend, s.path = url, "sqlite", url
	if p, ok := strings.CutPrefix(url, "sqlite:"); ok {
		s.path = p
	} else if p, ok := strings.CutPrefix(url, "file:"); ok {
		s.backend, s.path = "file", p
	}
	e.tb.Cleanup(s.stopDispatcher)
	return &s
}

// otherUser is the second local account attacks run as.
const otherUser = "livedict-other"

// otherAccount is otherUser's ids.
type otherAccount struct{ uid, gid int }

// withOther readies e for steps run as another local user: it skips the
// test unless it runs as root (only root can become another user),
// creates otherUser when missing, and makes e.shared, a 0755 folder both
// users can traverse (e.dir is private to the owner), holding
// e.otherHome, the other user's 0700 folder.
func (e *procEnv) withOther() *procEnv {
	e.tb.Helper()
	if os.Geteuid() != 0 {
		e.tb.Skip("needs root to act as a second local user")
	}
	if _, err := sharedBinDir(); err != nil {
		e.tb.Fatal(err)
	}
	uid, gid, err := lookupUser(otherUser)
	if err != nil {
		// Another test may be creating it at the same time: look again after.
		out, addErr := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", otherUser).CombinedOutput()
		if uid, gid, err = lookupUser(otherUser); err != nil {
			e.tb.Skipf("cannot create user %s: %v %s", otherUser, addErr, out)
		}
	}
	e.other = &otherAccount{uid: uid, gid: gid}
	// Not e.tb.TempDir: its parent is private to the owner.
	shared, err := os.MkdirTemp("", "livedict-shared-")
	if err == nil {
		err = os.Chmod(shared, 0o755)
	}
	if err != nil {
		e.tb.Fatal(err)
	}
	e.tb.Cleanup(func() { os.RemoveAll(shared) })
	e.shared, e.otherHome = shared, filepath.Join(shared, "other-home")
	if err := os.Mkdir(e.otherHome, 0o700); err != nil {
		e.tb.Fatal(err)
	}
	if err := os.Chown(e.otherHome, uid, gid); err != nil {
		e.tb.Fatal(err)
	}
	return e
}

// lookupUser is name's uid and gid.
func lookupUser(name string) (uid, gid int, err error) {
	var ids [2]int
	for i, flag := range []string{"-u", "-g"} {
		out, err := exec.Command("id", flag, name).Output()
		if err != nil {
			return 0, 0, err
		}
		if ids[i], err = strconv.Atoi(strings.TrimSpace(string(out))); err != nil {
			return 0, 0, err
		}
	}
	return ids[0], ids[1], nil
}

// sharedBinDir is a 0755 folder every user can run programs from, holding
// a copy of livedict (this test binary: it runs as livedict by its name);
// tests may build their own tools into it. It lives beside the bin folder
// testscript.Main put on PATH, in the temporary folder testscript removes
// when the test binary exits; that folder is opened for traversal (0711:
// no listing) because the other user must reach it.
var sharedBinDir = sync.OnceValues(func() (string, error) {
	src, err := livedictPath()
	if err != nil {
		return "", err
	}
	if filepath.Base(filepath.Dir(src)) != "bin" {
		return "", fmt.Errorf("%s is not in testscript's bin folder", src)
	}
	top := filepath.Dir(filepath.Dir(src))
	dir := filepath.Join(top, "shared-bin")
	if err := os.Chmod(top, 0o711); err != nil {
		return "", err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "livedict"), b, 0o755)
})

// asOther is argv run as the other user (withOther), not started: in
// e.otherHome, with HOME and XDG_CONFIG_HOME there and a plain PATH.
// argv[0] "livedict" is the copy in sharedBinDir.
func (e *procEnv) asOther(argv ...string) *exec.Cmd {
	if e.other == nil {
		e.tb.Fatal("asOther without withOther")
	}
	if argv[0] == "livedict" {
		dir, _ := sharedBinDir()
		argv[0] = filepath.Join(dir, "livedict")
	}
	c := exec.Command(argv[0], argv[1:]...)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(e.other.uid), Gid: uint32(e.other.gid)}}
	c.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + e.otherHome, "XDG_CONFIG_HOME=" + e.otherHome}
	c.Dir = e.otherHome
	return c
}

// stateDir is the store's state folder (locks, hook work dirs).
func (e *procEnv) stateDir() string {
	if e.backend == "redis" {
		return e.redisStateDir() // redis_process_test.go
	}
	return hooks.StateDir(store.Info{Location: e.path, Backend: e.backend})
}

// holder is the pid holding lock (hooks.DeliverLock, hooks.DaemonLock), or 0.
func (e *procEnv) holder(lock string) int {
	pid, err := hooks.Holder(e.stateDir(), lock)
	if err != nil {
		e.tb.Fatalf("who holds %s: %v", lock, err)
	}
	return pid
}

// listening reports whether someone has bound the notification socket of
// role (hooks.DaemonSocket, hooks.DeliverSocket). It looks in /proc/net/unix
// rather than sending a datagram, which the listener would act on.
func (e *procEnv) listening(role string) bool {
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		e.tb.Fatalf("cannot tell whether anyone listens: %v", err)
	}
	return bytes.Contains(b, []byte(" "+hooks.SocketPath(e.stateDir(), role)+"\n"))
}

// command is 'livedict --store URL args...' in the environment, not started.
func (e *procEnv) command(args ...string) *exec.Cmd {
	p, _ := livedictPath()
	c := exec.Command(p, append([]string{"--store", e.url}, args...)...)
	c.Env = e.env
	return c
}

// commandVia is command run through wrapper, e.g. []string{"unshare", "-rn"}
// or []string{"setpriv", "--reuid=UID", ...}: the wrapper execs livedict.
func (e *procEnv) commandVia(wrapper []string, args ...string) *exec.Cmd {
	c := e.command(args...)
	w := exec.Command(wrapper[0], append(wrapper[1:], c.Args...)...)
	w.Env = c.Env
	return w
}

// run runs livedict to the end and returns stdout, stderr and the exit code.
func (e *procEnv) run(args ...string) (string, string, int) {
	e.tb.Helper()
	return runCmd(e.tb, e.command(args...))
}

// runInput is run with stdin.
func (e *procEnv) runInput(stdin []byte, args ...string) (string, string, int) {
	e.tb.Helper()
	c := e.command(args...)
	c.Stdin = bytes.NewReader(stdin)
	return runCmd(e.tb, c)
}

// setExpiring sets keys (each to "v-"+key, in bucket main) in one import,
// all with one deadline at least lead ahead, and returns the deadline. A
// key written with a deadline already past never lives and has no expire
// event, and on a loaded machine even one import can outlast a short lead:
// then it clears the keys (recording nothing) and tries again with twice
// the lead.
func (e *procEnv) setExpiring(lead time.Duration, keys ...string) time.Time {
	e.tb.Helper()
	for ; ; lead *= 2 {
		at := time.Now().Add(lead).Truncate(time.Millisecond)
		var jsonl bytes.Buffer
		for _, k := range keys {
			fmt.Fprintf(&jsonl, `{"bucket":"main","key":%q,"value":%q,"expires_at_ms":%d}`+"\n", k, "v-"+k, at.UnixMilli())
		}
		if _, stderr, code := e.runInput(jsonl.Bytes(), "import"); code != 0 {
			e.tb.Fatalf("import: exit %d: %s", code, stderr)
		}
		if time.Now().Before(at) || lead > time.Minute {
			return at
		}
		e.mustRun(append([]string{"--no-hooks", "del"}, keys...)...)
	}
}

// mustRun runs livedict, fails the test unless it exits 0, returns stdout.
func (e *procEnv) mustRun(args ...string) string {
	e.tb.Helper()
	return mustRunCmd(e.tb, e.command(args...))
}

// mustRunCmd runs c, fails the test unless it exits 0, returns stdout.
func mustRunCmd(tb testing.TB, c *exec.Cmd) string {
	tb.Helper()
	out, errOut, code := runCmd(tb, c)
	if code != 0 {
		tb.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", strings.Join(c.Args, " "), code, out, errOut)
	}
	return out
}

// runLimit is how long runCmd lets a command run: generous for a loaded
// machine and the benchmarks' big imports, but a hang fails its test.
const runLimit = 5 * time.Minute

// runCmd runs c (at most runLimit) and returns its stdout, stderr and exit
// code (-1 when killed by a signal).
func runCmd(tb testing.TB, c *exec.Cmd) (string, string, int) {
	tb.Helper()
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(runLimit):
		c.Process.Kill()
		<-done
		tb.Fatalf("%s still runs after %v\nstderr:\n%s", strings.Join(c.Args, " "), runLimit, errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		tb.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// parallel runs step(0) ... step(n-1) at once and waits for them all:
// many processes on one store, as scripts and cron jobs meet it. step
// reports with t.Errorf (a Fatal off the test's goroutine does not stop it).
func parallel(n int, step func(i int)) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); step(i) }()
	}
	wg.Wait()
}

// status runs 'daemon status' (piped) and returns its name/value lines.
func (e *procEnv) status() map[string]string {
	e.tb.Helper()
	out := e.mustRun("daemon", "status")
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		name, value, ok := strings.Cut(line, "\t")
		if !ok {
			e.tb.Fatalf("daemon status: line without a tab: %q", line)
		}
		m[name] = value
	}
	return m
}

// pending is what 'stats --json' says waits in the outbox, and has failed.
func (e *procEnv) pending() (pending, failed int64) {
	e.tb.Helper()
	var st struct {
		Pending int64 `json:"events_pending"`
		Failed  int64 `json:"events_failed"`
	}
	out := e.mustRun("stats", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.tb.Fatalf("stats --json: %q: %v", out, err)
	}
	return st.Pending, st.Failed
}

// waitDelivered waits until the outbox is empty and no dispatcher runs. It
// fails only when stall passes with no event delivered: a loaded machine
// may deliver slowly (every run starts a sandbox), but delivery must not
// stop.
func (e *procEnv) waitDelivered(stall time.Duration) {
	e.tb.Helper()
	var pid int
	waitProgress(e.tb, stall, "every event delivered and the dispatcher gone", func() (int64, bool) {
		p, _ := e.pending()
		pid = e.holder(hooks.DeliverLock)
		return -p, p == 0 && pid == 0
	})
}

// pendingProgress is a waitProgress step: done when the outbox is empty;
// progress is each event delivered. The daemon p must still run.
func (e *procEnv) pendingProgress(p *proc) func() (int64, bool) {
	return func() (int64, bool) {
		p.running()
		n, err := strconv.ParseInt(e.status()["events_pending"], 10, 64)
		if err != nil {
			e.tb.Fatalf("daemon status: events_pending: %v", err)
		}
		return -n, n == 0
	}
}

// stopDispatcher makes sure no detached dispatcher outlives the test and
// writes into a temp dir being removed.
func (e *procEnv) stopDispatcher() {
	dir := e.stateDir()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if pid, _ := hooks.Holder(dir, hooks.DeliverLock); pid == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	if pid, _ := hooks.Holder(dir, hooks.DeliverLock); pid != 0 {
		killSession(pid)
	}
}

// hookOut makes a folder hooks may write, and adds a hook that runs
// script (a sh -c script; $OUT is that folder) on events. It returns the
// folder.
func (e *procEnv) hookOut(events, script string, extra ...string) string {
	e.tb.Helper()
	out := filepath.Join(e.dir, "out-"+strings.ReplaceAll(events, ",", "-"))
	if err := os.MkdirAll(out, 0o700); err != nil {
		e.tb.Fatal(err)
	}
	args := append([]string{"hook", "add", "--on", events, "--write", out}, extra...)
	args = append(args, "--", "sh", "-c", strings.ReplaceAll(script, "$OUT", "'"+out+"'"))
	e.mustRun(args...)
	return out
}

// syncBuffer is a bytes.Buffer safe for a process to write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// proc is a livedict process running in the background.
type proc struct {
	tb     testing.TB
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	code   int       // exit status; 128+N when killed by signal N
	ended  time.Time // when Wait returned
}

// start starts 'livedict --store URL args...' in the background.
func (e *procEnv) start(args ...string) *proc {
	e.tb.Helper()
	return e.startCmd(e.command(args...))
}

// startCmd starts c (made by e.command, maybe adjusted) in the background.
func (e *procEnv) startCmd(c *exec.Cmd) *proc {
	e.tb.Helper()
	p := &proc{tb: e.tb, cmd: c, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		e.tb.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.ended = time.Now()
		p.code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				p.code = 128 + int(ws.Signal())
			}
		} else if err != nil {
			p.code = -1
		}
		close(p.done)
	}()
	e.tb.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if e.tb.Failed() {
			e.tb.Logf("stderr of livedict %s:\n%s", strings.Join(p.cmd.Args[1:], " "), p.stderr.String())
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) signal(sig os.Signal) {
	p.tb.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.tb.Fatalf("signal %v: %v", sig, err)
	}
}

// running fails the test if the process has ended: polls for what a
// daemon should do call it, so a daemon that died fails at once, with its
// log, rather than at the poll's deadline.
func (p *proc) running() bool {
	p.tb.Helper()
	if p.exited() {
		p.tb.Fatalf("livedict %s exited with %d:\n%s", strings.Join(p.cmd.Args[1:], " "), p.code, p.stderr.String())
	}
	return true
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to timeout for the process to end and returns its exit
// code.
func (p *proc) wait(timeout time.Duration) int {
	p.tb.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		p.tb.Fatalf("livedict %s still runs after %v\nstderr:\n%s", strings.Join(p.cmd.Args[1:], " "), timeout, p.stderr.String())
		return 0
	}
}

// startDaemon starts 'livedict daemon args...' and waits until it holds
// the daemon lock, listens for notifications, and holds the delivery lock.
func (e *procEnv) startDaemon(args ...string) *proc {
	e.tb.Helper()
	p := e.start(append([]string{"daemon"}, args...)...)
	poll(e.tb, 5*time.Second, "the daemon to get ready", func() bool {
		if p.exited() {
			e.tb.Fatalf("the daemon exited with %d before it was ready:\n%s", p.code, p.stderr.String())
		}
		return e.holder(hooks.DaemonLock) == p.pid() && e.holder(hooks.DeliverLock) == p.pid() &&
			e.listening(hooks.DaemonSocket)
	})
	return p
}

// poll calls cond every 10ms until it is true, failing the test after
// timeout.
func poll(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	pollEvery(tb, 10*time.Millisecond, timeout, what, cond)
}

// waitProgress calls step every 50ms until it reports done, and fails only
// when stall passes with no change in the progress it reports. Use it for
// work whose length grows with the machine's load (hooks run in a fresh
// sandbox each): a loaded machine may be slow, but work must not stop.
func waitProgress(tb testing.TB, stall time.Duration, what string, step func() (progress int64, done bool)) {
	tb.Helper()
	last, at := int64(0), time.Now()
	for first := true; ; first = false {
		n, done := step()
		if done {
			return
		}
		if first || n != last {
			last, at = n, time.Now()
		}
		if time.Since(at) > stall {
			tb.Fatalf("no progress for %v waiting for %s (progress %d)", stall, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pollEvery is poll at another interval (benchmarks measure waits to the ms).
func pollEvery(tb testing.TB, interval, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}

// hookEvent is the part of the event JSON these tests look at.
type hookEvent struct {
	Event     string `json:"event"`
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	Value     string `json:"value"`
	ExpiresAt string `json:"expires_at"`
	Time      string `json:"time"`
	HookID    int64  `json:"hook_id"`
}

// readEvents reads the events hooks appended to file, in order. A half
// written last one (a hook still writing) is left for the next read.
func readEvents(tb testing.TB, file string) []hookEvent {
	tb.Helper()
	b := readIfExists(tb, file)
	var evs []hookEvent
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var e hookEvent
		if err := dec.Decode(&e); err != nil {
			return evs
		}
		evs = append(evs, e)
	}
}

// readIfExists is the content of file, nil when it does not exist (yet).
func readIfExists(tb testing.TB, file string) []byte {
	tb.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		tb.Fatal(err)
	}
	return b
}

// countKeys counts events per key.
func countKeys(evs []hookEvent) map[string]int {
	n := map[string]int{}
	for _, e := range evs {
		n[e.Key]++
	}
	return n
}

// fileLines is the lines of file; none when it does not exist.
func fileLines(tb testing.TB, file string) []string {
	tb.Helper()
	b := readIfExists(tb, file)
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func parseEventTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatalf("event time %q: %v", s, err)
	}
	return tm
}

// alive reports whether pid is a live process (not gone, not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// killSession kill -9s pid and every process in its session: a detached
// dispatcher and the hooks it runs, as a crash of the machine's livedict
// processes would.
func killSession(pid int) {
	syscall.Kill(pid, syscall.SIGKILL)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp session ...
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			f := strings.Fields(s[i+1:])
			if len(f) > 3 && f[3] == strconv.Itoa(pid) {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
	}
}

// --- many processes, one store: the way scripts and cron jobs meet it

func TestManyProcessesIncr(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 640 processes per backend; skipped with -short")
	}
	// 32 at once is the contention; the rounds only add process starts,
	// which cost this suite's machine about 27 ms of CPU each (32 × 50 on
	// two backends took a minute of CI).
	procs, each := 32, 20
	forEachBackend(t, func(t *testing.T, e *procEnv) {
		var mu sync.Mutex
		var failures []string
		parallel(procs, func(int) {
			for i := 0; i < each; i++ {
				_, stderr, code := e.run("incr", "counter")
				if code != 0 || stderr != "" {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("exit %d: %s", code, stderr))
					mu.Unlock()
				}
			}
		})
		if len(failures) > 0 {
			t.Fatalf("%d of %d incr failed, first: %s", len(failures), procs*each, failures[0])
		}
		if out := e.mustRun("get", "counter"); out != fmt.Sprint(procs*each) {
			t.Fatalf("counter = %q, want %d", out, procs*each)
		}
	})
}

// TestKill9 kills imports at random points: an import is all or nothing,
// the store is never left corrupt, and what an earlier command committed
// survives.
func TestKill9(t *testing.T) {
	const keys = 20000
	var jsonl bytes.Buffer
	for i := 0; i < keys; i++ {
		fmt.Fprintf(&jsonl, `{"bucket":"main","key":"k%06d","value_b64":"dmFsdWUgdmFsdWUgdmFsdWU=","expires_at_ms":null}`+"\n", i)
	}
	forEachBackend(t, func(t *testing.T, e *procEnv) {
		e.mustRun("set", "committed", "before")
		outcomes := map[string]int{}
		for round := 0; round < 6; round++ {
			e.run("del", "k000000", "k019999") // undo a finished import
			e.run("bucket", "drop", "main", "--yes")
			e.run("set", "committed", "before")
			c := e.command("import", "--replace")
			c.Stdin = bytes.NewReader(jsonl.Bytes())
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(20+round*40) * time.Millisecond)
			c.Process.Signal(syscall.SIGKILL)
			c.Wait()

			out, stderr, code := e.run("keys", "k*")
			if code != 0 {
				t.Fatalf("round %d: keys after kill -9: exit %d: %s", round, code, stderr)
			}
			n := strings.Count(out, "\n")
			switch n {
			case 0:
				outcomes["none"]++
			case keys:
				outcomes["all"]++
			default:
				t.Fatalf("round %d: import killed mid-way left %d of %d keys", round, n, keys)
			}
			if v, _, _ := e.run("get", "committed"); v != "before" {
				t.Fatalf("round %d: committed value lost: %q", round, v)
			}
		}
		t.Logf("%s: outcomes of killed imports: %v", e.backend, outcomes)
	})
}
