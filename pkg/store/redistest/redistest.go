// Package redistest gives tests a real Redis server: the one named by
// LIVEDICT_TEST_REDIS (a URL; each caller gets its own key prefix and
// cleans up after itself), or else a redis-server it starts for the test
// on a private unix socket in a fresh folder, with persistence off.
// A missing redis-server fails the test: the Redis backend is never
// silently left untested.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Env names the variable that points tests at a running server.
const Env = "LIVEDICT_TEST_REDIS"

// URL returns a store URL on a real server with a prefix no other test
// uses. Keys under the prefix are deleted when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	prefix := "t" + randomHex(t)
	base := os.Getenv(Env)
	if base == "" {
		base = Start(t, "--save", "", "--appendonly", "no")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", Env, err)
	}
	q := u.Query()
	q.Set("prefix", prefix)
	u.RawQuery = q.Encode()
	full := u.String()
	t.Cleanup(func() { cleanPrefix(t, base, prefix) })
	return full
}

func randomHex(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// Main runs a package's tests with LIVEDICT_TEST_REDIS pointing at one
// server for the whole run: the one already named, or one it starts and
// stops. Use it from TestMain: os.Exit(redistest.Main(m)).
func Main(m *testing.M) int {
	if os.Getenv(Env) != "" {
		return m.Run()
	}
	url, stop, err := start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "redistest:", err)
		return 1
	}
	defer stop()
	os.Setenv(Env, url)
	defer os.Unsetenv(Env)
	return m.Run()
}

// Start runs a redis-server with args on a unix socket in a new folder and
// returns its unix:// URL; the server is stopped when the test ends.
func Start(t testing.TB, args ...string) string {
	t.Helper()
	url, stop, err := start(args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return url
}

// Launch is Start for callers that are not a test (a testscript command):
// it returns the server's unix:// URL and a function that stops it and
// removes its folder.
func Launch(args ...string) (string, func(), error) { return start(args...) }

func start(args ...string) (string, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("redis-server is needed for the Redis tests (apt-get install redis-server): %v", err)
	}
	// A short folder: unix socket paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "ldr")
	if err != nil {
		return "", nil, err
	}
	sock := filepath.Join(dir, "redis.sock")
	all := append([]string{"--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, "log")}, args...)
	cmd := exec.Command(bin, all...)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: sock, DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	for i := 0; ; i++ {
		var reply redis.Error // any reply, NOAUTH too, says the server is up
		if err := c.Ping(context.Background()).Err(); err == nil || errors.As(err, &reply) {
			break
		} else if i > 500 {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			stop()
			return "", nil, fmt.Errorf("redis-server did not answer: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "unix://" + sock, stop, nil
}

// cleanPrefix deletes every key of the store under prefix.
func cleanPrefix(t testing.TB, base, prefix string) {
	opts, err := clientOptions(base)
	if err != nil {
		return
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, "{"+prefix+"}:*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if len(keys) > 0 {
		c.Del(ctx, keys...)
	}
}

func clientOptions(base string) (*redis.Options, error) {
	if strings.HasPrefix(base, "unix://") {
		u, err := url.Parse(base)
		if err != nil {
			return nil, err
		}
		return &redis.Options{Network: "unix", Addr: u.Path, DisableIdentity: true}, nil
	}
	o, err := redis.ParseURL(base)
	if err != nil {
		return nil, err
	}
	o.DisableIdentity = true
	return o, nil
}

// Server is a redis-server started for one test, which the test may crash
// and start again on the same folder and socket (chaos tests: with
// --appendonly yes its data survives).
type Server struct {
	URL  string // unix:///…/redis.sock
	Sock string // the socket's path
	tb   testing.TB
	dir  string
	args []string
	cmd  *exec.Cmd
}

// StartServer runs a redis-server with args as Start does and returns it;
// it is stopped, and its folder removed, when the test ends.
func StartServer(tb testing.TB, args ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server is needed for the Redis tests (apt-get install redis-server): %v", err)
	}
	dir, err := os.MkdirTemp("", "ldr")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{tb: tb, dir: dir, Sock: filepath.Join(dir, "redis.sock")}
	s.URL = "unix://" + s.Sock
	s.args = append([]string{bin, "--port", "0", "--unixsocket", s.Sock, "--unixsocketperm", "700",
		"--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, "log")}, args...)
	tb.Cleanup(func() {
		s.Kill()
		os.RemoveAll(dir)
	})
	s.Start()
	return s
}

// Start starts the server again after Kill, and returns once it answers.
func (s *Server) Start() {
	s.tb.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Sock, DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	for i := 0; ; i++ {
		var reply redis.Error
		err := c.Ping(context.Background()).Err()
		if err == nil || errors.As(err, &reply) && !strings.HasPrefix(err.Error(), "LOADING") {
			return
		}
		if i > 1500 {
			log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
			s.tb.Fatalf("redis-server did not answer: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill kills the server with SIGKILL (a crash: no shutdown save) and
// waits for it to end.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Client is a go-redis client on the server, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Sock, DisableIdentity: true})
	s.tb.Cleanup(func() { c.Close() })
	return c
}
