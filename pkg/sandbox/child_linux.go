package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// childArg marks the hidden helper mode: os.Args[1] of the re-executed
// binary. It is an argument rather than an environment variable so that it
// cannot leak into the hook's environment.
const childArg = "__livedict_sandbox_exec"

// reportFD is where the helper finds the pipe back to Run (ExtraFiles[0]).
// The helper marks it close-on-exec, so the hook never inherits it.
const reportFD = 3

// childConfig is what Run tells the helper, as JSON in os.Args[2].
type childConfig struct {
	Path      string   `json:"path,omitempty"`
	Argv      []string `json:"argv,omitempty"`
	WorkDir   string   `json:"work_dir"`
	WriteDirs []string `json:"write_dirs,omitempty"`
	// Limits, already resolved; negative means leave as inherited.
	CPUSeconds int64 `json:"cpu_s"`
	DataBytes  int64 `json:"data"`
	FileBytes  int64 `json:"fsize"`
	OpenFiles  int64 `json:"nofile"`
	Processes  int64 `json:"nproc"`
	// Init means the helper is PID 1 of a new PID namespace and must stay
	// as a minimal init instead of exec'ing the hook (see runInit).
	Init      bool `json:"init,omitempty"`
	UserNS    bool `json:"userns,omitempty"`
	NoNetwork bool `json:"no_network,omitempty"`
	// Probe sets everything up and reports it, but runs nothing.
	Probe bool `json:"probe,omitempty"`
}

// childReport is one JSON line the helper writes to reportFD: first the
// layers, then possibly an error (the hook did not start) or, from the
// init, the hook's raw wait status.
type childReport struct {
	Layers []Layer `json:"layers,omitempty"`
	Error  string  `json:"error,omitempty"`
	Status *uint32 `json:"status,omitempty"`
}

// MaybeRunChild returns at once in a normal process. In the hidden helper
// mode (livedict re-executed by Run) it applies the sandbox to itself and
// execs the hook, and never returns. Call it first thing in main, before
// any other work, and in the TestMain of any package whose tests call Run.
func MaybeRunChild() {
	if len(os.Args) == 2 && os.Args[1] == spawnerArg {
		syscall.Exit(runSpawner())
	}
	if len(os.Args) < 3 || os.Args[1] != childArg {
		return
	}
	// Before anything else the helper does: whatever it inherited from
	// whoever started livedict (a shell's `9>file`, the write end of a
	// `| cat`) must not stay open in a process the hook can outlive or
	// reach.
	// The report pipe, fd 3, is Run's own.
	inherited := CloseInherited(reportFD + 1)
	// syscall.Exit rather than os.Exit: the helper has nothing to flush,
	// and in a -race build os.Exit waits a second for race reports while
	// the hook's namespace, whose end is the hook's end, lives on.
	syscall.Exit(runChild(os.Args[2], inherited))
}

// unreachable keeps the hook from getting at the helper, which waits for
// it as PID 1 of its namespace with Go runtime threads that lack Landlock:
// a process that is not dumpable can be ptraced, pidfd_getfd'd and read
// through /proc/PID/fd and /proc/PID/mem only with CAP_SYS_PTRACE in its
// user namespace, and the hook runs without it. A hook that is root in
// its namespace would otherwise have it, so it is dropped from the
// bounding set of this thread, the one that starts the hook. Without a
// user namespace that drop fails for other users, who never have the
// capability anyway.
func unreachable() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE): %w", err)
	}
	if err := unix.Prctl(unix.PR_CAPBSET_DROP, unix.CAP_SYS_PTRACE, 0, 0, 0); err != nil && os.Getuid() == 0 {
		return fmt.Errorf("prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE): %w", err)
	}
	return nil
}

func runChild(config string, inherited error) int {
	// no_new_privs, Landlock and seccomp are per thread here: they are set
	// on this locked thread, which is the one that execs (or forks) the
	// hook, and it is never unlocked so the runtime cannot hand it to
	// other goroutines or retire it.
	runtime.LockOSThread()

	rep := openReport()
	var cfg childConfig
	if err := json.Unmarshal([]byte(config), &cfg); err != nil {
		rep.fail("bad helper configuration: " + err.Error())
		return 127
	}

	var layers []Layer
	// Descriptors first, so nothing opened below can leak either.
	fds := closeStrayDescriptors(inherited)
	if err := unreachable(); err != nil {
		rep.fail(err.Error())
		return 127
	}
	layers = append(layers, fds)

	rl, pl, err := applyRlimits(cfg, setOwnRlimit)
	if err != nil {
		rep.fail(err.Error())
		return 127
	}
	layers = append(layers, rl, pl)

	nnp := on(layerNoNewPrivs, "setuid and file capabilities cannot raise privileges")
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		nnp = off(layerNoNewPrivs, "prctl(PR_SET_NO_NEW_PRIVS): "+err.Error())
	}
	layers = append(layers, nnp)

	ll, abstractScoped, err := applyLandlock(cfg)
	if err != nil {
		rep.fail(err.Error())
		return 127
	}
	layers = append(layers, ll)

	// seccomp last: it is the layer most likely to get in the way of the
	// set-up calls above.
	sc := applySeccomp(cfg)
	layers = append(layers, sc)
	nw := networkLayer(cfg, abstractScoped, sc.On)
	layers = append(layers, nw)
	if cfg.NoNetwork && !nw.On && !cfg.Probe {
		// Fail closed, as Run does without a network namespace.
		rep.fail("--no-network cannot be had: " + nw.Why)
		return 127
	}

	var sigs chan os.Signal
	if cfg.Init && !cfg.Probe {
		// Before the report: Run only signals the group once it has the
		// report, and from then on the init must catch what it is sent.
		sigs = make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	}
	rep.send(childReport{Layers: layers})

	if cfg.Probe {
		return 0
	}
	if cfg.Init {
		return runInit(cfg, rep, sigs)
	}
	err = syscall.Exec(cfg.Path, cfg.Argv, os.Environ())
	rep.fail(fmt.Sprintf("exec %s: %v", cfg.Path, err))
	return 127
}

// runInit is the helper's life as PID 1 of the hook's PID namespace. It
// does not exec the hook because PID 1 of a namespace only receives the
// signals it has handlers for: an exec'd hook would ignore the SIGTERM on
// timeout and always wait out the grace period. So the helper forks the
// hook (from this locked, restricted thread, so the hook inherits every
// layer), reaps orphans, and exits as soon as the hook does, at which point
// the kernel kills whatever else is left in the namespace.
//
// sigs carries the signals Run sends the group. They are caught, not
// ignored: an ignored signal would stay ignored in the hook across exec,
// a caught one is reset. One that arrives before the hook exists is passed
// on to it once it does; later ones reach it directly through the group.
func runInit(cfg childConfig, rep *reporter, sigs chan os.Signal) int {
	pid, err := syscall.ForkExec(cfg.Path, cfg.Argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		rep.fail(fmt.Sprintf("exec %s: %v", cfg.Path, err))
		return 127
	}
	// Drained after the fork, not before, so none is lost in between; one
	// sent in the instant after the fork reaches the hook twice.
drain:
	for {
		select {
		case sig := <-sigs:
			_ = syscall.Kill(pid, sig.(syscall.Signal))
		default:
			break drain
		}
	}
	go func() {
		for range sigs {
		}
	}()
	// The init's copies of the pipes are not needed: give them up so the
	// hook's output ends when the hook's last writer closes it.
	if null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		for fd := 0; fd <= 2; fd++ {
			_ = unix.Dup2(int(null.Fd()), fd)
		}
		_ = null.Close()
	}
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			rep.fail("wait: " + err.Error())
			return 127
		}
		if wpid != pid {
			continue // an orphan reparented to us
		}
		status := uint32(ws)
		rep.send(childReport{Status: &status})
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}

// closeStrayDescriptors marks every descriptor above stderr close-on-exec:
// after CloseInherited that is only the report pipe and Go's own files,
// and on a system without /proc, where CloseInherited could not list them,
// everything the helper inherited.
func closeStrayDescriptors(inherited error) Layer {
	why := "only stdin, stdout and stderr (pipes) are open in the hook; the helper closed the descriptors it inherited " +
		"and cannot be ptraced, pidfd_getfd'd or read through /proc/PID/fd by the hook (not dumpable, no CAP_SYS_PTRACE)"
	if inherited != nil {
		why = "only stdin, stdout and stderr (pipes) are open in the hook; the helper kept what it inherited " +
			"(close-on-exec) because it could not list /proc/self/fd (" + inherited.Error() + ") but cannot be " +
			"ptraced, pidfd_getfd'd or read through /proc/PID/fd by the hook (not dumpable, no CAP_SYS_PTRACE)"
	}
	if err := MarkCloseOnExec(3); err != nil {
		return off(layerDescriptors, "close_range and /proc/self/fd: "+err.Error())
	}
	return on(layerDescriptors, why)
}

// networkLayer says what a hook can reach over sockets, given the layers
// the helper got: with --no-network nothing outside the sandbox, which
// takes both the network namespace (TCP, UDP, netlink, abstract Unix
// names, which are per network namespace) and seccomp (Unix sockets by
// path, which no namespace hides and Landlock cannot yet restrict).
func networkLayer(cfg childConfig, abstractScoped, seccompOn bool) Layer {
	if !cfg.NoNetwork {
		why := "not requested (--no-network not set): the hook can reach loopback and remote TCP and UDP, netlink, and Unix sockets by path"
		if abstractScoped {
			why += "; abstract Unix sockets outside the sandbox are blocked by Landlock"
		} else {
			why += " and by abstract name"
		}
		return off(layerNetwork, why)
	}
	var missing []string
	if !cfg.UserNS {
		missing = append(missing, "no network namespace")
	}
	if !seccompOn {
		missing = append(missing, "no seccomp to deny socket(2) for Unix sockets by path")
	}
	if len(missing) > 0 {
		return off(layerNetwork, strings.Join(missing, ", ")+": hooks with --no-network are not run")
	}
	return on(layerNetwork, "--no-network: nothing outside the sandbox: no TCP, UDP or netlink (network namespace), "+
		"no Unix sockets by path (seccomp denies socket(2)) or by abstract name (per network namespace); "+
		"socketpair(2) for stream and seqpacket pairs still works")
}

// rlimitSetter sets one resource limit, given its name for errors.
type rlimitSetter func(name string, res int, soft, hard uint64) error

// setOwnRlimit sets a limit of this process with syscall.Setrlimit, not
// prlimit: the Go runtime raises RLIMIT_NOFILE at start and restores the
// original before exec unless told of a change through syscall.Setrlimit
// (Go issue 66797).
func setOwnRlimit(name string, res int, soft, hard uint64) error {
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(res, &cur); err != nil {
		return fmt.Errorf("getrlimit %s: %w", name, err)
	}
	// Never try to raise a hard limit: only root may, and a lower one
	// someone already set is stricter than ours.
	hard = min(hard, cur.Max)
	soft = min(soft, hard)
	if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: soft, Max: hard}); err != nil {
		return fmt.Errorf("setrlimit %s: %w", name, err)
	}
	return nil
}

// setRlimitOf returns a setter for the limits of process pid (prlimit),
// with the same rule: never above the hard limit it has.
func setRlimitOf(pid int) rlimitSetter {
	return func(name string, res int, soft, hard uint64) error {
		var cur unix.Rlimit
		if err := unix.Prlimit(pid, res, nil, &cur); err != nil {
			return fmt.Errorf("prlimit %s: %w", name, err)
		}
		hard = min(hard, cur.Max)
		soft = min(soft, hard)
		if err := unix.Prlimit(pid, res, &unix.Rlimit{Cur: soft, Max: hard}, nil); err != nil {
			return fmt.Errorf("prlimit %s: %w", name, err)
		}
		return nil
	}
}

// applyRlimits sets the hook's limits with set and describes them.
func applyRlimits(cfg childConfig, set rlimitSetter) (Layer, Layer, error) {
	why := "core 0"
	if err := set("core", unix.RLIMIT_CORE, 0, 0); err != nil {
		return Layer{}, Layer{}, err
	}
	if cfg.CPUSeconds >= 0 {
		// soft < hard: SIGXCPU first, then SIGKILL a second later.
		if err := set("cpu", unix.RLIMIT_CPU, uint64(cfg.CPUSeconds), uint64(cfg.CPUSeconds)+1); err != nil {
			return Layer{}, Layer{}, err
		}
		why += fmt.Sprintf(", cpu %ds", cfg.CPUSeconds)
	}
	if cfg.DataBytes >= 0 {
		if err := set("data", unix.RLIMIT_DATA, uint64(cfg.DataBytes), uint64(cfg.DataBytes)); err != nil {
			return Layer{}, Layer{}, err
		}
		why += ", data " + byteSize(cfg.DataBytes)
	}
	if cfg.FileBytes >= 0 {
		if err := set("fsize", unix.RLIMIT_FSIZE, uint64(cfg.FileBytes), uint64(cfg.FileBytes)); err != nil {
			return Layer{}, Layer{}, err
		}
		why += ", file size " + byteSize(cfg.FileBytes)
	}
	if cfg.OpenFiles >= 0 {
		if err := set("nofile", unix.RLIMIT_NOFILE, uint64(cfg.OpenFiles), uint64(cfg.OpenFiles)); err != nil {
			return Layer{}, Layer{}, err
		}
		why += fmt.Sprintf(", open files %d", cfg.OpenFiles)
	}
	rl := on(layerRlimits, why)

	var pl Layer
	switch {
	case cfg.Processes < 0:
		pl = off(layerProcessLimit, "disabled by configuration")
	case !cfg.UserNS:
		pl = off(layerProcessLimit, "no user namespace: RLIMIT_NPROC would count every process of this user on the machine")
	case os.Getuid() == 0:
		pl = off(layerProcessLimit, "the kernel exempts uid 0 from RLIMIT_NPROC (the hook runs as root)")
	default:
		if err := set("nproc", unix.RLIMIT_NPROC, uint64(cfg.Processes), uint64(cfg.Processes)); err != nil {
			return Layer{}, Layer{}, err
		}
		pl = on(layerProcessLimit, fmt.Sprintf("at most %d processes and threads in the hook's user namespace", cfg.Processes))
	}
	return rl, pl, nil
}

// reporter writes childReport lines to Run, or to stderr when the helper
// was started some other way (fd 3 is then not our pipe).
type reporter struct{ f *os.File }

func openReport() *reporter {
	var st unix.Stat_t
	if err := unix.Fstat(reportFD, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
		return &reporter{f: os.NewFile(reportFD, "sandbox-report")}
	}
	return &reporter{}
}

func (r *reporter) send(m childReport) {
	b, _ := json.Marshal(m)
	b = append(b, '\n')
	if r.f != nil {
		_, _ = r.f.Write(b)
	}
}

func (r *reporter) fail(msg string) {
	if r.f == nil {
		fmt.Fprintln(os.Stderr, "livedict sandbox:", msg)
		return
	}
	r.send(childReport{Error: msg})
}
