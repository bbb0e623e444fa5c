package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests run against the real helper: TestMain builds livedict-sandbox
// beside the test binary, where Run finds it as it finds it beside
// livedict. With LIVEDICT_SANDBOX_TEST_SELF=1 it does not, and the test
// binary is its own helper, as livedict is when the helper is missing (Run
// re-executes it, and TestMain hands the helper mode to MaybeRunChild
// before any test runs).
func TestMain(m *testing.M) {
	MaybeRunChild()
	// The hostile hooks of descriptors_linux_test.go and
	// network_linux_test.go.
	if target := os.Getenv(attackEnv); target != "" {
		stealDescriptors(target)
		os.Exit(0)
	}
	if socks := os.Getenv(unixAttackEnv); socks != "" {
		reachUnixSockets(socks)
		os.Exit(0)
	}
	if os.Getenv(ptraceAttackEnv) != "" {
		ptraceAttack()
		os.Exit(0)
	}
	if os.Getenv("LIVEDICT_SANDBOX_TEST_SELF") != "1" && os.Getenv(unprivilegedEnv) == "" {
		if err := buildHelper(); err != nil {
			fmt.Fprintln(os.Stderr, "building the sandbox helper:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// buildHelper builds livedict-sandbox beside the test binary, as the
// README builds it.
func buildHelper() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dst := filepath.Join(filepath.Dir(self), HelperName)
	c := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", dst, "./livedict-sandbox")
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	if err := TrustedHelper(dst); err != nil {
		return err
	}
	return nil
}

// TestHelperFound: the tests run against livedict-sandbox, not the test
// binary, unless asked not to.
func TestHelperFound(t *testing.T) {
	got, err := defaultHelper()
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	want := filepath.Join(filepath.Dir(self), HelperName)
	if os.Getenv("LIVEDICT_SANDBOX_TEST_SELF") == "1" {
		want = self
	}
	if got != want {
		t.Fatalf("helper %s, want %s", got, want)
	}
}

// unprivilegedEnv marks the copy of this test binary that
// TestForkBombContained runs as nobody when the tests run as root.
const unprivilegedEnv = "LIVEDICT_SANDBOX_TEST_UNPRIVILEGED"

var probeOnce = sync.OnceValue(func() []Layer { return Probe(true) })

func layer(t *testing.T, layers []Layer, name string) Layer {
	t.Helper()
	for _, l := range layers {
		if l.Name == name {
			return l
		}
	}
	t.Fatalf("layer %s missing from %v", name, layers)
	return Layer{}
}

// needLayer skips a test whose kernel feature this machine lacks, saying why.
func needLayer(t *testing.T, name string) {
	t.Helper()
	if l := layer(t, probeOnce(), name); !l.On {
		t.Skipf("skipped: %s is off on this machine: %s", name, l.Why)
	}
}

func runHook(t *testing.T, s Spec) Result {
	t.Helper()
	if s.WorkDir == "" {
		s.WorkDir = t.TempDir()
	}
	if s.Timeout == 0 {
		s.Timeout = 10 * time.Second
	}
	res, err := Run(context.Background(), s)
	if err != nil {
		t.Fatalf("Run(%q): %v", s.Argv, err)
	}
	return res
}

func sh(script string) []string { return []string{"sh", "-c", script} }

// modes runs a test with namespaces (where the kernel allows) and with the
// fallback that a kernel refusing them gets: the process-group layer alone
// must keep its promises.
func modes(t *testing.T, f func(t *testing.T, m mode)) {
	for _, m := range allModes {
		t.Run(m.name, func(t *testing.T) { t.Parallel(); f(t, m) })
	}
}

// mode is one way a hook can be started: by the spawner itself as PID 1
// of its namespace (direct), through the helper as its init, or by the
// helper without namespaces, as where the kernel refuses them.
type mode struct {
	name                     string
	noNamespaces, helperInit bool
}

var allModes = []mode{{name: "namespaces"}, {name: "helper-init", helperInit: true}, {name: "no-namespaces", noNamespaces: true}}

// spec returns s started in mode m.
func (m mode) spec(s Spec) Spec {
	s.noNamespaces, s.helperInit = m.noNamespaces, m.helperInit
	return s
}

// marker returns a sleep duration no other process on the machine uses, so
// the test can find the processes it started in /proc.
func marker() string {
	return fmt.Sprintf("%d.%06d", 300+rand.IntN(600), rand.IntN(1000000))
}

// procsWith lists the pids whose command line contains all of words.
func procsWith(words ...string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		all := true
		for _, w := range words {
			if !slices.Contains(args, w) {
				all = false
			}
		}
		if all {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitGone gives killed processes a moment to be reaped, then reports any
// that are still there.
func waitGone(words ...string) []int {
	deadline := time.Now().Add(2 * time.Second)
	for {
		pids := procsWith(words...)
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExitCodeAndSignal(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, md mode) {
		for _, c := range []struct {
			script string
			code   int
			signal string
		}{
			{"exit 0", 0, ""},
			{"exit 7", 7, ""},
			// Not PID 1 of its namespace (that drops signals without a
			// handler): the hook can end itself with a signal.
			{"kill -USR1 $$", -1, "SIGUSR1"},
			{"kill -KILL $$", -1, "SIGKILL"},
			{`trap "exit 9" USR1; kill -USR1 $$; sleep 5`, 9, ""},
		} {
			res := runHook(t, md.spec(Spec{Argv: sh(c.script)}))
			if res.ExitCode != c.code || res.Signal != c.signal || res.TimedOut {
				t.Errorf("%s: got exit %d signal %q timedOut %v, want exit %d signal %q",
					c.script, res.ExitCode, res.Signal, res.TimedOut, c.code, c.signal)
			}
		}
	})
}

func TestStdinDelivered(t *testing.T) {
	t.Parallel()
	in := []byte(`{"event":"set","key":"k","value":"v"}` + "\n")
	res := runHook(t, Spec{Argv: []string{"cat"}, Stdin: in})
	if !bytes.Equal(res.Output, in) || res.ExitCode != 0 {
		t.Fatalf("output %q exit %d, want %q", res.Output, res.ExitCode, in)
	}

	// A hook that never reads a large stdin must not hang the run.
	res = runHook(t, Spec{Argv: sh("exit 3"), Stdin: bytes.Repeat([]byte("x"), 1<<20), Timeout: 5 * time.Second})
	if res.ExitCode != 3 || res.TimedOut {
		t.Fatalf("exit %d timedOut %v, want 3", res.ExitCode, res.TimedOut)
	}
}

func TestEnvironmentAllowList(t *testing.T) {
	// Not parallel: t.Setenv.
	t.Setenv("LIVEDICT_TEST_SECRET", "hunter2-secret-value")
	t.Setenv("LANG", "")
	t.Setenv("TZ", "Europe/Paris")
	wd := t.TempDir()
	res := runHook(t, Spec{
		Argv:    []string{"env"},
		WorkDir: wd,
		Env:     map[string]string{"LIVEDICT_KEY": "user:1", "HOME": "/root/should-not-win"},
	})
	out := string(res.Output)
	if strings.Contains(out, "hunter2") || strings.Contains(out, "LIVEDICT_TEST_SECRET") {
		t.Errorf("the caller's secret reached the hook:\n%s", out)
	}
	got := strings.Split(strings.TrimSpace(out), "\n")
	slices.Sort(got)
	want := []string{
		"HOME=" + wd,
		"LANG=C.UTF-8",
		"LIVEDICT_KEY=user:1",
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"TMPDIR=" + wd,
		"TZ=Europe/Paris",
	}
	if !slices.Equal(got, want) {
		t.Errorf("hook environment\n got %q\nwant %q", got, want)
	}
}

func TestOnlyStandardDescriptorsOpen(t *testing.T) {
	t.Parallel()
	// A descriptor without close-on-exec, as livedict could inherit from
	// whoever started it: a plain child would get it.
	f := filepath.Join(t.TempDir(), "stray")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Open(f, syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)

	modes(t, func(t *testing.T, md mode) {
		// ls lists its own descriptors: the ones it inherited plus the one
		// it reads /proc/self/fd with, told apart by its target.
		res := runHook(t, Spec{Argv: []string{"ls", "-l", "/proc/self/fd/"}, noNamespaces: md.noNamespaces, helperInit: md.helperInit})
		var fds []string
		for _, line := range strings.Split(string(res.Output), "\n") {
			fields := strings.Fields(line)
			if len(fields) < 3 || fields[len(fields)-2] != "->" {
				continue
			}
			if target := fields[len(fields)-1]; strings.HasPrefix(target, "/proc/") && strings.HasSuffix(target, "/fd") {
				continue
			}
			fds = append(fds, fields[len(fields)-3]+" "+strings.SplitN(fields[len(fields)-1], ":", 2)[0])
		}
		want := []string{"0 pipe", "1 pipe", "2 pipe"}
		if !slices.Equal(fds, want) {
			t.Errorf("open descriptors in the hook: %q, want %q\n%s", fds, want, res.Output)
		}
	})
}

func TestOutputCapCutsAndMarks(t *testing.T) {
	t.Parallel()
	// 8 MiB through a 64 KiB pipe: the hook only finishes quickly if the
	// reader keeps draining past the cap.
	res := runHook(t, Spec{
		Argv:      sh("head -c 8388608 /dev/zero | tr '\\0' a; echo; echo END"),
		OutputCap: 1000,
		Timeout:   5 * time.Second,
	})
	if res.ExitCode != 0 || res.TimedOut {
		t.Fatalf("exit %d timedOut %v", res.ExitCode, res.TimedOut)
	}
	if len(res.Output) != 1000 || !res.Truncated || res.CutBytes != 8388608+1+4-1000 {
		t.Fatalf("len %d truncated %v cut %d", len(res.Output), res.Truncated, res.CutBytes)
	}
	if !bytes.HasSuffix(res.Output, []byte("aaa\nEND\n")) {
		t.Fatalf("output does not end with the hook's last bytes: %q", res.Output[len(res.Output)-20:])
	}

	res = runHook(t, Spec{Argv: sh("echo short"), OutputCap: 1000})
	if res.Truncated || res.CutBytes != 0 || string(res.Output) != "short\n" {
		t.Fatalf("short output: %q truncated %v", res.Output, res.Truncated)
	}
}

// untilReady runs a timing test again with twice the timeout while the
// hook had not reached the point under test (it prints "ready") when the
// timeout fired: on a loaded machine, and under -race, starting the helper
// can take longer than the short timeouts these tests use.
func untilReady(t *testing.T, timeout time.Duration, f func(timeout time.Duration) Result) (Result, time.Duration) {
	t.Helper()
	for i := 0; ; i++ {
		res := f(timeout)
		// Output so long that it was cut went on after "ready".
		if bytes.Contains(res.Output, []byte("ready")) || res.Truncated {
			return res, timeout
		}
		if i == 4 {
			t.Fatalf("the hook never got ready, last timeout %v: %+v", timeout, res)
		}
		t.Logf("hook not ready within %v; again with twice the timeout", timeout)
		timeout *= 2
	}
}

func TestTimeoutKillsGrandchildren(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, md mode) {
		a, b := marker(), marker()
		// Long: the shell dies of SIGTERM at once, so the grace is never
		// waited out when all is well, but on a machine at load 60 a
		// dying process can take seconds to be scheduled.
		const grace = 10 * time.Second
		res, _ := untilReady(t, 300*time.Millisecond, func(timeout time.Duration) Result {
			return runHook(t, Spec{
				Argv:         sh("sleep " + a + " & sleep " + b + " & echo ready; wait"),
				Timeout:      timeout,
				Grace:        grace,
				noNamespaces: md.noNamespaces, helperInit: md.helperInit,
			})
		})
		if !res.TimedOut || res.ExitCode != -1 {
			t.Errorf("timedOut %v exit %d signal %q, want a timeout", res.TimedOut, res.ExitCode, res.Signal)
		}
		// The shell dies of SIGTERM: the grace period is not waited out.
		if res.Signal != "SIGTERM" {
			t.Errorf("signal %q after %v, want SIGTERM", res.Signal, res.Duration)
		}
		for _, m := range []string{a, b} {
			if pids := waitGone("sleep", m); len(pids) > 0 {
				t.Errorf("sleep %s survived the timeout: pids %v", m, pids)
				for _, p := range pids {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
			}
		}
	})
}

func TestIgnoredSIGTERMGetsSIGKILLAfterGrace(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, md mode) {
		m := marker()
		const grace = 300 * time.Millisecond
		res, timeout := untilReady(t, 200*time.Millisecond, func(timeout time.Duration) Result {
			return runHook(t, Spec{
				Argv:         sh(`trap "" TERM; echo ready; sleep ` + m),
				Timeout:      timeout,
				Grace:        grace,
				noNamespaces: md.noNamespaces, helperInit: md.helperInit,
			})
		})
		if !res.TimedOut || res.Signal != "SIGKILL" {
			t.Errorf("timedOut %v signal %q, want SIGKILL after the grace period", res.TimedOut, res.Signal)
		}
		// The upper bound only tells "killed" from "waited for sleep", with
		// slack for loaded machines.
		if min := timeout + grace - 20*time.Millisecond; res.Duration < min || res.Duration > min+30*time.Second {
			t.Errorf("duration %v, want timeout+grace (%v)", res.Duration, timeout+grace)
		}
		if pids := waitGone("sleep", m); len(pids) > 0 {
			t.Errorf("sleep ignoring SIGTERM survived: %v", pids)
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})
}

func TestGroupKilledWhenHookExits(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, md mode) {
		m := marker()
		res := runHook(t, Spec{Argv: sh("sleep " + m + " & echo started"), noNamespaces: md.noNamespaces, helperInit: md.helperInit})
		if res.ExitCode != 0 || res.TimedOut || string(res.Output) != "started\n" {
			t.Fatalf("exit %d timedOut %v output %q", res.ExitCode, res.TimedOut, res.Output)
		}
		if pids := waitGone("sleep", m); len(pids) > 0 {
			t.Errorf("a background job outlived the hook: pids %v", pids)
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})
}

func TestSetsidEscapeeKilled(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("skipped: no setsid command")
	}
	t.Run("pid-namespace", func(t *testing.T) {
		t.Parallel()
		needLayer(t, layerPIDNS)
		m := marker()
		res := runHook(t, Spec{Argv: sh("setsid sleep " + m + " & sleep 0.3; echo done")})
		if res.ExitCode != 0 || string(res.Output) != "done\n" {
			t.Fatalf("exit %d output %q", res.ExitCode, res.Output)
		}
		if !layer(t, res.Layers, layerPIDNS).On {
			t.Fatalf("pid-namespace off in the run: %v", res.Layers)
		}
		if pids := waitGone("sleep", m); len(pids) > 0 {
			t.Errorf("a setsid escapee outlived the hook: pids %v", pids)
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})

	// The control: without a PID namespace the same escapee does survive,
	// which shows the check above can see one. This one keeps the output
	// pipe open, and Run must not wait for it.
	t.Run("control-without-pid-namespace", func(t *testing.T) {
		t.Parallel()
		m := marker()
		start := time.Now()
		res := runHook(t, Spec{
			Argv:         sh("setsid sleep " + m + " & sleep 0.3; echo done"),
			noNamespaces: true,
		})
		elapsed := time.Since(start)
		pids := procsWith("sleep", m)
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		if len(pids) == 0 {
			t.Errorf("the escapee was not found without a PID namespace: the detection is broken")
		}
		// Without the drain bound Run would wait for the escapee's sleep,
		// five minutes at least; the slack is for loaded machines.
		if string(res.Output) != "done\n" || elapsed > 30*time.Second {
			t.Errorf("output %q after %v: an escapee holding the pipe held up Run", res.Output, elapsed)
		}
	})
}

func TestForkBombContained(t *testing.T) {
	if os.Getuid() == 0 && os.Getenv(unprivilegedEnv) == "" {
		// The kernel exempts uid 0 from RLIMIT_NPROC, so the bomb is only
		// meaningful as another user: rerun this test as nobody.
		runAsNobody(t, "TestForkBombContained")
		return
	}
	needLayer(t, layerProcessLimit)
	const grace = 200 * time.Millisecond
	// On a machine at load 57 the bomb once printed ready and ran its whole
	// second without reaching 64 processes: slow, not uncontained. So it
	// runs again with twice the time until it hits the limit; every run
	// must leave no bomb process behind.
	for try := time.Second; ; try *= 2 {
		m := marker()
		res, timeout := untilReady(t, try, func(timeout time.Duration) Result {
			return runHook(t, Spec{
				// Each b starts two more and waits: without a limit this
				// doubles every few milliseconds until the timeout.
				Argv:    []string{"sh", "-c", `echo ready; b() { b & b & wait; }; b`, "bomb-" + m},
				Timeout: timeout,
				Grace:   grace,
				Limits:  Limits{Processes: 64},
			})
		})
		if !layer(t, res.Layers, layerProcessLimit).On {
			t.Fatalf("process-limit off in the run: %v", res.Layers)
		}
		if res.Duration > timeout+grace+30*time.Second {
			t.Errorf("the run took %v", res.Duration)
		}
		if pids := waitGone("bomb-" + m); len(pids) > 0 {
			t.Errorf("%d bomb processes survived", len(pids))
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		t.Logf("bomb ran %v, %s, %q...", res.Duration, layer(t, res.Layers, layerProcessLimit).Why, firstLine(res.Output))
		if bytes.Contains(bytes.ToLower(res.Output), []byte("fork")) {
			return
		}
		if try >= 16*time.Second {
			t.Fatalf("the bomb never hit the process limit; output tail %q", res.Output)
		}
		t.Logf("the bomb did not reach the limit within %v; again with twice the time", timeout)
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

// runAsNobody reruns one test of a copy of this test binary as uid 65534.
func runAsNobody(t *testing.T, name string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sandbox-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sandbox.test")
	if err := copyFile(self, bin); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tmp, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Dir = tmp
	cmd.Env = []string{unprivilegedEnv + "=1", "PATH=" + hookPath, "TMPDIR=" + tmp, "HOME=" + tmp}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	t.Logf("as nobody:\n%s", out)
	switch {
	case err != nil:
		t.Fatalf("as nobody: %v", err)
	case bytes.Contains(out, []byte("--- SKIP")):
		t.Skip("skipped as nobody (see log)")
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func TestLandlockBlocksWritesOutsideAllowedDirs(t *testing.T) {
	t.Parallel()
	needLayer(t, layerLandlock)
	modes(t, func(t *testing.T, md mode) {
		wd, allowed, outside := t.TempDir(), t.TempDir(), t.TempDir()
		res := runHook(t, Spec{
			Argv: sh(`echo a > "$HOME/in-workdir" && echo b > "$ALLOWED/in-write-dir" && echo c > /dev/null &&
				echo d > "$TMPDIR/tmp" && mkdir "$HOME/sub" && echo ok;
				echo e > "$OUTSIDE/escaped" || echo DENIED-FILE;
				mkdir "$OUTSIDE/dir" || echo DENIED-DIR`),
			WorkDir:      wd,
			WriteDirs:    []string{allowed},
			Env:          map[string]string{"ALLOWED": allowed, "OUTSIDE": outside},
			noNamespaces: md.noNamespaces, helperInit: md.helperInit,
		})
		out := string(res.Output)
		if !layer(t, res.Layers, layerLandlock).On {
			t.Fatalf("landlock off in the run: %v", res.Layers)
		}
		for _, want := range []string{"ok\n", "DENIED-FILE", "DENIED-DIR", "Permission denied"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		for _, p := range []string{filepath.Join(wd, "in-workdir"), filepath.Join(allowed, "in-write-dir")} {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("allowed write failed: %v", err)
			}
		}
		for _, p := range []string{filepath.Join(outside, "escaped"), filepath.Join(outside, "dir")} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s was written despite Landlock", p)
			}
		}
	})
}

func TestNoNetworkCannotReachLoopback(t *testing.T) {
	t.Parallel()
	needLayer(t, layerNetNS)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("skipped: bash (for /dev/tcp) is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	accepted := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted++
			mu.Unlock()
			c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	hook := []string{bash, "-c", "exec 3<>/dev/tcp/127.0.0.1/" + port + " && echo CONNECTED"}

	// The control: the same hook reaches the listener with network.
	res := runHook(t, Spec{Argv: hook})
	if !strings.Contains(string(res.Output), "CONNECTED") {
		t.Fatalf("control hook could not connect: %q", res.Output)
	}

	res = runHook(t, Spec{Argv: hook, NoNetwork: true})
	if strings.Contains(string(res.Output), "CONNECTED") || res.ExitCode == 0 {
		t.Errorf("--no-network hook connected to 127.0.0.1: exit %d output %q", res.ExitCode, res.Output)
	}
	if l := layer(t, res.Layers, layerNetNS); !l.On {
		t.Errorf("network-namespace off: %v", l)
	}
	// The namespace itself, not only the seccomp and Landlock rules that
	// back it up: the hook sees no interface but lo.
	res = runHook(t, Spec{Argv: []string{"cat", "/proc/net/dev"}, NoNetwork: true})
	var ifaces []string
	for _, line := range strings.Split(string(res.Output), "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok {
			ifaces = append(ifaces, strings.TrimSpace(name))
		}
	}
	if !slices.Equal(ifaces, []string{"lo"}) {
		t.Errorf("interfaces in the hook's network namespace: %q\n%s", ifaces, res.Output)
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if accepted != 1 {
		t.Errorf("listener accepted %d connections, want 1 (the control's)", accepted)
	}
}

func TestNoNetworkFailsClosedWithoutNamespaces(t *testing.T) {
	t.Parallel()
	wd := t.TempDir()
	res, err := Run(context.Background(), Spec{
		Argv:         sh("touch ran"),
		WorkDir:      wd,
		NoNetwork:    true,
		noNamespaces: true,
	})
	if !errors.Is(err, ErrNoNetwork) {
		t.Fatalf("err = %v, want ErrNoNetwork", err)
	}
	if _, statErr := os.Stat(filepath.Join(wd, "ran")); statErr == nil {
		t.Fatalf("the hook ran with network (result %+v)", res)
	}
}

func TestNamespaceFallbackReportsWhy(t *testing.T) {
	t.Parallel()
	res := runHook(t, Spec{Argv: sh("echo hi"), noNamespaces: true})
	if string(res.Output) != "hi\n" {
		t.Fatalf("output %q", res.Output)
	}
	for _, name := range []string{layerUserNS, layerPIDNS, layerNetNS} {
		if l := layer(t, res.Layers, name); l.On || !strings.Contains(l.Why, "refused") {
			t.Errorf("%v, want off because the kernel refused", l)
		}
	}
	if l := layer(t, res.Layers, layerProcessLimit); l.On {
		t.Errorf("%v: RLIMIT_NPROC must not be set without a user namespace", l)
	}
}

func TestProbeListsEveryLayer(t *testing.T) {
	t.Parallel()
	layers := probeOnce()
	var names []string
	for _, l := range layers {
		names = append(names, l.Name)
		if l.Why == "" {
			t.Errorf("layer %s has no reason", l.Name)
		}
		t.Log(l)
	}
	if !slices.Equal(names, layerOrder()) {
		t.Errorf("layers %q, want %q", names, layerOrder())
	}
	for _, name := range []string{layerEnvironment, layerDescriptors, layerProcessGroup, layerRlimits} {
		if !layer(t, layers, name).On {
			t.Errorf("%s is off; it needs nothing from the kernel", name)
		}
	}
}

func TestRlimitsApplied(t *testing.T) {
	t.Parallel()
	res := runHook(t, Spec{Argv: sh("ulimit -c; ulimit -n; ulimit -t"), Timeout: 3 * time.Second})
	if got, want := string(res.Output), "0\n256\n4\n"; got != want {
		t.Errorf("core, nofile, cpu limits = %q, want %q", got, want)
	}
	res = runHook(t, Spec{Argv: sh("ulimit -n"), Limits: Limits{OpenFiles: 64}})
	if got := string(res.Output); got != "64\n" {
		t.Errorf("nofile with Limits.OpenFiles=64 = %q", got)
	}
}

func TestSeccompDeniesNamespacesAndPtrace(t *testing.T) {
	t.Parallel()
	needLayer(t, layerSeccomp)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("skipped: no unshare command")
	}
	// Even as root inside its user namespace, the hook cannot make new
	// namespaces: unshare(2) fails with EPERM.
	res := runHook(t, Spec{Argv: sh("unshare --user --map-root-user true && echo UNSHARED")})
	if strings.Contains(string(res.Output), "UNSHARED") || !strings.Contains(string(res.Output), "Operation not permitted") {
		t.Errorf("unshare was not denied: exit %d output %q", res.ExitCode, res.Output)
	}
}

func TestCommandNotFound(t *testing.T) {
	t.Parallel()
	_, err := Run(context.Background(), Spec{Argv: []string{"no-such-hook-command"}, WorkDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v, want not found", err)
	}
}

func TestContextCancelStopsHook(t *testing.T) {
	t.Parallel()
	wd := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the hook is running, however long the helper took.
	go func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(wd, "ready")); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	m := marker()
	res, err := Run(ctx, Spec{Argv: sh(`touch "$HOME/ready"; exec sleep ` + m), WorkDir: wd, Timeout: time.Minute})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if res.TimedOut || res.Signal != "SIGTERM" {
		t.Errorf("timedOut %v signal %q, want SIGTERM", res.TimedOut, res.Signal)
	}
	if pids := waitGone("sleep", m); len(pids) > 0 {
		t.Errorf("sleep survived: %v", pids)
	}
}

func TestHelperWithoutMaybeRunChild(t *testing.T) {
	t.Parallel()
	// /bin/true stands in for a main that forgot MaybeRunChild.
	_, err := Run(context.Background(), Spec{Argv: []string{"true"}, WorkDir: t.TempDir(), Helper: "/bin/true"})
	if !errors.Is(err, ErrHelper) {
		t.Fatalf("err = %v, want ErrHelper", err)
	}
}
