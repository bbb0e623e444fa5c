package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livedict/livedict/cmd"
	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/sandbox"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
	"github.com/livedict/livedict/pkg/wake"
	"github.com/rogpeppe/go-internal/testscript"
)

// The testscript suite runs the real command line: each script's `exec
// livedict` re-executes this test binary as livedict. Time comes from a file
// the script controls with the `clock` command, so TTLs are tested without
// sleeping; scripts that do not set a clock get the real one.
func TestMain(m *testing.M) {
	// Built with -race, this test binary, which the tests run as livedict,
	// sleeps a second at every exit (ThreadSanitizer's atexit_sleep_ms),
	// which the real-process tests' timing does not allow for. Other
	// builds ignore GORACE.
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		os.Setenv("GORACE", strings.TrimSpace(g+" atexit_sleep_ms=0"))
	}
	testscript.Main(withHelper{m}, map[string]func(){
		"livedict": func() {
			sandbox.MaybeRunChild() // as main does
			app := &cmd.App{IO: cmd.SystemIO(), Clock: ttl.System}
			if f := os.Getenv("LIVEDICT_TEST_CLOCK_FILE"); f != "" {
				if _, err := os.Stat(f); err == nil {
					app.Clock = fileClock(f)
				}
			}
			// Set by tests of wake-ups (TestWaitWakes): no once-a-second
			// re-check hides a missing one.
			if d, err := time.ParseDuration(os.Getenv("LIVEDICT_TEST_WAKE_FALLBACK")); err == nil {
				wake.Fallback = d
			}
			// Set by tests of a host whose clock is off the Redis
			// server's (redis_clock_skew.txtar).
			if d, err := time.ParseDuration(os.Getenv("LIVEDICT_TEST_HOST_SKEW")); err == nil {
				store.RedisHostNow = func() time.Time { return time.Now().Add(d) }
			}
			// Set by the takeover tests: a dead deliverer's claims lapse
			// sooner than after the 30 s users get.
			if d, err := time.ParseDuration(os.Getenv("LIVEDICT_TEST_CLAIM_LEASE")); err == nil {
				hooks.DefaultLease = d
			}
			os.Exit(app.Run(os.Args[1:]))
		},
		// Where livedict re-executes itself as the hook sandbox helper
		// (no helper beside it: sharedBinDir's copy, say), it does so with
		// this argv[0].
		"livedict-sandbox": func() {
			sandbox.MaybeRunChild()
			os.Exit(2)
		},
	})
}

// withHelper builds the real sandbox helper (pkg/sandbox/livedict-sandbox)
// beside the copy of livedict testscript.Main put on PATH, in place of the
// copy of this test binary it put there under the helper's name, before
// any test runs: the hooks the tests run are sandboxed by the binary users
// get, built as the README's build line builds it (CGO_ENABLED=0: a
// dynamically linked helper spends about 3 ms more CPU starting).
type withHelper struct{ m *testing.M }

func (w withHelper) Run() int {
	bin, err := exec.LookPath("livedict")
	if err != nil {
		fmt.Fprintln(os.Stderr, "livedict is not on PATH:", err)
		return 1
	}
	helper := filepath.Join(filepath.Dir(bin), sandbox.HelperName)
	if err := os.Remove(helper); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", helper, "./pkg/sandbox/livedict-sandbox")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the sandbox helper:", err)
		return 1
	}
	return w.m.Run()
}

// fileClock reads the current time (Unix ms) from a file on every call.
type fileClock string

func (f fileClock) Now() time.Time {
	b, err := os.ReadFile(string(f))
	if err != nil {
		panic(err)
	}
	ms, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		panic(err)
	}
	return time.UnixMilli(ms)
}

func TestScripts(t *testing.T) {
	testscript.Run(t, scriptParams("testdata/script"))
}

func scriptParams(dir string) testscript.Params {
	return testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			home := filepath.Join(e.WorkDir, "home")
			e.Setenv("HOME", home)
			e.Setenv("XDG_DATA_HOME", filepath.Join(home, ".local", "share"))
			e.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
			e.Setenv("LIVEDICT_TEST_CLOCK_FILE", filepath.Join(e.WorkDir, ".clock"))
			e.Setenv("NO_COLOR", "")
			e.Setenv("TERM", "dumb")
			for _, k := range []string{"LIVEDICT_STORE", "LIVEDICT_BUCKET", "LIVEDICT_CONFIG", "LIVEDICT_COLOR", "LIVEDICT_FORCE_TTY"} {
				e.Setenv(k, "")
			}
			return nil
		},
		// [redis] holds only in TestScriptsRedis (redis_script_test.go).
		Condition: func(cond string) (bool, error) {
			if cond == "redis" {
				return false, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"clock": cmdClock,
			"exits": cmdExits,
		},
	}
}

// cmdClock controls the scripts' clock:
//
//	clock set 2026-01-01T00:00:00Z   (or @UNIXSECONDS)
//	clock advance 90s
func cmdClock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: clock set TIME | clock advance DURATION")
	}
	file := ts.Getenv("LIVEDICT_TEST_CLOCK_FILE")
	var ms int64
	switch args[0] {
	case "set":
		t, err := ttl.ParseTime(args[1])
		ts.Check(err)
		ms = t.UnixMilli()
	case "advance":
		b, err := os.ReadFile(file)
		if err != nil {
			ts.Fatalf("clock advance before clock set")
		}
		cur, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		ts.Check(err)
		d, err := ttl.ParseDuration(args[1])
		ts.Check(err)
		ms = cur + d.Milliseconds()
	default:
		ts.Fatalf("clock: unknown verb %q", args[0])
	}
	ts.Check(os.WriteFile(file, []byte(fmt.Sprint(ms)), 0o600))
}

// cmdExits runs a command as exec does (its stdout and stderr are what the
// next stdout and stderr lines match) and passes only when it exits with
// exactly status N; `! exec` would accept any failure.
//
//	exits 3 livedict --store bad.db get k
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: status %q is not a number", args[0])
	}
	got := 0
	var ee *exec.ExitError
	switch err := ts.Exec(args[1], args[2:]...); {
	case err == nil:
	case errors.As(err, &ee):
		got = ee.ExitCode() // -1 when a signal killed it
	default:
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}
