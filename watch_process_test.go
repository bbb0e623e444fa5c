package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// watcher is a 'livedict watch' running in the background, its stdout
// kept.
type watcher struct {
	p   *proc
	out *syncBuffer
}

func (e *procEnv) startWatch(args ...string) *watcher {
	e.tb.Helper()
	c := e.command(append([]string{"watch"}, args...)...)
	out := &syncBuffer{}
	c.Stdout = out
	return &watcher{p: e.startCmd(c), out: out}
}

// events returns "event key" for each line printed so far, and the lines.
func (w *watcher) events(t *testing.T) ([]string, []map[string]any) {
	t.Helper()
	var evs []string
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(w.out.String(), "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("watch printed %q: %v", l, err)
		}
		key, _ := m["key"].(string)
		if key == "ready" {
			continue
		}
		evs = append(evs, m["event"].(string)+" "+key)
		lines = append(lines, m)
	}
	return evs, lines
}

// Two watchers (one filtering by glob and --events) see, in commit order,
// the set, get and delete events of other commands, expire events from a
// command's lazy reap and from 'daemon --once', binary values as
// value_b64, and nothing of another bucket. SIGINT ends them with 130 and
// their socket files go; a writer with no watcher sends nothing.
func TestWatchProcess(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *procEnv) {
		all := e.startWatch()
		filt := e.startWatch("k*", "--events", "set,expire")
		// Ready when both heard a probe (the filtered one hears only k*).
		poll(t, 10*time.Second, "the watchers to start", func() bool {
			all.p.running()
			filt.p.running()
			e.mustRun("set", "kready", "1")
			time.Sleep(20 * time.Millisecond)
			return strings.Contains(all.out.String(), `"key":"kready"`) && strings.Contains(filt.out.String(), `"key":"kready"`)
		})
		e.mustRun("del", "kready")
		time.Sleep(100 * time.Millisecond)
		skipAll, skipFilt := len(all.out.String()), len(filt.out.String())

		e.mustRun("set", "k1", "v1")
		e.mustRun("set", "other", "o")
		e.mustRun("get", "k1")
		e.mustRun("del", "k1")
		if _, stderr, code := e.runInput([]byte{0xff, 0x00}, "set", "kbin"); code != 0 {
			t.Fatalf("set kbin: %d %s", code, stderr)
		}
		e.mustRun("-b", "elsewhere", "set", "k2", "x")
		e.mustRun("set", "kexp", "gone", "--ttl", "100ms")
		time.Sleep(300 * time.Millisecond)
		e.mustRun("set", "zz", "1") // reaps kexp first, in its own transaction
		e.mustRun("set", "kd", "d", "--ttl", "100ms")
		time.Sleep(300 * time.Millisecond)
		e.mustRun("daemon", "--once")

		wantAll := []string{"set k1", "set other", "get k1", "delete k1", "set kbin", "set kexp", "expire kexp", "set zz", "set kd", "expire kd"}
		wantFilt := []string{"set k1", "set kbin", "set kexp", "expire kexp", "set kd", "expire kd"}
		for _, c := range []struct {
			w    *watcher
			skip int
			want []string
		}{{all, skipAll, wantAll}, {filt, skipFilt, wantFilt}} {
			var got []string
			var lines []map[string]any
			poll(t, 10*time.Second, "the events", func() bool {
				c.w.p.running()
				rest := &watcher{out: &syncBuffer{}}
				rest.out.Write([]byte(c.w.out.String()[c.skip:]))
				got, lines = rest.events(t)
				return len(got) >= len(c.want)
			})
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("watch %s saw\n%v\nwant\n%v", strings.Join(c.w.p.cmd.Args[3:], " "), got, c.want)
			}
			for i, m := range lines {
				switch got[i] {
				case "set kbin":
					if m["value_b64"] != "/wA=" || m["value"] != nil {
						t.Errorf("binary value: %v", m)
					}
				case "expire kexp":
					if m["value"] != "gone" || m["bucket"] != "main" || m["hook_id"] != float64(0) {
						t.Errorf("expire event: %v", m)
					}
				}
			}
		}

		for _, w := range []*watcher{all, filt} {
			w.p.signal(os.Interrupt)
			if code := w.p.wait(10 * time.Second); code != 130 {
				t.Fatalf("watch after SIGINT: exit %d, want 130", code)
			}
			sock := filepath.Join(e.stateDir(), "watch-"+strconv.Itoa(w.p.pid())+".packed.sock")
			if _, err := os.Lstat(sock); !os.IsNotExist(err) {
				t.Fatalf("%s outlived its watcher: %v", sock, err)
			}
		}

		// No watcher holds the lock: a socket file that looks like a
		// watcher's gets nothing from a writer.
		sock := filepath.Join(e.stateDir(), "watch-1.sock")
		l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		e.mustRun("set", "k3", "v")
		e.mustRun("get", "k3")
		l.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 4096)
		if n, err := l.Read(buf); err == nil {
			t.Fatalf("a writer with no watcher sent %q", bytes.TrimSpace(buf[:n]))
		}
	})
}

// 'watch | head -1': once the reader of its stdout is gone, watch ends at
// once (exit 3, no error line, as for any command whose reader left),
// as GNU tail -f does, not at the next event, which may never come: the
// pipeline hung until another write happened to the store.
func TestWatchReaderGone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *procEnv) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		c := e.command("watch")
		c.Stdout = w
		p := e.startCmd(c)
		w.Close()
		var seen atomic.Bool
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				seen.Store(true)
				if strings.Contains(sc.Text(), `"key":"last"`) {
					break // head -1 here: the reader goes
				}
			}
			r.Close()
		}()
		poll(t, 10*time.Second, "watch to print an event", func() bool {
			p.running()
			e.mustRun("set", "ready", "v")
			time.Sleep(20 * time.Millisecond)
			return seen.Load()
		})
		e.mustRun("set", "last", "v") // the last write to the store
		<-done
		if code := p.wait(10 * time.Second); code != 3 {
			t.Fatalf("watch exited %d once its reader was gone, want 3", code)
		}
		if s := p.stderr.String(); s != "" {
			t.Errorf("stderr %q, want nothing", s)
		}
	})
}

// A watch that did not end by itself (its terminal closed: SIGHUP; or
// kill -9) leaves its socket file; the next watcher removes it, and
// leaves a running watcher's alone. They used to pile up in the state
// folder, one per closed session, each costing every event a send.
func TestWatchRemovesStaleSockets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *procEnv) {
		sockOf := func(w *watcher) string {
			return filepath.Join(e.stateDir(), "watch-"+strconv.Itoa(w.p.pid())+".packed.sock")
		}
		bound := func(w *watcher) func() bool {
			return func() bool {
				w.p.running()
				_, err := os.Lstat(sockOf(w))
				return err == nil
			}
		}
		live := e.startWatch()
		poll(t, 10*time.Second, "the first watcher's socket", bound(live))
		var dead []string
		for _, sig := range []os.Signal{syscall.SIGHUP, syscall.SIGKILL} {
			w := e.startWatch()
			poll(t, 10*time.Second, "a watcher's socket", bound(w))
			w.p.signal(sig)
			w.p.wait(10 * time.Second)
			if _, err := os.Lstat(sockOf(w)); err != nil {
				t.Fatalf("precondition: the socket of a watch killed by %v is gone already: %v", sig, err)
			}
			dead = append(dead, sockOf(w))
		}
		next := e.startWatch()
		poll(t, 10*time.Second, "the dead watchers' sockets to go once the next one started", func() bool {
			next.p.running()
			for _, sock := range dead {
				if _, err := os.Lstat(sock); !os.IsNotExist(err) {
					return false
				}
			}
			return true
		})
		if _, err := os.Lstat(sockOf(live)); err != nil {
			t.Errorf("a running watcher's socket was removed: %v", err)
		}
	})
}

// 'watch GLOB' matches keys that are not UTF-8 bytewise, as 'keys GLOB'
// does: such a key's event carries key_b64, not key, and the watcher
// filtered on "key" alone, so 'watch "k*"' never printed them (found by
// the binsafe review).
func TestWatchGlobBinaryKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *procEnv) {
		w := e.startWatch("k*")
		poll(t, 10*time.Second, "the watcher to start", func() bool {
			w.p.running()
			e.mustRun("set", "kready", "1")
			time.Sleep(20 * time.Millisecond)
			return strings.Contains(w.out.String(), `"key":"kready"`)
		})
		skip := len(w.out.String())
		e.mustRun("set", "--", "k\xff", "v")
		e.mustRun("set", "--", "\xffk", "v") // does not match k*
		e.mustRun("set", "klast", "v")
		poll(t, 10*time.Second, "the events", func() bool {
			w.p.running()
			return strings.Contains(w.out.String()[skip:], `"key":"klast"`)
		})
		out := w.out.String()[skip:]
		if !strings.Contains(out, `"key_b64":"a/8="`) {
			t.Errorf("watch k* missed the set of k\\xff:\n%s", out)
		}
		if strings.Contains(out, `"key_b64":"/2s="`) {
			t.Errorf("watch k* printed the set of \\xffk:\n%s", out)
		}
		w.p.signal(os.Interrupt)
		w.p.wait(10 * time.Second)
	})
}
