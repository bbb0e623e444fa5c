package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/livedict/livedict/pkg/store/redistest"
)

// TestScriptsRedis runs every script of testdata/script, and the
// Redis-only scripts of testdata/redis, against a real redis-server:
// $REDIS is a store URL with a key prefix of the script's own, so the
// scripts run in parallel on one server. In testdata/script the store is
// the Redis one through LIVEDICT_STORE (so `--store` and `env
// LIVEDICT_STORE=` lines still pick their own), and the `[redis]`
// condition holds; scripts about local files opt out with
// `[redis] skip 'why'` (listed in testdata/script/README.md), and a script
// whose first command sets LIVEDICT_STORE is left out: it never touches
// the Redis store, and the machine's minutes are better spent elsewhere.
func TestScriptsRedis(t *testing.T) {
	// Uncompressed snapshots: encrypt.txtar greps one for plaintext.
	base := redistest.Start(t, "--save", "", "--appendonly", "no", "--rdbcompression", "no",
		"--repl-diskless-sync-delay", "0") // redis-cli --rdb: no 5 s wait for other replicas
	scripts, err := filepath.Glob("testdata/script/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	own, err := filepath.Glob("testdata/redis/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	shared := make(map[string]bool, len(scripts))
	var files []string
	for _, f := range scripts {
		other, err := namesOwnStore(f)
		if err != nil {
			t.Fatal(err)
		}
		if other {
			continue // TestScripts runs it; here it would only run again
		}
		shared[filepath.Base(f)] = true
		files = append(files, f)
	}
	p := scriptParams("")
	p.Files = append(files, own...)
	p.Condition = func(cond string) (bool, error) {
		if cond == "redis" {
			return true, nil
		}
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	p.Cmds["silent-server"] = cmdSilentServer
	p.Cmds["redis-server"] = cmdRedisServer
	setup := p.Setup
	p.Setup = func(e *testscript.Env) error {
		if err := setup(e); err != nil {
			return err
		}
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		u, err := url.Parse(base)
		if err != nil {
			return err
		}
		u.RawQuery = "prefix=s" + hex.EncodeToString(b)
		e.Setenv("REDIS", u.String())
		e.Setenv("REDIS_SOCK", u.Path)
		e.Setenv("LIVEDICT_REDIS_PASSWORD", "")
		name := strings.TrimPrefix(filepath.Base(e.WorkDir), "script-")
		if shared[name+".txtar"] {
			e.Setenv("LIVEDICT_STORE", u.String())
		}
		return nil
	}
	testscript.Run(t, p)
}

// cmdSilentServer listens on a loopback TCP port and never answers: the
// kernel completes connections into the backlog, nothing reads them. It
// sets the named variable to the listener's host:port, and closes it when
// the script ends.
//
//	silent-server ADDR
func cmdSilentServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: silent-server VAR")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Defer(func() { l.Close() })
	ts.Setenv(args[0], l.Addr().String())
}

// cmdRedisServer starts a redis-server of the script's own (for steps that
// would disturb the other scripts on the shared one, such as CLIENT
// PAUSE), stopped when the script ends. It sets VAR to its store URL and
// VAR_SOCK to its socket.
//
//	redis-server VAR
func cmdRedisServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: redis-server VAR")
	}
	u, stop, err := redistest.Launch("--save", "", "--appendonly", "no")
	ts.Check(err)
	ts.Defer(stop)
	ts.Setenv(args[0], u)
	ts.Setenv(args[0]+"_SOCK", strings.TrimPrefix(u, "unix://"))
}

// namesOwnStore reports whether a script's first command (comments and
// blank lines aside) is `env LIVEDICT_STORE=...`: a script about another
// backend, which runs the same on Redis as in TestScripts.
func namesOwnStore(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "env LIVEDICT_STORE=") && line != "env LIVEDICT_STORE=":
			return true, nil
		}
		return false, nil
	}
	return false, nil
}
