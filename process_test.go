package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run many real livedict processes against one store, the way
// scripts and cron jobs meet it.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// livedictBinary builds the real binary once per test run.
func livedictBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "livedict-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "livedict")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func storeURLs(t *testing.T) map[string]string {
	dir := t.TempDir()
	return map[string]string{
		"sqlite": "sqlite:" + filepath.Join(dir, "s.db"),
		"file":   "file:" + filepath.Join(dir, "files"),
	}
}

// run runs livedict and returns stdout, stderr and the exit code.
func run(t *testing.T, store string, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	return runEnv(t, store, nil, stdin, args...)
}

// runEnv is run with extra environment variables.
func runEnv(t *testing.T, store string, env []string, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	c := exec.Command(livedictBinary(t), append([]string{"--store", store}, args...)...)
	// A loaded CI machine can starve one of 32 waiting writers for more
	// than the default 5 s; these tests are about correctness, not latency.
	c.Env = append(append(os.Environ(), "HOME="+t.TempDir(), "LIVEDICT_BUSY_TIMEOUT=60s"), env...)
	c.Stdin = bytes.NewReader(stdin)
	return runCmd(t, c)
}

// runCmd runs c and returns its stdout, stderr and exit code.
func runCmd(t *testing.T, c *exec.Cmd) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestManyProcessesIncr(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 1,600 processes; skipped with -short")
	}
	procs, each := 32, 50
	for name, url := range storeURLs(t) {
		t.Run(name, func(t *testing.T) {
			run(t, url, nil, "set", "warm", "x") // create the store first
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failures []string
			for p := 0; p < procs; p++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < each; i++ {
						_, stderr, code := run(t, url, nil, "incr", "counter")
						if code != 0 || stderr != "" {
							mu.Lock()
							failures = append(failures, fmt.Sprintf("exit %d: %s", code, stderr))
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			if len(failures) > 0 {
				t.Fatalf("%d of %d incr failed, first: %s", len(failures), procs*each, failures[0])
			}
			out, _, _ := run(t, url, nil, "get", "counter")
			if out != fmt.Sprint(procs*each) {
				t.Fatalf("counter = %q, want %d", out, procs*each)
			}
		})
	}
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
	for name, url := range storeURLs(t) {
		t.Run(name, func(t *testing.T) {
			if _, stderr, code := run(t, url, nil, "set", "committed", "before"); code != 0 {
				t.Fatalf("set: %d %s", code, stderr)
			}
			outcomes := map[string]int{}
			for round := 0; round < 6; round++ {
				run(t, url, nil, "del", "k000000", "k019999") // undo a finished import
				run(t, url, nil, "bucket", "drop", "main", "--yes")
				run(t, url, nil, "set", "committed", "before")
				c := exec.Command(livedictBinary(t), "--store", url, "import", "--replace")
				c.Stdin = bytes.NewReader(jsonl.Bytes())
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Duration(20+round*40) * time.Millisecond)
				c.Process.Signal(syscall.SIGKILL)
				c.Wait()

				out, stderr, code := run(t, url, nil, "keys", "k*")
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
				if v, _, _ := run(t, url, nil, "get", "committed"); v != "before" {
					t.Fatalf("round %d: committed value lost: %q", round, v)
				}
			}
			t.Logf("%s: outcomes of killed imports: %v", name, outcomes)
		})
	}
}
