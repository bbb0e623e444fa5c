package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/store/redistest"
)

// Chaos tests of the Redis backend with real processes on a real
// redis-server (each test starts its own, with the options it needs):
// the server crashing mid-run, livedict's connection killed mid-import,
// a daemon killed mid-delivery, three daemons sharing a flood of expiries.
//
// A "host" is an environment of its own (HOME, XDG dirs, the local state
// folder: locks, sockets, hooks' work dirs) on the one machine; hosts that
// run the same hooks share one hook_key_file, as an operator would copy it.

// newRedisEnv is the harness's procEnv on the store at url: its
// processes are the first host.
func newRedisEnv(t *testing.T, url string) *procEnv {
	t.Helper()
	e := newProcEnv(t, "sqlite") // its private folder and environment; its SQLite store stays unused
	e.url, e.backend, e.path = url, "redis", url
	e.setenv("XDG_STATE_HOME=" + filepath.Join(e.dir, "state"))
	return e
}

// redisStateDir is the host's local state folder for the store: the one
// folder livedict made under its XDG_STATE_HOME (none before it ran).
func (e *procEnv) redisStateDir() string {
	dirs, _ := filepath.Glob(filepath.Join(e.dir, "state", "livedict", "redis", "*"))
	if len(dirs) != 1 {
		return filepath.Join(e.dir, "state", "none")
	}
	return dirs[0]
}

// host is another host on e's store: a fresh HOME and state folder. With
// sharedKey its hook_key_file is e's, so it runs the hooks e signs.
func (e *procEnv) host(name string, sharedKey bool) *procEnv {
	e.tb.Helper()
	h := *e
	h.dir = filepath.Join(e.dir, name)
	if err := os.Mkdir(h.dir, 0o700); err != nil {
		e.tb.Fatal(err)
	}
	home := filepath.Join(h.dir, "home")
	h.env = append(slices.Clone(e.env), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"), "XDG_STATE_HOME="+filepath.Join(h.dir, "state"))
	if sharedKey {
		h.env = append(h.env, "LIVEDICT_HOOK_KEY_FILE="+filepath.Join(e.dir, "home", ".config", "livedict", "hook.key"))
	}
	e.tb.Cleanup(h.stopDispatcher)
	return &h
}

// The server crashes (SIGKILL) and comes back, twice, while 32 processes
// each run 50 'incr': with appendonly yes and appendfsync always, every
// increment acknowledged with exit 0 is in the final value; the ones that
// failed exit 3, and each of them counts at most once (its EXEC may have
// run before the connection died).
func TestRedisServerRestartDuringIncr(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "yes", "--appendfsync", "always")
	e := newRedisEnv(t, srv.URL+"?prefix=incr")
	e.setenv("LIVEDICT_CONNECT_TIMEOUT=10s")

	var acked, failed, started atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		parallel(32, func(i int) {
			for j := 0; j < 50; j++ {
				started.Add(1)
				_, errOut, code := e.run("--no-hooks", "incr", "n")
				switch code {
				case 0:
					acked.Add(1)
				case 3:
					failed.Add(1)
				default:
					t.Errorf("incr exited %d: %s", code, errOut)
				}
			}
		})
	}()
	for _, at := range []int64{300, 900} {
		waitProgress(t, time.Minute, "incrs to run", func() (int64, bool) { return started.Load(), started.Load() >= at })
		srv.Kill()
		time.Sleep(200 * time.Millisecond) // some incrs find no server
		srv.Start()
	}
	<-done

	out := strings.TrimSpace(e.mustRun("get", "n"))
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		t.Fatalf("get n: %q", out)
	}
	a, f := acked.Load(), failed.Load()
	t.Logf("final %d, acknowledged %d, failed %d", n, a, f)
	if a+f != 32*50 {
		t.Fatalf("%d acknowledged + %d failed != %d", a, f, 32*50)
	}
	if f == 0 {
		t.Fatal("no incr failed: the restarts did not happen mid-run")
	}
	if n < a || n > a+f {
		t.Fatalf("final value %d, want between the %d acknowledged and %d (acknowledged + failed)", n, a, a+f)
	}
}

// livedict's connection is killed (CLIENT KILL) again and again while it
// imports a large file: the import fails with exit 3 and leaves nothing,
// or it got through and left everything; never part of it.
func TestRedisClientKillMidImport(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no")
	e := newRedisEnv(t, srv.URL+"?prefix=imp")
	const n = 200_000
	var in bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, "{\"key\":\"k%06d\",\"value\":\"%s\"}\n", i, strings.Repeat("v", 40))
	}
	file := filepath.Join(e.dir, "in.jsonl")
	if err := os.WriteFile(file, in.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	e.mustRun("set", "before", "x") // a key the import must not disturb

	c := srv.Client()
	ctx := context.Background()
	// Kill every connection but ours once the import's connection is there
	// and has sent something, then keep killing until it ends.
	p := e.start("--no-hooks", "import", file)
	var kills int64
	for !p.exited() {
		k, err := c.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Int64()
		if err != nil {
			t.Fatal(err)
		}
		kills += k
		time.Sleep(2 * time.Millisecond)
	}
	code := p.wait(time.Minute)
	keys := strings.Count(e.mustRun("keys"), "\n")
	t.Logf("import exit %d after %d connection kills; %d keys", code, kills, keys)
	if kills == 0 {
		t.Fatal("the import's connection was never killed")
	}
	switch {
	case code != 0 && code != 3:
		t.Fatalf("import exit %d, want 3 (or 0):\n%s", code, p.stderr.String())
	case code == 0 && keys != n+1:
		t.Fatalf("import exit 0 but %d keys, want %d", keys, n+1)
	case keys != 1 && keys != n+1:
		t.Fatalf("import half-written: %d keys, want 1 (none imported) or %d (all)", keys, n+1)
	}
	if code == 3 && !strings.Contains(p.stderr.String(), srv.Sock) {
		t.Errorf("import's error does not name the server:\n%s", p.stderr.String())
	}
	// The store still works, and a second import succeeds whole.
	e.mustRun("--no-hooks", "import", "--replace", file)
	if keys := strings.Count(e.mustRun("keys"), "\n"); keys != n+1 {
		t.Fatalf("after a clean import: %d keys, want %d", keys, n+1)
	}
}
