package cmd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/livedict/livedict/pkg/ttl"
)

// exitStatus ends livedict with a child's exit status and prints nothing:
// the child already said what it had to.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// quietStatus reports the status an exitStatus error carries.
func quietStatus(err error) (int, bool) {
	var e exitStatus
	if errors.As(err, &e) {
		return int(e), true
	}
	return 0, false
}

// launchError is a child that could not be started: one error line, and
// the status a shell gives (127 not found, 126 cannot be run).
type launchError struct {
	code int
	err  error
}

func (e *launchError) Error() string { return e.err.Error() }
func (e *launchError) Unwrap() error { return e.err }

// childStdio is where a child writes: the process's own files where they
// are files (so a child's background grandchildren holding them cannot
// keep livedict waiting for a copy to end), else the writers given.
func childStdio(w io.Writer) io.Writer {
	if c, ok := w.(*checkedWriter); ok {
		if f, ok := c.w.(*os.File); ok {
			return f
		}
	}
	return w
}

// child is a command livedict runs for the user (lock's and run's CMD),
// with the signals livedict passes on to it. When CMD's stdin, stdout and
// stderr are all files (lock from a shell), it is started with a bare
// fork and exec (pid set, cmd nil); otherwise (run capturing its output)
// through os/exec.
type child struct {
	cmd    *exec.Cmd
	pid    int
	mu     sync.Mutex         // a signal and the reaping of pid take turns
	reaped bool               // pid may belong to another process now
	ws     syscall.WaitStatus // once wait returned
	sigs   chan os.Signal
}

// forwarded are the signals passed on to a child: SIGINT, SIGTERM, SIGHUP
// and SIGQUIT (^\, which Go's default turned into a goroutine dump, exit 2
// and a lease held until its TTL ran out), less any livedict was started
// with ignored. Under nohup, or as a
// shell's background job (SIGINT ignored), CMD inherits the same ignored
// signal, as it would under flock(1); catching it to pass it on would undo
// what the caller asked for.
func forwarded() []os.Signal {
	var sigs []os.Signal
	for _, s := range []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		if !signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	return sigs
}

// startChild starts argv with extra environment, as a shell would: exit
// 127 when it is not found, 126 when it cannot be run. The signals to pass
// on are caught before it starts, so one that arrives in between reaches
// CMD instead of ending livedict.
func startChild(argv, env []string, in io.Reader, out, errw io.Writer) (*child, error) {
	ch := &child{sigs: make(chan os.Signal, 4)}
	if sigs := forwarded(); len(sigs) > 0 {
		signal.Notify(ch.sigs, sigs...)
	}
	var err error
	if files, ok := stdioFiles(in, out, errw); ok {
		err = ch.forkExec(argv, withEnv(os.Environ(), env), files)
	} else {
		c := exec.Command(argv[0], argv[1:]...)
		c.Env = append(os.Environ(), env...)
		c.Stdin, c.Stdout, c.Stderr = in, out, errw
		c.SysProcAttr = childAttr()
		ch.cmd, err = c, c.Start()
	}
	if err != nil {
		signal.Stop(ch.sigs)
		return nil, newLaunchError(argv[0], err)
	}
	return ch, nil
}

// newLaunchError is name failing to start with err: 127 when it is not
// found, 126 when it is there but cannot be run (not executable, a
// directory), as shells report.
func newLaunchError(name string, err error) *launchError {
	code := 126
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		code = 127
	}
	return &launchError{code: code, err: fmt.Errorf("%s: %w", name, err)}
}

// stdioFiles returns the descriptors of in, out and errw when all three
// are files (a nil in is /dev/null's job: not a file here).
func stdioFiles(in io.Reader, out, errw io.Writer) ([]uintptr, bool) {
	var fds []uintptr
	for _, s := range []any{in, out, errw} {
		f, ok := s.(*os.File)
		if !ok || f == nil {
			return nil, false
		}
		fds = append(fds, f.Fd())
	}
	return fds, true
}

// withEnv is base with extra added, an extra NAME replacing base's (as
// os/exec does: a nested lock's CMD must see its own token).
func withEnv(base, extra []string) []string {
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(extra, func(e string) bool { return strings.HasPrefix(e, name+"=") }) {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// forkExec starts argv with a plain fork and exec. os/exec would first
// probe whether pidfds work, forking an extra child once per process
// (its clone(CLONE_PIDFD) check), a cost every lock paid for nothing: a
// lock has one child and waits for it with wait4. Names without a slash
// are looked up in PATH as os/exec does (same errors).
func (ch *child) forkExec(argv, env []string, files []uintptr) error {
	path := argv[0]
	if !strings.Contains(path, "/") {
		lp, err := exec.LookPath(path)
		if err != nil {
			return err
		}
		path = lp
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: env, Files: files, Sys: childAttr()})
	if err != nil {
		return &os.PathError{Op: "fork/exec", Path: path, Err: err}
	}
	ch.pid = pid
	return nil
}

// signal sends s to the child unless it was reaped (its pid could name
// another process by then).
func (ch *child) signal(s os.Signal) {
	if ch.cmd != nil {
		ch.cmd.Process.Signal(s)
		return
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if !ch.reaped {
		syscall.Kill(ch.pid, s.(syscall.Signal))
	}
}

// reap waits for the child to end. It first waits without reaping
// (waitExited), so a signal sent meanwhile still reaches the child or its
// zombie, never a process that reused the pid; os.Process does the same.
func (ch *child) reap() {
	if ch.cmd != nil {
		ch.cmd.Wait()
		ch.ws, _ = ch.cmd.ProcessState.Sys().(syscall.WaitStatus)
		return
	}
	waitExited(ch.pid)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for {
		_, err := syscall.Wait4(ch.pid, &ch.ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	ch.reaped = true
}

// wait waits for the child while passing on the signals livedict gets (as
// consul lock does; in a terminal the child also gets ^C from the terminal
// itself, as under flock). When stop yields, the child is sent SIGTERM,
// then SIGKILL after grace. It returns the status a shell would report:
// the exit code, or 128+N when signal N killed it.
func (ch *child) wait(stop <-chan error, onStop func(error), grace time.Duration) int {
	defer signal.Stop(ch.sigs)
	done := make(chan struct{})
	go func() { ch.reap(); close(done) }()
	var kill <-chan time.Time
	for {
		select {
		case s := <-ch.sigs:
			ch.signal(s)
		case err := <-stop:
			stop = nil
			onStop(err)
			ch.signal(syscall.SIGTERM)
			kill = time.After(grace)
		case <-kill:
			ch.signal(syscall.SIGKILL)
		case <-done:
			return shellStatus(ch.ws)
		}
	}
}

// waitStatus is how the child ended, once wait returned.
func (ch *child) waitStatus() syscall.WaitStatus { return ch.ws }

func shellStatus(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// durationFlag parses a duration flag that must be positive (or, when
// zeroOK, zero).
func durationFlag(name, v string, zeroOK bool) (time.Duration, error) {
	d, err := ttl.ParseDuration(v)
	if err != nil {
		return 0, usageErr(fmt.Errorf("--%s: %w", name, err), "")
	}
	if d < 0 && zeroOK {
		return 0, usageErr(fmt.Errorf("--%s %s: must be 0 or more", name, v), "")
	}
	if d <= 0 && !zeroOK {
		return 0, usageErr(fmt.Errorf("--%s %s: must be positive", name, v), "")
	}
	return d, nil
}

// commandAfterDash returns the CMD after "--" and the arguments before it.
func commandAfterDash(dash int, args []string, use string) (before, argv []string, err error) {
	if dash < 0 {
		return args, nil, nil
	}
	if len(args[dash:]) == 0 {
		return nil, nil, usageErr(errors.New("no command after --"), use)
	}
	return args[:dash], args[dash:], nil
}
