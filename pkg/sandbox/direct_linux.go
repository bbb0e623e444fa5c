package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Direct starts (issue 12: the per-event sandbox cost). Starting the helper
// for every run costs a whole Go start-up, about 15 ms of CPU on the 2-core
// machine against 2 ms for a bare fork and exec of /bin/true, and only
// batching hid it. The spawner, which runs already, can instead put every
// layer on one thread of its own and start the hook from there: a
// process inherits its creator thread's no_new_privs, Landlock domain,
// seccomp filter, capability sets and namespaces for children, so a thread
// made for one run and thrown away after it (a goroutine that locks its
// thread and ends without unlocking it) gives the hook exactly what the
// helper gave it. What is per process, the resource limits, the spawner
// sets on the hook itself while the hook is stopped at its exec, before
// it has run a single instruction: the child asks to be traced
// (PTRACE_TRACEME), the exec stops it, the spawner sets its limits with
// prlimit and lets it go (PTRACE_DETACH). The seccomp filter of such a run
// lets those two requests through and denies every other (see
// seccompProgram).
//
// The hook is not PID 1 of its namespace: PID 1 only receives the signals
// it has handlers for, so a hook there could not kill itself, nor be
// ended by SIGTERM. The first child of the run's thread, PID 1, is a
// stand-in init: the helper binary, started traced like the hook and left
// stopped at its exec, so that it never runs a single instruction and
// costs no Go start-up. The hook is the thread's second child, PID 2 of the
// same namespace. When the hook has exited, the spawner kills the stand-in,
// and with it, as with any PID 1, everything left in the namespace. What it
// cannot do is reap: a process orphaned inside the sandbox stays a zombie
// (and counts against the process limit) until the hook exits.
//
// Anything that fails before the hook runs is reported as an error, and
// the spawner starts the helper instead, as before.

// startDirect starts the hook of req on a new thread (see above) with the
// descriptors fds (stdin, output, report), reports its pid with send once
// it runs and its wait status once it has exited, and then ends its
// namespace. It returns once the hook runs, or with an error when it could not
// start it and nothing runs.
func startDirect(req spawnRequest, fds []int, send func(spawnReply)) error {
	var cfg childConfig
	if err := json.Unmarshal([]byte(req.Config), &cfg); err != nil {
		return err
	}
	if cfg.Path == "" || len(cfg.Argv) == 0 || cfg.Probe {
		return errors.New("no hook to start")
	}
	started := make(chan error, 1)
	go func() {
		// Never unlocked: the thread carries this run's layers and ends
		// with this goroutine. It lives as long as the hook: the init's
		// parent-death signal is tied to it, and the namespace to the
		// init.
		runtime.LockOSThread()
		init, pid, err := execDirect(req, cfg, fds)
		if err != nil {
			started <- err
			return
		}
		send(spawnReply{ID: req.ID, Pid: pid})
		started <- nil
		status, initGone, err := waitDirect(pid, init)
		if err != nil {
			send(spawnReply{ID: req.ID, Error: "wait: " + err.Error()})
		} else {
			send(spawnReply{ID: req.ID, Status: &status})
		}
		// Then the namespace goes with its init, and whatever the hook
		// left in it: after the reply, because tearing a namespace down
		// takes the kernel milliseconds that the run need not wait for.
		// (Never a kill by pid once reaped: the pid may be another's.)
		if !initGone {
			reap(init)
		}
	}()
	return <-started
}

// execDirect sets up this thread and starts from it the stand-in init and
// the hook, the hook stopped at its exec until its limits are set.
func execDirect(req spawnRequest, cfg childConfig, fds []int) (init, pid int, err error) {
	// The first process this thread starts is PID 1 of a new namespace,
	// the next ones are in it too.
	flags := unix.CLONE_NEWPID
	if cfg.NoNetwork {
		flags |= unix.CLONE_NEWNET
	}
	if err := unix.Unshare(flags); err != nil {
		return 0, 0, fmt.Errorf("unshare: %w", err)
	}
	// Capabilities are per thread: this one was made by the runtime, not
	// from the thread that cleared them at the spawner's start.
	if err := clearInheritable(); err != nil {
		return 0, 0, fmt.Errorf("capabilities: %w", err)
	}
	if err := unreachable(); err != nil {
		return 0, 0, err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return 0, 0, fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	ll, abstractScoped, err := applyLandlock(cfg)
	if err != nil {
		return 0, 0, err
	}
	sc, err := applyThreadSeccomp(cfg)
	if err != nil {
		return 0, 0, err
	}
	nw := networkLayer(cfg, abstractScoped, sc.On)
	if cfg.NoNetwork && !nw.On {
		return 0, 0, errors.New("--no-network cannot be had: " + nw.Why)
	}

	init, err = startStopped("/proc/self/exe", []string{HelperName, "init"}, &syscall.ProcAttr{}, true)
	if err != nil {
		return 0, 0, fmt.Errorf("start the namespace's init: %w", err)
	}
	pid, err = startStopped(cfg.Path, cfg.Argv, &syscall.ProcAttr{
		Dir:   req.Dir,
		Env:   req.Env,
		Files: []uintptr{uintptr(fds[0]), uintptr(fds[1]), uintptr(fds[1])},
	}, false)
	if err != nil {
		reap(init)
		return 0, 0, fmt.Errorf("exec %s: %w", cfg.Path, err)
	}
	rl, pl, err := applyRlimits(cfg, setRlimitOf(pid))
	if err == nil {
		if err = syscall.PtraceDetach(pid); err != nil {
			err = fmt.Errorf("ptrace(PTRACE_DETACH): %w", err)
		}
	}
	if err != nil {
		reap(pid)
		reap(init)
		return 0, 0, err
	}
	fdLayer := on(layerDescriptors, "only stdin, stdout and stderr (pipes) are open in the hook; the spawner that starts it "+
		"cannot be ptraced, pidfd_getfd'd or read through /proc/PID/fd by the hook (not dumpable, no CAP_SYS_PTRACE)")
	nnp := on(layerNoNewPrivs, "setuid and file capabilities cannot raise privileges")
	b, _ := json.Marshal(childReport{Layers: []Layer{fdLayer, rl, pl, nnp, ll, sc, nw}})
	_, _ = unix.Write(fds[2], append(b, '\n'))
	return init, pid, nil
}

// startStopped starts path in its own process group, traced by this
// thread, and waits until its exec has stopped it: it has run nothing yet.
//
// Only the init gets a parent-death signal (and with it, the namespace
// dies with this thread). Go's fork sends the child that signal at once
// when its parent pid has changed, which getppid, 0 for a parent outside
// the child's namespace, says it has: PID 1 drops it, the hook would not.
func startStopped(path string, argv []string, attr *syscall.ProcAttr, init bool) (int, error) {
	attr.Sys = &syscall.SysProcAttr{Setpgid: true, Ptrace: true}
	if init {
		attr.Sys.Pdeathsig = syscall.SIGKILL
	}
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return 0, err
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, unix.WALL, nil)
		if err != syscall.EINTR {
			break
		}
	}
	switch {
	case err != nil:
		reap(pid)
		return 0, fmt.Errorf("wait for the exec: %w", err)
	case !ws.Stopped() || ws.StopSignal() != syscall.SIGTRAP:
		reap(pid)
		return 0, fmt.Errorf("no stop at the exec (status %#x)", uint32(ws))
	}
	return pid, nil
}

// reap kills process pid, a child of this thread, and waits for it.
func reap(pid int) {
	_ = syscall.Kill(pid, syscall.SIGKILL)
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, unix.WALL, nil); err != syscall.EINTR {
			return
		}
	}
}

// waitDirect waits for the hook to exit, and reaps on the way whatever
// else this thread is the parent or tracer of: a thread of the hook that
// asked to be traced (PTRACE_TRACEME makes this thread its tracer) is let
// go at once, with the signal it stopped for (but an exec's SIGTRAP), and
// reaped once it exits; the hook could not be reaped before that. The init
// is reaped here only if something outside killed it; initGone says so.
// __WNOTHREAD: the children of the spawner's other threads are theirs.
func waitDirect(pid, init int) (status uint32, initGone bool, err error) {
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, unix.WALL|unix.WNOTHREAD, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, initGone, err
		case ws.Stopped():
			sig := ws.StopSignal()
			if sig == syscall.SIGTRAP {
				sig = 0
			}
			_, _, _ = syscall.RawSyscall6(syscall.SYS_PTRACE, syscall.PTRACE_DETACH, uintptr(wpid), 0, uintptr(sig), 0, 0)
		case wpid == pid:
			return uint32(ws), initGone, nil
		case wpid == init:
			initGone = true
		}
	}
}
