package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The spawner (issue 12: per-event sandbox cost). Starting the helper in a
// new user namespace costs its starter a real fork, not a vfork: the child
// must wait for the parent to write its uid and gid maps. Forking a
// daemon that holds a SQLite store copies its page tables and then takes
// copy-on-write faults, each a TLB shoot-down on the other CPUs, on every
// page it writes; measured on the 2-core machine, that and the namespace
// set-up cost the daemon 4–15 ms of CPU per hook run, more than the hook.
//
// So each hook work dir (one per hook definition) gets a spawner: the
// helper binary started once in a new user namespace (uid and gid mapped
// to themselves, as for a single run), where it holds CAP_SYS_ADMIN and
// nothing else of note. For each run livedict hands it the run's
// configuration and its three pipe ends over a socket pair, and the
// spawner vforks and execs the helper in a fresh PID namespace (and a
// fresh network namespace for --no-network), exactly as Run would have:
// the helper sets up every other layer itself, from nothing the spawner
// gives it but the pipes. The spawner reports the helper's pid and, once
// it is reaped, its wait status. What a run gets differs from a run
// started directly only in that the user namespace is shared with the
// other runs of the same hook definition (so is its RLIMIT_NPROC count).
//
// The spawner cannot be reached by a hook: it is not dumpable, has no
// CAP_SYS_PTRACE in its bounding set, closed every descriptor it inherited
// but its socket (close-on-exec), clears its ambient capabilities before
// starting anything, and lives outside the hooks' PID namespaces and
// Landlock domains. It dies with livedict (parent-death signal), and its
// runs die with it. It exits when livedict closes its socket, after
// spawnerIdle without a run.

// spawnerArg marks the spawner mode: os.Args[1] of the helper binary.
const spawnerArg = "__livedict_sandbox_spawner"

// spawnerIdle is how long an unused spawner is kept.
const spawnerIdle = 30 * time.Second

// noDirectEnv, set in a spawner's environment, makes it start the helper
// for every run rather than the hook directly (see startDirect), for the
// tests of the helper's init. Set in livedict's, it makes livedict ask for
// such spawners, to measure what the direct start saves.
const noDirectEnv = "LIVEDICT_SANDBOX_NO_DIRECT"

// spawnerFD is the spawner's end of its socket pair.
const spawnerFD = 3

// spawnReplyWait bounds the wait for the spawner's answer to a request: a
// spawner that does not answer is ended, and the run started directly.
const spawnReplyWait = 30 * time.Second

// spawnRequest is what livedict sends the spawner for one run, with the
// run's stdin, output and report pipe ends as SCM_RIGHTS.
type spawnRequest struct {
	ID        uint64   `json:"id"`
	Config    string   `json:"config"`
	Env       []string `json:"env"`
	Dir       string   `json:"dir"`
	NoNetwork bool     `json:"no_network,omitempty"`
}

// spawnReply is what the spawner sends back: ready once, then for each
// request its helper's pid or the error that kept it from starting, and
// later the helper's wait status.
type spawnReply struct {
	Ready  bool    `json:"ready,omitempty"`
	ID     uint64  `json:"id,omitempty"`
	Pid    int     `json:"pid,omitempty"`
	Error  string  `json:"error,omitempty"`
	Status *uint32 `json:"status,omitempty"`
}

// spawner is livedict's side of one spawner process.
type spawner struct {
	key string
	cmd *exec.Cmd
	// fd is livedict's end of the socket pair, blocking; raw calls rather
	// than package net, which the helper binary must not link (its
	// initialisation alone costs each run's start 0.5 ms).
	fd int

	mu       sync.Mutex
	nextID   uint64
	waiters  map[uint64]chan spawnReply
	dead     error
	exited   chan struct{} // closed once the process is reaped
	inflight int
	lastUsed time.Time
}

// spawnerRetry is how long after a helper failed to start a spawner Run
// starts that helper directly before it tries again.
const spawnerRetry = time.Minute

var spawners struct {
	mu sync.Mutex
	m  map[string]*spawner
	// refused holds, for each helper that could not start a spawner (the
	// kernel refuses user namespaces, the binary is no helper, or it did
	// not answer in time), when to try again.
	refused map[string]time.Time
}

// spawnerFor returns the running spawner of helper for work dir dir,
// starting one if needed, or nil when none can be had (Run then starts the
// helper itself).
func spawnerFor(helper, dir string, helperInit bool) *spawner {
	key := helper + "\x00" + dir
	if helperInit {
		key += "\x00helper"
	}
	spawners.mu.Lock()
	defer spawners.mu.Unlock()
	if time.Now().Before(spawners.refused[helper]) {
		return nil
	}
	if sp := spawners.m[key]; sp != nil {
		sp.mu.Lock()
		dead := sp.dead
		sp.mu.Unlock()
		if dead == nil {
			return sp
		}
		delete(spawners.m, key)
	}
	sp, err := startSpawner(helper, dir, helperInit)
	if err != nil {
		if spawners.refused == nil {
			spawners.refused = map[string]time.Time{}
		}
		spawners.refused[helper] = time.Now().Add(spawnerRetry)
		return nil
	}
	sp.key = key
	if spawners.m == nil {
		spawners.m = map[string]*spawner{}
	}
	spawners.m[key] = sp
	time.AfterFunc(spawnerIdle, sp.closeIfIdle)
	return sp
}

// startSpawner starts helper as a spawner in a new user namespace and
// waits for it to say it is ready.
func startSpawner(helper, dir string, helperInit bool) (*spawner, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	theirs := os.NewFile(uintptr(fds[1]), "spawner")
	defer theirs.Close()
	uid, gid := os.Getuid(), os.Getgid()
	attr := &syscall.SysProcAttr{
		// Its own group: nothing sent to livedict's group reaches it.
		Setpgid: true,
		// If livedict dies, so does the spawner, and with it its runs.
		Pdeathsig:                  syscall.SIGKILL,
		Cloneflags:                 syscall.CLONE_NEWUSER,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}},
		GidMappingsEnableSetgroups: false,
	}
	if uid != 0 {
		// Another user loses its capabilities in the namespace at exec;
		// the spawner keeps the one it needs to make PID and network
		// namespaces, and clears it from what it passes on.
		attr.AmbientCaps = []uintptr{unix.CAP_SYS_ADMIN}
	}
	cmd := &exec.Cmd{
		Path:        helper,
		Args:        []string{"livedict-sandbox", spawnerArg},
		Env:         []string{},
		Dir:         dir,
		ExtraFiles:  []*os.File{theirs},
		SysProcAttr: attr,
	}
	if helperInit {
		cmd.Env = []string{noDirectEnv + "=1"}
	}
	if err := cmd.Start(); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	theirs.Close()
	sp := &spawner{cmd: cmd, fd: fds[0], waiters: map[uint64]chan spawnReply{}, lastUsed: time.Now(), exited: make(chan struct{})}
	ready := make(chan error, 1)
	go sp.read(ready)
	go func() {
		_ = cmd.Wait()
		sp.fail(errors.New("the sandbox spawner exited"))
		close(sp.exited)
	}()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case err = <-ready:
	case <-t.C:
		err = errors.New("the sandbox spawner did not start")
	}
	if err != nil {
		sp.close()
		return nil, err
	}
	return sp, nil
}

// read dispatches the spawner's replies to the runs waiting for them.
func (sp *spawner) read(ready chan<- error) {
	defer func() {
		// Closed here, once nothing can use it: fail has marked the
		// spawner dead, and spawn sends only to a live one.
		sp.mu.Lock()
		unix.Close(sp.fd)
		sp.mu.Unlock()
	}()
	buf := make([]byte, 4096)
	first := true
	for {
		n, _, _, _, err := unix.Recvmsg(sp.fd, buf, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			if err == nil {
				err = errors.New("the sandbox spawner closed its socket")
			}
			if first {
				ready <- err
			}
			sp.fail(err)
			return
		}
		var r spawnReply
		if err := json.Unmarshal(buf[:n], &r); err != nil {
			continue
		}
		if first {
			first = false
			if !r.Ready {
				ready <- errors.New("the sandbox spawner did not say it was ready")
				sp.fail(errors.New("bad spawner"))
				return
			}
			ready <- nil
			continue
		}
		sp.mu.Lock()
		ch := sp.waiters[r.ID]
		if r.Status != nil || r.Error != "" {
			delete(sp.waiters, r.ID)
		}
		sp.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
}

// fail marks the spawner gone and tells every run still waiting.
func (sp *spawner) fail(err error) {
	sp.mu.Lock()
	if sp.dead == nil {
		sp.dead = err
		// Wakes read, which closes the socket, and tells the spawner to
		// go. Only this once, and under the lock: read closes the socket
		// (under the lock too) only after it has seen the spawner dead,
		// and a later call must not shut down whatever reuses the number.
		_ = unix.Shutdown(sp.fd, unix.SHUT_RDWR)
	}
	waiters := sp.waiters
	sp.waiters = map[uint64]chan spawnReply{}
	sp.mu.Unlock()
	for _, ch := range waiters {
		ch <- spawnReply{Error: err.Error()}
	}
}

func (sp *spawner) close() {
	sp.fail(errors.New("the sandbox spawner was closed"))
	if sp.cmd.Process != nil {
		_ = sp.cmd.Process.Kill()
	}
}

// closeIfIdle ends a spawner unused for spawnerIdle; closing its socket
// makes it exit.
func (sp *spawner) closeIfIdle() {
	spawners.mu.Lock()
	defer spawners.mu.Unlock()
	sp.mu.Lock()
	idle := sp.inflight == 0 && time.Since(sp.lastUsed) >= spawnerIdle
	wait := spawnerIdle - time.Since(sp.lastUsed)
	sp.mu.Unlock()
	if !idle {
		time.AfterFunc(max(wait, time.Second), sp.closeIfIdle)
		return
	}
	if spawners.m[sp.key] == sp {
		delete(spawners.m, sp.key)
	}
	sp.fail(errors.New("the sandbox spawner was idle"))
}

// CloseSpawners ends the spawners this process started and waits until
// they have exited; runs still going through one are killed with it (its
// helpers' parent-death signal). A benchmark calls it to count the
// spawners' CPU time among its children's; livedict need not (they die
// with it).
func CloseSpawners() {
	spawners.mu.Lock()
	all := spawners.m
	spawners.m = nil
	spawners.mu.Unlock()
	for _, sp := range all {
		sp.fail(errors.New("the sandbox spawner was closed"))
		<-sp.exited
	}
}

// spawned is one helper (or hook) the spawner started: a helperProc.
type spawned struct {
	sp  *spawner
	pid int
	ch  chan spawnReply
}

func (p *spawned) Pid() int { return p.pid }

func (p *spawned) Wait() (syscall.WaitStatus, error) {
	r := <-p.ch
	p.sp.mu.Lock()
	p.sp.inflight--
	p.sp.lastUsed = time.Now()
	p.sp.mu.Unlock()
	if r.Status == nil {
		return 0, errors.New(r.Error)
	}
	return syscall.WaitStatus(*r.Status), nil
}

// spawn asks the spawner to start the helper with config in new PID (and,
// for noNetwork, network) namespaces, with the pipes of p.
func (sp *spawner) spawn(config []byte, env []string, dir string, noNetwork bool, p *hookPipes) (*spawned, error) {
	ch := make(chan spawnReply, 2)
	id, err := sp.send(func(id uint64) ([]byte, error) {
		return json.Marshal(spawnRequest{ID: id, Config: string(config), Env: env, Dir: dir, NoNetwork: noNetwork})
	}, ch, unix.UnixRights(int(p.stdinR.Fd()), int(p.outW.Fd()), int(p.repW.Fd())))
	if err != nil {
		return nil, err
	}
	var r spawnReply
	t := time.NewTimer(spawnReplyWait)
	defer t.Stop()
	select {
	case r = <-ch:
	case <-t.C:
		sp.close() // its waiters, this one's included, get an error
		r = <-ch
	}
	if r.Pid <= 0 {
		sp.mu.Lock()
		delete(sp.waiters, id)
		sp.inflight--
		sp.mu.Unlock()
		if r.Error == "" {
			r.Error = "no pid"
		}
		return nil, errors.New(r.Error)
	}
	return &spawned{sp: sp, pid: r.Pid, ch: ch}, nil
}

// send sends the request msg makes for a new id, with the descriptors in
// oob, to a live spawner, registering ch for its replies.
func (sp *spawner) send(msg func(id uint64) ([]byte, error), ch chan spawnReply, oob []byte) (uint64, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.dead != nil {
		return 0, sp.dead
	}
	sp.nextID++
	id := sp.nextID
	b, err := msg(id)
	if err != nil {
		return 0, err
	}
	for {
		err = unix.Sendmsg(sp.fd, b, oob, nil, unix.MSG_NOSIGNAL)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, err
	}
	sp.waiters[id] = ch
	sp.inflight++
	sp.lastUsed = time.Now()
	return id, nil
}

// runSpawner is the spawner process (see above). It returns its exit code.
func runSpawner() int {
	// Everything below runs on this thread, the one whose capabilities
	// were cleared and whose exit kills the helpers (parent-death signal).
	runtime.LockOSThread()
	if err := CloseInherited(spawnerFD + 1); err != nil {
		_ = MarkCloseOnExec(spawnerFD + 1)
	}
	if _, err := unix.FcntlInt(spawnerFD, unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return 127
	}
	if err := unreachable(); err != nil {
		return 127
	}
	// What this thread starts gets no capability it would not get when
	// started directly: no ambient ones, none inheritable.
	if err := clearInheritable(); err != nil {
		return 127
	}

	var sendMu sync.Mutex
	send := func(r spawnReply) {
		b, _ := json.Marshal(r)
		sendMu.Lock()
		defer sendMu.Unlock()
		for {
			err := unix.Sendmsg(spawnerFD, b, nil, nil, unix.MSG_NOSIGNAL)
			if err != unix.EINTR {
				return
			}
		}
	}
	send(spawnReply{Ready: true})

	// Requests are read on a goroutine of their own. Hooks the spawner
	// starts itself start on threads of their own, at the same time; only
	// the helper is started from this thread, whose end kills it.
	type request struct {
		req spawnRequest
		fds []int
	}
	reqs, fallback := make(chan request), make(chan request)
	go func() {
		defer close(reqs)
		buf := make([]byte, 1<<20)
		oob := make([]byte, unix.CmsgSpace(3*4))
		for {
			n, oobn, _, _, err := unix.Recvmsg(spawnerFD, buf, oob, unix.MSG_CMSG_CLOEXEC)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n == 0 {
				return // livedict is gone or done with us
			}
			var fds []int
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, m := range msgs {
					if got, err := unix.ParseUnixRights(&m); err == nil {
						fds = append(fds, got...)
					}
				}
			}
			req, err := decodeSpawnRequest(buf[:n])
			switch {
			case err != nil:
				send(spawnReply{ID: req.ID, Error: "bad spawn request: " + err.Error()})
			case len(fds) != 3:
				send(spawnReply{ID: req.ID, Error: fmt.Sprintf("spawn request with %d descriptors", len(fds))})
			default:
				reqs <- request{req, fds}
				continue
			}
			closeAll(fds)
		}
	}()
	direct := os.Getenv(noDirectEnv) == ""
	for {
		var r request
		select {
		case got, ok := <-reqs:
			if !ok {
				return 0
			}
			if direct {
				go func() {
					if startDirect(got.req, got.fds, send) != nil {
						fallback <- got
						return
					}
					closeAll(got.fds)
				}()
				continue
			}
			r = got
		case r = <-fallback:
			// From then on, always the helper: each try costs a
			// thread's set-up.
			direct = false
		}
		flags := uintptr(syscall.CLONE_NEWPID)
		if r.req.NoNetwork {
			flags |= syscall.CLONE_NEWNET
		}
		pid, err := syscall.ForkExec("/proc/self/exe", []string{"livedict-sandbox", childArg, r.req.Config}, &syscall.ProcAttr{
			Dir:   r.req.Dir,
			Env:   r.req.Env,
			Files: []uintptr{uintptr(r.fds[0]), uintptr(r.fds[1]), uintptr(r.fds[1]), uintptr(r.fds[2])},
			Sys: &syscall.SysProcAttr{
				Setpgid:    true,
				Pdeathsig:  syscall.SIGKILL,
				Cloneflags: flags,
			},
		})
		closeAll(r.fds)
		if err != nil {
			send(spawnReply{ID: r.req.ID, Error: "fork/exec helper: " + err.Error()})
			continue
		}
		send(spawnReply{ID: r.req.ID, Pid: pid})
		go func(id uint64) {
			for {
				var ws syscall.WaitStatus
				_, err := syscall.Wait4(pid, &ws, 0, nil)
				if err == syscall.EINTR {
					continue
				}
				st := uint32(ws)
				if err != nil {
					send(spawnReply{ID: id, Error: "wait: " + err.Error()})
					return
				}
				send(spawnReply{ID: id, Status: &st})
				return
			}
		}(r.req.ID)
	}
}

func closeAll(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}

// clearInheritable empties this thread's ambient and inheritable
// capability sets (the ambient CAP_SYS_ADMIN livedict gave a spawner of
// another user came with an inheritable one).
func clearInheritable() error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return err
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	if data[0].Inheritable == 0 && data[1].Inheritable == 0 {
		return nil
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	return unix.Capset(&hdr, &data[0])
}

// decodeSpawnRequest reads a request the spawner got: a JSON object with
// an id, the helper's configuration, an environment of NAME=VALUE entries
// and an absolute work dir, none with a NUL byte.
func decodeSpawnRequest(b []byte) (spawnRequest, error) {
	var r spawnRequest
	if err := json.Unmarshal(b, &r); err != nil {
		return r, err
	}
	switch {
	case r.ID == 0:
		return r, errors.New("no request id")
	case r.Config == "" || strings.IndexByte(r.Config, 0) >= 0:
		return r, errors.New("no helper configuration, or one with a NUL byte")
	case !filepath.IsAbs(r.Dir) || strings.IndexByte(r.Dir, 0) >= 0:
		return r, fmt.Errorf("work dir %q is not an absolute path", r.Dir)
	}
	for _, kv := range r.Env {
		if name, _, ok := strings.Cut(kv, "="); !ok || name == "" || strings.IndexByte(kv, 0) >= 0 {
			return r, fmt.Errorf("environment entry %q is not NAME=VALUE", kv)
		}
	}
	return r, nil
}
