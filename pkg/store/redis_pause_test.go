package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livedict/livedict/pkg/store/redistest"
)

// A server in CLIENT PAUSE WRITE (a failover, an operator) holds every
// write command until the pause ends, however long that is. A commit must
// not hold its command that long: it gives up at the busy timeout, and
// says only what is certain.
//
// Each test here runs a server of its own: a pause stops every client of
// the server, and the shared one serves other packages' tests.

// pausedServer starts a server and returns it with an admin client.
func pausedServer(t *testing.T) (*redistest.Server, *redis.Client) {
	t.Helper()
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no")
	admin := srv.Client()
	t.Cleanup(func() { admin.Do(context.Background(), "CLIENT", "UNPAUSE") })
	return srv, admin
}

func pauseWrites(t *testing.T, admin *redis.Client, d time.Duration) {
	t.Helper()
	if err := admin.Do(context.Background(), "CLIENT", "PAUSE", d.Milliseconds(), "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
}

// updateWithin runs fn in an Update of s and returns its error and how
// long it took; a commit still waiting after limit fails the test (the
// pause is lifted so that it ends).
func updateWithin(t *testing.T, admin *redis.Client, s Store, limit time.Duration, fn func(Tx) error) (error, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- s.Update(context.Background(), fn) }()
	select {
	case err := <-done:
		return err, time.Since(start)
	case <-time.After(limit):
		admin.Do(context.Background(), "CLIENT", "UNPAUSE")
		err := <-done
		t.Fatalf("the write still waited for the paused server after %s (then, unpaused: %v)", limit, err)
		return nil, 0
	}
}

// The two ways a commit is sent: one script call, and for a large commit
// (an import) MULTI/EXEC streamed in chunks. write(name) writes key name,
// or keys name00000… in an import; first(name) is the first key written.
var pausedCommits = []struct {
	name  string
	write func(name string) func(Tx) error
	first func(name string) string
}{
	{"script", func(name string) func(Tx) error {
		return func(tx Tx) error {
			_, err := Set(tx, Limits{}, SetArgs{Bucket: "b", Key: name, Value: []byte("v")})
			return err
		}
	}, func(name string) string { return name }},
	{"multi", func(name string) func(Tx) error {
		at := time.Now().Add(time.Hour).UnixMilli()
		entries := make([]Entry, 5000) // over redisScriptArgs
		for i := range entries {
			entries[i] = Entry{Bucket: "b", Key: fmt.Sprintf("%s%05d", name, i), Value: []byte("v"), ExpiresAt: at}
		}
		return func(tx Tx) error {
			_, err := Import(tx, Limits{}, entries, ReplaceExisting)
			return err
		}
	}, func(name string) string { return name + "00000" }},
}

// Under a long CLIENT PAUSE WRITE a write gives up at the busy timeout
// with ErrBusy, says the server is pausing writes and that nothing was
// written, and nothing is: not when it gives up, not when the pause ends.
// Reads keep working during the pause. A pause that ends within the busy
// timeout only delays the write, and a large commit that takes the server
// longer than the busy timeout to receive and run is no pause.
func TestRedisWritePauseGivesUpAtBusyTimeout(t *testing.T) {
	for _, c := range pausedCommits {
		t.Run(c.name, func(t *testing.T) {
			srv, admin := pausedServer(t)
			ctx := context.Background()
			url := srv.URL + "?prefix=p"

			// A short pause only delays a write.
			patient, err := Open(url, Options{BusyTimeout: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer patient.Close()
			set(t, patient, "b", "before", "old", 0)
			pauseWrites(t, admin, 300*time.Millisecond)
			if err, took := updateWithin(t, admin, patient, 20*time.Second, c.write("short")); err != nil {
				t.Fatalf("write during a 300ms pause: %v (after %s)", err, took)
			}
			if _, ok := get(t, patient, "b", c.first("short")); !ok {
				t.Fatal("the write made through a short pause is missing")
			}

			if c.name == "multi" {
				// A large commit the server takes long to receive and run
				// (no pause) is waited for, however short the busy
				// timeout: it is this command's own work.
				hasty, err := Open(url, Options{BusyTimeout: 50 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				defer hasty.Close()
				entries := make([]Entry, 200000)
				for i := range entries {
					entries[i] = Entry{Bucket: "slow", Key: fmt.Sprintf("k%07d", i), Value: []byte("value")}
				}
				if err := hasty.Update(ctx, func(tx Tx) error {
					_, err := Import(tx, Limits{}, entries, FailOnExisting)
					return err
				}); err != nil {
					t.Fatalf("a large import with a 50ms busy timeout: %v", err)
				}
				view(t, hasty, func(tx Tx) error {
					n, err := tx.Count("slow")
					if n != int64(len(entries)) {
						t.Errorf("imported %d keys, want %d", n, len(entries))
					}
					return err
				})
			}

			// A long one makes it give up.
			busy := 500 * time.Millisecond
			s, err := Open(url, Options{BusyTimeout: busy})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			fence := admin.Get(ctx, "{p}:fence").Val()
			pauseWrites(t, admin, 30*time.Second)
			err, took := updateWithin(t, admin, s, busy+10*time.Second, c.write("k"))
			if !errors.Is(err, ErrBusy) || KindOf(err) != KindStore {
				t.Fatalf("write under a 30s pause: %v (kind %v), want ErrBusy", err, KindOf(err))
			}
			for _, want := range []string{"CLIENT PAUSE", "nothing written"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			// Generous: a loaded machine is slow to answer, never early.
			if took < busy || took > busy+5*time.Second {
				t.Errorf("gave up after %s; busy timeout %s", took, busy)
			}
			t.Logf("gave up after %s: %v", took, err)

			// Reads work during the pause, and see nothing of the write.
			start := time.Now()
			if e, ok := get(t, s, "b", "before"); !ok || string(e.Value) != "old" {
				t.Fatalf("read during the pause: %q %v", e.Value, ok)
			}
			if _, ok := get(t, s, "b", c.first("k")); ok {
				t.Fatal("the write that gave up is there")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("reads during the pause took %s", d)
			}

			// The pause ends: the abandoned commit must not run then.
			if err := admin.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			if _, ok := get(t, s, "b", c.first("k")); ok {
				t.Fatal("the write reported as not written landed when the pause ended")
			}
			if n := admin.Exists(ctx, "{p}:v:1:b:"+c.first("k")).Val(); n != 0 {
				t.Fatal("the value of the write that gave up is on the server")
			}
			if f := admin.Get(ctx, "{p}:fence").Val(); f != fence {
				t.Fatalf("fence moved from %q to %q: something committed", fence, f)
			}
			// And the store works as before.
			set(t, s, "b", "after", "new", 0)
		})
	}
}

// A Redis user who may not run the CLIENT commands the check needs gets
// the honest answer instead: exit 3 at the busy timeout, saying the write
// may or may not have been applied (the server still holds it, and would
// run it if the pause ended while livedict still ran).
func TestRedisWritePauseWithoutClientCommandsIsUncertain(t *testing.T) {
	for _, c := range []struct{ user, acl, says string }{
		{"noclient", "-client", "CLIENT ID"},
		{"nolist", "-@admin", "CLIENT LIST"},
		{"nokill", "-client|kill", "CLIENT KILL"},
	} {
		t.Run(c.user, func(t *testing.T) {
			srv, admin := pausedServer(t)
			ctx := context.Background()
			if err := admin.Do(ctx, "ACL", "SETUSER", c.user, "on", ">secretpw", "~{p}*", "&{p}*", "+@all", c.acl).Err(); err != nil {
				t.Fatal(err)
			}
			busy := 500 * time.Millisecond
			s, err := Open("unix://"+c.user+":secretpw@"+srv.Sock+"?prefix=p", Options{BusyTimeout: busy})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			set(t, s, "b", "before", "old", 0)
			// The write runs on a connection Open did not check, whose id
			// its first read asks for (CLIENT ID), as a second concurrent
			// transaction's would.
			rs := s.(*redisStore)
			rs.connMu.Lock()
			rs.idle.Close()
			rs.idle = nil
			rs.connMu.Unlock()
			pauseWrites(t, admin, 30*time.Second)
			err, took := updateWithin(t, admin, s, busy+10*time.Second, pausedCommits[0].write("k"))
			if !errors.Is(err, ErrUncertain) || errors.Is(err, ErrBusy) || KindOf(err) != KindStore {
				t.Fatalf("write under a 30s pause: %v (kind %v), want ErrUncertain", err, KindOf(err))
			}
			msg := err.Error()
			for _, want := range []string{"may or may not have been applied", c.says} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, "secretpw") {
				t.Errorf("error is not one line without the password: %q", msg)
			}
			if took < busy || took > busy+5*time.Second {
				t.Errorf("gave up after %s; busy timeout %s", took, busy)
			}
			t.Logf("gave up after %s: %v", took, err)
			if e, ok := get(t, s, "b", "before"); !ok || string(e.Value) != "old" {
				t.Fatalf("read during the pause: %q %v", e.Value, ok)
			}
		})
	}
}

// Writes of one process held at once by a paused server each give up at
// the busy timeout, saying nothing was written: the look at a held commit
// must find a connection though the held commits hold every one the
// client's pool has.
func TestRedisWritePauseManyAtOnce(t *testing.T) {
	srv, admin := pausedServer(t)
	busy := 500 * time.Millisecond
	s, err := Open(srv.URL+"?prefix=p", Options{BusyTimeout: busy})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	set(t, s, "b", "before", "old", 0)
	pauseWrites(t, admin, 30*time.Second)
	const n = 4 // as many as the client's pool has connections
	errs := make(chan error, n)
	start := time.Now()
	for i := range n {
		go func() {
			errs <- s.Update(context.Background(), pausedCommits[0].write(fmt.Sprintf("k%d", i)))
		}()
	}
	timeout := time.After(busy + 10*time.Second)
	for range n {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrWritesPaused) {
				t.Errorf("write under a 30s pause: %v, want ErrBusy: nothing written", err)
			}
		case <-timeout:
			admin.Do(context.Background(), "CLIENT", "UNPAUSE")
			t.Fatalf("writes still waited for the paused server after %s", time.Since(start))
		}
	}
	t.Logf("all gave up after %s", time.Since(start))
}

// A long-lived process (the daemon) whose user may not stop a held commit
// leaves each one to the server, holding a connection of the client's
// pool until the pause ends. The writes after the pool's last connection
// is taken still give up at the busy timeout, not at go-redis's pool
// timeout (30 s) or at the pause's end.
func TestRedisWritePauseUncertainLeavesNoHang(t *testing.T) {
	srv, admin := pausedServer(t)
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "nokill", "on", ">secretpw", "~{p}*", "&{p}*", "+@all", "-client|kill").Err(); err != nil {
		t.Fatal(err)
	}
	busy := 300 * time.Millisecond
	s, err := Open("unix://nokill:secretpw@"+srv.Sock+"?prefix=p", Options{BusyTimeout: busy})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	set(t, s, "b", "before", "old", 0)
	pauseWrites(t, admin, 60*time.Second)
	for i := range 6 {
		err, took := updateWithin(t, admin, s, busy+5*time.Second, pausedCommits[0].write(fmt.Sprint("k", i)))
		if !errors.Is(err, ErrUncertain) && !errors.Is(err, ErrBusy) {
			t.Fatalf("write %d under a 60s pause: %v, want ErrUncertain or ErrBusy", i, err)
		}
		t.Logf("write %d gave up after %s: %v", i, took, err)
	}
}

// A watch event published after a commit (a watcher runs) gives up at the
// busy timeout too: a pause that starts between the commit and its
// PUBLISH held the command for the whole pause.
func TestRedisPublishPausedGivesUp(t *testing.T) {
	srv, admin := pausedServer(t)
	s, err := Open(srv.URL+"?prefix=p", Options{BusyTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bus := s.(interface {
		Publish(context.Context, []byte) error
	})
	if err := bus.Publish(context.Background(), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	pauseWrites(t, admin, 30*time.Second)
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- bus.Publish(context.Background(), []byte("{}")) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a PUBLISH the server held reported success")
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("gave up after %s, busy_timeout 300ms", took)
		}
	case <-time.After(10 * time.Second):
		admin.Do(context.Background(), "CLIENT", "UNPAUSE")
		<-done
		t.Fatal("PUBLISH still waited for the paused server after 10s")
	}
}
