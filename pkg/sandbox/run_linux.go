package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// drainDelay bounds how long Run keeps reading the hook's output after the
// hook and its process group are gone: only a descendant that escaped the
// group (setsid, without a PID namespace) can still hold the pipe then.
const drainDelay = 300 * time.Millisecond

// Run runs one hook in the sandbox and waits for it. The error is non-nil
// only when the hook could not be run as asked (a bad Spec, a command that
// is not found, no network namespace for NoNetwork, a helper that failed
// to set up); a hook that fails, is killed or times out is reported in the
// Result. If ctx ends first the hook is stopped as on a timeout and
// ctx.Err() is returned with the Result.
func Run(ctx context.Context, s Spec) (Result, error) {
	return run(ctx, s, false)
}

// Probe reports which layers a hook run with (or without) --no-network
// gets on this machine, each on, or off and why, by starting the helper in
// a mode that sets everything up and then exits without running anything.
// Unlike Run it falls back to no namespaces when they are refused, to
// report that. The layers are environment, descriptors, process-group,
// rlimits, process-limit, no_new_privs, landlock, seccomp, user-namespace,
// pid-namespace, network-namespace and network (what the hook can reach
// over sockets).
func Probe(noNetwork bool) []Layer {
	dir, err := os.MkdirTemp("", "livedict-sandbox-probe-")
	if err != nil {
		return allOff("cannot create a work dir to probe with: " + err.Error())
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := run(ctx, Spec{WorkDir: dir, NoNetwork: noNetwork}, true)
	if err != nil {
		return allOff("the sandbox helper failed: " + err.Error())
	}
	return res.Layers
}

func allOff(why string) []Layer {
	var out []Layer
	for _, name := range layerOrder() {
		out = append(out, off(name, why))
	}
	return out
}

func run(ctx context.Context, s Spec, probe bool) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	s, err := s.normalize(probe)
	if err != nil {
		return Result{}, err
	}
	cfg := childConfig{WorkDir: s.WorkDir, WriteDirs: s.WriteDirs, NoNetwork: s.NoNetwork, Probe: probe}
	if !probe {
		pathList := hookPath
		if v, ok := s.Env["PATH"]; ok {
			pathList = v
		}
		if cfg.Path, err = lookPath(s.Argv[0], pathList, s.WorkDir); err != nil {
			return Result{}, err
		}
		// Checked at every run, not only by hook add: the file (or its
		// folder) may have been opened to others since.
		if err := CheckCommand(cfg.Path); err != nil {
			return Result{}, fmt.Errorf("sandbox: hook command refused: %w", err)
		}
		cfg.Argv = s.Argv
	}
	resolveLimits(&cfg, s)
	if s.Helper == "" {
		if s.Helper, err = defaultHelper(); err != nil {
			return Result{}, err
		}
	}

	p, err := openPipes()
	if err != nil {
		return Result{}, fmt.Errorf("sandbox: %w", err)
	}
	defer p.close()
	proc, nsLayers := spawnHelper(s, cfg, p, probe)
	if proc == nil {
		var cmd *exec.Cmd
		if cmd, nsLayers, err = startHelper(s, cfg, p, probe); err != nil {
			return Result{}, err
		}
		proc = cmdProc{cmd}
	}
	res, status, childLayers, childErr, ctxErr := supervise(ctx, s, proc, p)
	res.Layers = mergeLayers([]Layer{
		on(layerEnvironment, fmt.Sprintf("only PATH, LANG, TZ, HOME and TMPDIR (the work dir) and %d --env name(s)", len(s.Env))),
		on(layerProcessGroup, fmt.Sprintf("own process group: SIGTERM on timeout, SIGKILL %v later, and SIGKILL to what is left when the hook exits", s.Grace)),
	}, nsLayers, childLayers)
	setStatus(&res, status)

	switch {
	case childErr != "":
		return res, fmt.Errorf("sandbox: %s", childErr)
	case childLayers == nil && !res.TimedOut && ctxErr == nil:
		return res, fmt.Errorf("sandbox: %w (helper %s exited with status %d)", ErrHelper, s.Helper, res.ExitCode)
	case probe && res.ExitCode != 0:
		return res, fmt.Errorf("sandbox: probe exited with status %d", res.ExitCode)
	}
	return res, ctxErr
}

// hookPipes are the hook's stdin and combined output, and the helper's
// report pipe (its fd 3). They are our own pipes rather than exec.Cmd's
// writers: Wait then returns when the hook exits, whoever still holds the
// pipes, and the group can be killed before the output is drained.
type hookPipes struct {
	stdinR, stdinW, outR, outW, repR, repW *os.File
}

func openPipes() (*hookPipes, error) {
	p := &hookPipes{}
	var err error
	if p.stdinR, p.stdinW, err = os.Pipe(); err != nil {
		return nil, err
	}
	if p.outR, p.outW, err = os.Pipe(); err != nil {
		p.close()
		return nil, err
	}
	if p.repR, p.repW, err = os.Pipe(); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// closeChildEnds drops our copies of the ends the helper has: they would
// keep the pipes from ever ending.
func (p *hookPipes) closeChildEnds() {
	for _, f := range []*os.File{p.stdinR, p.outW, p.repW} {
		f.Close()
	}
}

func (p *hookPipes) close() {
	for _, f := range []*os.File{p.stdinR, p.stdinW, p.outR, p.outW, p.repR, p.repW} {
		if f != nil {
			f.Close()
		}
	}
}

// helperProc is a started helper: its pid (and process group) and a wait
// for its exit.
type helperProc interface {
	Pid() int
	// Wait waits for the helper to exit; the error is set only when its
	// status cannot be had.
	Wait() (syscall.WaitStatus, error)
}

// cmdProc is a helper livedict started itself.
type cmdProc struct{ cmd *exec.Cmd }

func (c cmdProc) Pid() int { return c.cmd.Process.Pid }

func (c cmdProc) Wait() (syscall.WaitStatus, error) {
	err := c.cmd.Wait()
	if c.cmd.ProcessState == nil {
		return 0, err
	}
	return c.cmd.ProcessState.Sys().(syscall.WaitStatus), nil
}

// spawnHelper starts the helper through the work dir's spawner (see
// spawner_linux.go), in a fresh PID namespace (and network namespace for
// NoNetwork) inside the spawner's user namespace. It returns nil when
// that cannot be had: no spawner, or one that could not start this run;
// Run then starts the helper itself.
func spawnHelper(s Spec, cfg childConfig, p *hookPipes, probe bool) (helperProc, []Layer) {
	if probe || s.noNamespaces {
		return nil, nil
	}
	sp := spawnerFor(s.Helper, s.WorkDir, s.helperInit || os.Getenv(noDirectEnv) != "")
	if sp == nil {
		return nil, nil
	}
	cfg.Init, cfg.UserNS = true, true
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, nil
	}
	proc, err := sp.spawn(b, s.environment(), s.WorkDir, s.NoNetwork, p)
	if err != nil {
		return nil, nil
	}
	p.closeChildEnds()
	layers := []Layer{
		on(layerUserNS, fmt.Sprintf("uid %d and gid %d mapped to themselves", os.Getuid(), os.Getgid())),
		on(layerPIDNS, "the hook's whole tree dies with it, setsid escapees included"),
	}
	if s.NoNetwork {
		layers = append(layers, on(layerNetNS, "no interfaces but a loopback that is down"))
	} else {
		layers = append(layers, off(layerNetNS, "not requested (--no-network not set)"))
	}
	return proc, layers
}

// startHelper starts the helper in new user and PID namespaces (and a
// network namespace for NoNetwork), or without them if the kernel refuses,
// except that NoNetwork then fails closed. It returns the namespace layers.
func startHelper(s Spec, cfg childConfig, p *hookPipes, probe bool) (*exec.Cmd, []Layer, error) {
	newCmd := func(namespaces bool) (*exec.Cmd, error) {
		attr := &syscall.SysProcAttr{
			Setpgid: true,
			// If livedict dies, so does the helper (and, as PID 1, the
			// hook's whole namespace).
			Pdeathsig: syscall.SIGKILL,
		}
		if namespaces {
			attr.Cloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID
			if s.NoNetwork {
				attr.Cloneflags |= syscall.CLONE_NEWNET
			}
			uid, gid := os.Getuid(), os.Getgid()
			attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
			attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
			// Required to map a gid without privilege; no hook needs
			// setgroups anyway.
			attr.GidMappingsEnableSetgroups = false
			cfg.Init, cfg.UserNS = true, true
		} else {
			cfg.Init, cfg.UserNS = false, false
		}
		b, err := json.Marshal(cfg)
		if err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		return &exec.Cmd{
			Path:        s.Helper,
			Args:        []string{"livedict-sandbox", childArg, string(b)},
			Env:         s.environment(),
			Dir:         s.WorkDir,
			Stdin:       p.stdinR,
			Stdout:      p.outW,
			Stderr:      p.outW,
			ExtraFiles:  []*os.File{p.repW},
			SysProcAttr: attr,
		}, nil
	}

	cmd, err := newCmd(true)
	if err != nil {
		return nil, nil, err
	}
	if s.noNamespaces {
		err = fmt.Errorf("fork/exec %s: %w", s.Helper, syscall.EPERM)
	} else {
		err = cmd.Start()
	}
	if err == nil {
		p.closeChildEnds()
		layers := []Layer{
			on(layerUserNS, fmt.Sprintf("uid %d and gid %d mapped to themselves", os.Getuid(), os.Getgid())),
			on(layerPIDNS, "the hook's whole tree dies with it, setsid escapees included"),
		}
		switch {
		case s.NoNetwork:
			layers = append(layers, on(layerNetNS, "no interfaces but a loopback that is down"))
		default:
			layers = append(layers, off(layerNetNS, "not requested (--no-network not set)"))
		}
		return cmd, layers, nil
	}
	if helperUnusable(err) {
		return nil, nil, fmt.Errorf("sandbox: start helper: %w", err)
	}
	why := "the kernel refused to create it: " + err.Error()
	if s.NoNetwork && !probe {
		// Fail closed: never run a --no-network hook with network.
		return nil, nil, fmt.Errorf("sandbox: %w (%s)", ErrNoNetwork, why)
	}
	if cmd, err = newCmd(false); err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("sandbox: start helper: %w", err)
	}
	p.closeChildEnds()
	return cmd, []Layer{
		off(layerUserNS, why),
		off(layerPIDNS, why+"; a descendant that calls setsid can outlive the hook"),
		off(layerNetNS, why),
	}, nil
}

// supervise feeds the hook's stdin, collects its output and the helper's
// reports, enforces the timeout (and ctx) and kills what is left of the
// group when the hook exits. It returns the hook's wait status: the one
// the init reported or, if the helper exec'd the hook or died first, the
// helper's own.
func supervise(ctx context.Context, s Spec, proc helperProc, p *hookPipes) (res Result, status syscall.WaitStatus, childLayers []Layer, childErr string, ctxErr error) {
	start := time.Now()
	pgid := proc.Pid()

	tail := &tailBuffer{limit: s.OutputCap}
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		_, _ = io.Copy(tail, p.outR)
	}()
	stdinDone := make(chan struct{})
	go func() {
		defer close(stdinDone)
		// A hook that does not read its stdin makes this fail or block;
		// either way it ends when the hook does (deadline below).
		_, _ = p.stdinW.Write(s.Stdin)
		p.stdinW.Close()
	}()
	var reports []childReport
	repDone := make(chan struct{})
	// ready closes when the helper has reported its set-up (or is gone):
	// only then can the hook's init catch SIGTERM.
	ready := make(chan struct{})
	go func() {
		defer close(repDone)
		defer func() {
			if len(reports) == 0 {
				close(ready)
			}
		}()
		sc := bufio.NewScanner(p.repR)
		sc.Buffer(make([]byte, 0, 4096), 1<<20)
		for sc.Scan() {
			var m childReport
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				reports = append(reports, m)
				if len(reports) == 1 {
					close(ready)
				}
			}
		}
	}()

	waitDone := make(chan struct{})
	var (
		waitErr    error
		waitStatus syscall.WaitStatus
	)
	go func() {
		defer close(waitDone)
		waitStatus, waitErr = proc.Wait()
	}()

	// stop is the timeout path: SIGTERM to the whole group, SIGKILL to the
	// whole group when the grace period ends. The SIGTERM waits for the
	// helper's report: PID 1 of a namespace drops a signal it has no
	// handler for yet, and the hook would then only get the SIGKILL.
	stop := func() {
		grace := time.NewTimer(s.Grace)
		defer grace.Stop()
		select {
		case <-ready:
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-waitDone:
				return
			case <-grace.C:
			}
		case <-waitDone:
			return
		case <-grace.C:
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-waitDone
	}

	timer := time.NewTimer(s.Timeout)
	defer timer.Stop()
	select {
	case <-waitDone:
	case <-timer.C:
		res.TimedOut = true
		stop()
	case <-ctx.Done():
		ctxErr = ctx.Err()
		stop()
	}
	res.Duration = time.Since(start)
	// Whatever the hook left behind in its group goes with it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)

	// The hook no longer reads its stdin.
	_ = p.stdinW.SetWriteDeadline(time.Now())
	<-stdinDone
	// The report pipe needs no deadline: only the helper ever held it, and
	// the helper is gone.
	<-repDone
	drainOutput(p.outR, tail, outDone)
	res.Output, res.CutBytes = tail.tail()
	res.Truncated = res.CutBytes > 0

	if waitErr != nil {
		return res, status, nil, "wait: " + waitErr.Error(), ctxErr
	}
	status = waitStatus
	for _, m := range reports {
		if m.Layers != nil {
			childLayers = m.Layers
		}
		if m.Status != nil {
			status = syscall.WaitStatus(*m.Status)
		}
		if m.Error != "" && childErr == "" {
			childErr = m.Error
		}
	}
	return res, status, childLayers, childErr, ctxErr
}

// drainOutput waits for the reader of the hook's output to reach the end.
// Everything that held the pipe is dead by now unless a descendant escaped
// the group, so after drainDelay the reader is stopped and what is already
// in the pipe is taken without waiting; a deadline alone could drop it if
// the reader had not been scheduled in time.
func drainOutput(outR *os.File, tail *tailBuffer, outDone chan struct{}) {
	t := time.NewTimer(drainDelay)
	defer t.Stop()
	select {
	case <-outDone:
		return
	case <-t.C:
	}
	_ = outR.SetReadDeadline(time.Now())
	<-outDone
	_ = outR.SetReadDeadline(time.Time{})
	rc, err := outR.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	_ = rc.Read(func(fd uintptr) bool {
		for {
			n, err := unix.Read(int(fd), buf)
			if n <= 0 || err != nil {
				return true // empty (EAGAIN), ended or failed: done either way
			}
			_, _ = tail.Write(buf[:n])
		}
	})
}

// resolveLimits turns Limits into the numbers the helper sets.
func resolveLimits(cfg *childConfig, s Spec) {
	l := s.Limits
	pick := func(v, def int64) int64 {
		switch {
		case v < 0:
			return -1
		case v == 0:
			return def
		}
		return v
	}
	cpu := l.CPU
	if cpu == 0 {
		cpu = s.Timeout + time.Second
	}
	cfg.CPUSeconds = -1
	if cpu > 0 {
		cfg.CPUSeconds = int64((cpu + time.Second - 1) / time.Second)
	}
	cfg.DataBytes = pick(l.DataBytes, DefaultDataBytes)
	cfg.FileBytes = pick(l.FileBytes, DefaultFileBytes)
	cfg.OpenFiles = pick(l.OpenFiles, DefaultOpenFiles)
	cfg.Processes = pick(l.Processes, DefaultProcesses)
}

// setStatus fills ExitCode and Signal from a wait status.
func setStatus(res *Result, ws syscall.WaitStatus) {
	if ws.Signaled() {
		res.ExitCode = -1
		res.Signal = unix.SignalName(ws.Signal())
		if res.Signal == "" {
			res.Signal = ws.Signal().String()
		}
		return
	}
	res.ExitCode = ws.ExitStatus()
}

// helperUnusable tells a helper binary that cannot be executed at all
// apart from a kernel refusing namespaces, which Start reports the same way.
func helperUnusable(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOEXEC) ||
		errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR)
}
