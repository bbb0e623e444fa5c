package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// spawnerOf returns the running spawner of this test's helper for wd.
func spawnerOf(t *testing.T, wd string, helperInit bool) *spawner {
	t.Helper()
	helper, err := defaultHelper()
	if err != nil {
		t.Fatal(err)
	}
	spawners.mu.Lock()
	defer spawners.mu.Unlock()
	key := helper + "\x00" + wd
	if helperInit {
		key += "\x00helper"
	}
	return spawners.m[key]
}

// procStatus reads one field of /proc/PID/status.
func procStatus(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return ""
}

// TestRunsGoThroughTheSpawner: where namespaces work, a hook is started
// by its work dir's spawner, not by livedict (whose fork for a new user
// namespace is what the spawner saves): the hook itself, in a namespace of
// its own behind a stand-in init, with every layer the helper would have
// given it and its limits set before it ran (see startDirect), or, asked
// for, through the helper as its init.
func TestRunsGoThroughTheSpawner(t *testing.T) {
	if os.Getuid() == 0 && os.Getenv(unprivilegedEnv) == "" {
		t.Run("as-nobody", func(t *testing.T) { runAsNobody(t, "TestRunsGoThroughTheSpawner") })
	}
	needLayer(t, layerPIDNS)
	for _, helperInit := range []bool{false, true} {
		t.Run(fmt.Sprintf("helperInit=%v", helperInit), func(t *testing.T) {
			wd := t.TempDir()
			m := marker()
			done := startSleepingHook(t, wd, m, helperInit)
			sp := spawnerOf(t, wd, helperInit)
			if sp == nil {
				t.Fatal("no spawner for the work dir")
			}
			// The process the spawner started: the helper, with the marker
			// in its configuration, or the hook (sh -c '...; exec sleep
			// MARKER'). Looked for until it shows: on a loaded machine the
			// work dir's ready file may come first.
			var ours int
			deadline := time.Now().Add(10 * time.Second)
			for ours == 0 && time.Now().Before(deadline) {
				entries, _ := os.ReadDir("/proc")
				for _, e := range entries {
					b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
					if err != nil || !strings.Contains(string(b), m) {
						continue
					}
					st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
					if err == nil && strings.Contains(string(st), fmt.Sprintf("\nPPid:\t%d\n", sp.cmd.Process.Pid)) {
						ours, _ = strconv.Atoi(e.Name())
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
			if ours == 0 {
				t.Fatalf("no process with %s started by the spawner %d", m, sp.cmd.Process.Pid)
			}
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ours))
			if isHelper := strings.Contains(string(cmdline), childArg); isHelper != helperInit {
				t.Errorf("the spawner started %q", cmdline)
			}
			if !helperInit {
				// PID 2 of its own namespace, whose PID 1 is the stand-in
				// init, stopped at its exec; every per-process layer.
				if ns := strings.Fields(procStatus(t, ours, "NSpid")); len(ns) != 2 || ns[1] != "2" {
					t.Errorf("NSpid %v, want PID 2 in a namespace of its own", ns)
				}
				// Every stand-in init on the machine is listed, those of
				// other packages' hooks too (go test runs packages side by
				// side): one that ends between the listing and the read of
				// its status is not ours.
				var init int
				for _, pid := range procsWith(HelperName, "init") {
					b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
					if err == nil && strings.Contains(string(b), fmt.Sprintf("\nPPid:\t%d\n", sp.cmd.Process.Pid)) {
						init = pid
					}
				}
				if init == 0 {
					t.Fatal("no stand-in init")
				}
				if ns := strings.Fields(procStatus(t, init, "NSpid")); len(ns) != 2 || ns[1] != "1" {
					t.Errorf("the stand-in's NSpid %v, want PID 1", ns)
				}
				if st := procStatus(t, init, "State"); !strings.HasPrefix(st, "t") {
					t.Errorf("the stand-in is %q, want stopped by its tracer", st)
				}
				if v := procStatus(t, ours, "NoNewPrivs"); v != "1" {
					t.Errorf("NoNewPrivs %s", v)
				}
				if v := procStatus(t, ours, "Seccomp"); v != "2" {
					t.Errorf("Seccomp %s", v)
				}
				if v := procStatus(t, ours, "TracerPid"); v != "0" {
					t.Errorf("still traced by %s", v)
				}
				limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", ours))
				if err != nil {
					t.Fatal(err)
				}
				for _, want := range []string{
					`Max core file size\s+0\s+0 `,
					fmt.Sprintf(`Max open files\s+%d\s+%d `, DefaultOpenFiles, DefaultOpenFiles),
					fmt.Sprintf(`Max data size\s+%d\s+%d `, DefaultDataBytes, DefaultDataBytes),
					`Max cpu time\s+21\s+22 `, // the timeout, 20 s, and one more
				} {
					if !regexp.MustCompile(want).Match(limits) {
						t.Errorf("limits lack %q:\n%s", want, limits)
					}
				}
				if os.Getuid() != 0 {
					want := fmt.Sprintf(`Max processes\s+%d\s+%d `, DefaultProcesses, DefaultProcesses)
					if !regexp.MustCompile(want).Match(limits) {
						t.Errorf("limits lack %q:\n%s", want, limits)
					}
				}
			}
			killSleep(t, m)
			if res := <-done; res.Signal != "SIGKILL" {
				t.Errorf("hook ended with %+v, want SIGKILL", res)
			}
		})
	}
}

// TestSpawnedHookGetsNoCapabilities: the spawner keeps CAP_SYS_ADMIN in
// its user namespace (as ambient capability when it is not root) to make
// PID and network namespaces; a hook it starts must not inherit it. As
// another user the hook has no capability at all (none inheritable
// either); as root it has no ambient ones and no CAP_SYS_PTRACE, as when
// started directly. Twice per
// user: the first run starts the spawner, the second reuses it.
func TestSpawnedHookGetsNoCapabilities(t *testing.T) {
	if os.Getuid() == 0 && os.Getenv(unprivilegedEnv) == "" {
		t.Run("as-nobody", func(t *testing.T) { runAsNobody(t, "TestSpawnedHookGetsNoCapabilities") })
	}
	needLayer(t, layerUserNS)
	wd := t.TempDir()
	for i := range 2 {
		res := runHook(t, Spec{Argv: sh(`grep ^Cap /proc/self/status`), WorkDir: wd})
		caps := map[string]uint64{}
		for _, l := range strings.Split(strings.TrimSpace(string(res.Output)), "\n") {
			name, v, _ := strings.Cut(l, ":")
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("run %d: output %q", i, res.Output)
			}
			caps[name] = n
		}
		if len(caps) < 5 {
			t.Fatalf("run %d: output %q", i, res.Output)
		}
		if caps["CapAmb"] != 0 {
			t.Errorf("run %d: ambient capabilities %x", i, caps["CapAmb"])
		}
		if os.Getuid() == 0 && caps["CapBnd"]&(1<<19) != 0 { // CAP_SYS_PTRACE
			t.Errorf("run %d: CAP_SYS_PTRACE in the bounding set %x", i, caps["CapBnd"])
		}
		if os.Getuid() != 0 && (caps["CapEff"] != 0 || caps["CapPrm"] != 0 || caps["CapInh"] != 0) {
			t.Errorf("run %d: a hook of uid %d has capabilities %v", i, os.Getuid(), caps)
		}
		if spawnerOf(t, wd, false) == nil {
			t.Errorf("run %d did not go through a spawner", i)
		}
	}
}

// TestSpawnerKilledRunsGoOn: a spawner that dies (killed by whoever can)
// costs no run: the next one starts a new spawner, or the helper directly.
func TestSpawnerKilledRunsGoOn(t *testing.T) {
	t.Parallel()
	needLayer(t, layerUserNS)
	wd := t.TempDir()
	if res := runHook(t, Spec{Argv: sh("echo one"), WorkDir: wd}); string(res.Output) != "one\n" {
		t.Fatalf("first run: %+v", res)
	}
	sp := spawnerOf(t, wd, false)
	if sp == nil {
		t.Fatal("no spawner")
	}
	if err := sp.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-sp.exited
	res, err := Run(context.Background(), Spec{Argv: sh("echo two"), WorkDir: wd, Timeout: 10 * time.Second})
	if err != nil || string(res.Output) != "two\n" || res.ExitCode != 0 {
		t.Fatalf("after the spawner died: %v %+v", err, res)
	}
	if again := spawnerOf(t, wd, false); again == nil || again == sp {
		t.Errorf("no new spawner after the first died")
	}
}

// FuzzDecodeSpawnRequest: any input is refused with an error or gives a
// request with an id, a configuration, an absolute work dir and an
// environment of NAME=VALUE entries, none with a NUL byte, which encodes
// and decodes back to itself; never a panic.
func FuzzDecodeSpawnRequest(f *testing.F) {
	ok, _ := json.Marshal(spawnRequest{ID: 1, Config: `{"work_dir":"/w"}`, Env: []string{"PATH=/bin", "A="}, Dir: "/w", NoNetwork: true})
	for _, s := range []string{string(ok), `{}`, `{"id":1}`, `{"id":1,"config":"x","dir":"w"}`,
		`{"id":1,"config":"x","dir":"/w","env":["NOEQUALS"]}`, `{"id":1,"config":"x","dir":"/w","env":["=v"]}`,
		`{"id":1,"config":"x\u0000","dir":"/w"}`, `[`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeSpawnRequest(b)
		if err != nil {
			return
		}
		if r.ID == 0 || r.Config == "" || !filepath.IsAbs(r.Dir) || strings.ContainsRune(r.Config+r.Dir, 0) {
			t.Fatalf("accepted %+v", r)
		}
		for _, kv := range r.Env {
			if name, _, ok := strings.Cut(kv, "="); !ok || name == "" || strings.ContainsRune(kv, 0) {
				t.Fatalf("accepted environment entry %q", kv)
			}
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeSpawnRequest(again)
		if err != nil || !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip of %+v: %+v, %v", r, back, err)
		}
	})
}

// startSleepingHook runs a hook in wd that sleeps (its argv carries the
// marker m, so tests can find its processes) and returns once the hook has
// started; its Result arrives on the channel when it ends.
func startSleepingHook(t *testing.T, wd, m string, helperInit bool) <-chan Result {
	t.Helper()
	done := make(chan Result, 1)
	go func() {
		done <- runHook(t, Spec{Argv: sh(`touch "$HOME/ready"; exec sleep ` + m), WorkDir: wd, Timeout: 20 * time.Second, helperInit: helperInit})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(wd, "ready")); err == nil {
			return done
		}
		if time.Now().After(deadline) {
			t.Fatal("the hook never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// killSleep kills the sleep of a hook startSleepingHook started, once it
// shows: on a loaded machine the hook's shell can still be on its way to
// the exec when its ready file is there.
func killSleep(t *testing.T, m string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := procsWith("sleep", m)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if len(pids) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sleep %s to kill", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
