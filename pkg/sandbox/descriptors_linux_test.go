package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// attackEnv makes a copy of this test binary, run as a hook, act as a
// hostile hook instead of running tests (see TestMain). Its value names
// what the hook tries to write to through someone else's descriptor: a
// file's path, or a pipe as /proc/PID/fd shows it ("pipe:[INODE]"),
// separated by "|".
const attackEnv = "LIVEDICT_SANDBOX_TEST_STEAL"

// stealDescriptors is the hostile hook: it tries every way a process can
// get at a descriptor it did not open, and writes to whatever it gets
// that leads to target. It prints one line per success, so the test can
// say which way worked.
func stealDescriptors(targets string) {
	isTarget := func(link string) bool { return link != "" && slices.Contains(strings.Split(targets, "|"), link) }
	wrote := func(how string, fd int) {
		if link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); !isTarget(link) {
			return
		}
		if _, err := unix.Write(fd, []byte("stolen via "+how+"\n")); err == nil {
			fmt.Printf("WROTE via %s\n", how)
		}
	}
	// 1. A descriptor inherited without close-on-exec.
	for fd := 3; fd < 64; fd++ {
		wrote(fmt.Sprintf("inherited fd %d", fd), fd)
	}
	// 2. pidfd_getfd from the parent: the sandbox helper, or livedict.
	ppid := os.Getppid()
	if pidfd, err := unix.PidfdOpen(ppid, 0); err != nil {
		fmt.Printf("pidfd_open(%d): %v\n", ppid, err)
	} else {
		for fd := 0; fd < 64; fd++ {
			got, err := unix.PidfdGetfd(pidfd, fd, 0)
			if err != nil {
				continue
			}
			wrote(fmt.Sprintf("pidfd_getfd(%d, %d)", ppid, fd), got)
			unix.Close(got)
		}
	}
	// 3. /proc/PID/fd of every ancestor, by the pids /proc itself shows
	// (the machine's, not the PID namespace's).
	pid := os.Getpid()
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		// pid (comm) state ppid ...
		if i := bytes.LastIndexByte(b, ')'); i > 0 {
			if f := strings.Fields(string(b[i+1:])); len(f) > 1 {
				pid, _ = strconv.Atoi(f[1])
			}
		}
	}
	for hops := 0; pid > 1 && hops < 4; hops++ {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		entries, err := os.ReadDir(dir)
		if err != nil {
			fmt.Printf("%s: %v\n", dir, err)
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			link, err := os.Readlink(p)
			if err == nil && hops == 0 {
				// Whatever the parent holds, the hook must not see it.
				fmt.Printf("REACHED %s -> %s\n", p, link)
			}
			if !isTarget(link) {
				continue
			}
			if fd, err := unix.Open(p, unix.O_WRONLY|unix.O_APPEND, 0); err == nil {
				wrote("open("+p+")", fd)
				unix.Close(fd)
			} else {
				fmt.Printf("open(%s): %v\n", p, err)
			}
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			break
		}
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			break
		}
		pid, _ = strconv.Atoi(f[1])
	}
	fmt.Println("DONE")
}

// runAttack runs a hostile hook that ends its output with DONE, and
// returns that output.
func runAttack(t *testing.T, what string, s Spec) string {
	t.Helper()
	res := runHook(t, s)
	out := string(res.Output)
	t.Logf("%s output:\n%s", what, out)
	if !strings.Contains(out, "DONE") {
		t.Fatalf("the attack did not run to its end: exit %d", res.ExitCode)
	}
	return out
}

// TestHookCannotTakeCallersDescriptors is the attack of issue 8 (hole 3):
// whoever runs livedict holds a file and a pipe open without
// close-on-exec (a shell's `9>file`, `| cat`), and a hook tries to write
// to them through an inherited descriptor, through pidfd_getfd on its
// parent, or by reopening them through /proc/PID/fd. The file is outside
// every directory the hook may write, and the pipe leads to whoever reads
// the caller's output.
func TestHookCannotTakeCallersDescriptors(t *testing.T) {
	if os.Getuid() == 0 && os.Getenv(unprivilegedEnv) == "" {
		// As root the hook is root in its user namespace and would have
		// CAP_SYS_PTRACE there; as another user it never has it. Both.
		t.Run("as-nobody", func(t *testing.T) { runAsNobody(t, "TestHookCannotTakeCallersDescriptors") })
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, md := range allModes {
		for _, noNet := range []bool{false, true} {
			if md.noNamespaces && noNet {
				continue // refused, see TestNoNetworkFailsClosedWithoutNamespaces
			}
			t.Run(fmt.Sprintf("%s,noNetwork=%v", md.name, noNet), func(t *testing.T) {
				target := filepath.Join(t.TempDir(), "callers-file")
				if err := os.WriteFile(target, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				// syscall.Open and syscall.Pipe do not set close-on-exec:
				// these arrive as descriptors from the caller's shell do.
				fd, err := syscall.Open(target, syscall.O_WRONLY|syscall.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer syscall.Close(fd)
				var p [2]int
				if err := syscall.Pipe(p[:]); err != nil {
					t.Fatal(err)
				}
				defer syscall.Close(p[1])
				syscall.CloseOnExec(p[0])
				r := os.NewFile(uintptr(p[0]), "pipe")
				defer r.Close()
				var st unix.Stat_t
				if err := unix.Fstat(p[1], &st); err != nil {
					t.Fatal(err)
				}
				pipe := fmt.Sprintf("pipe:[%d]", st.Ino)

				out := runAttack(t, "hook", Spec{
					Argv:         []string{self},
					Env:          map[string]string{attackEnv: target + "|" + pipe},
					NoNetwork:    noNet,
					noNamespaces: md.noNamespaces,
					helperInit:   md.helperInit,
				})
				if strings.Contains(out, "REACHED") {
					t.Errorf("the hook could follow its parent's /proc/PID/fd links:\n%s", out)
				}
				if strings.Contains(out, "WROTE") {
					t.Errorf("the hook wrote through a descriptor of its caller:\n%s", out)
				}
				if b, _ := os.ReadFile(target); len(b) > 0 {
					t.Errorf("the caller's file was written: %q", b)
				}
				syscall.Close(p[1])
				if b, _ := io.ReadAll(r); len(b) > 0 {
					t.Errorf("the caller's pipe was written: %q", b)
				}
			})
		}
	}
}

// TestEveryHelperThreadRestricted: the helper, where it is the hook's init,
// waits for the hook as its PID 1, a Go process with several threads. Issue 8 found only the thread
// that started the hook with no_new_privs and seccomp; every thread must
// have both while the hook runs.
func TestEveryHelperThreadRestricted(t *testing.T) {
	t.Parallel()
	needLayer(t, layerSeccomp)
	needLayer(t, layerPIDNS)
	wd := t.TempDir()
	m := marker()
	done := startSleepingHook(t, wd, m, true)
	// The helper: livedict-sandbox with this run's marker in its config.
	var helper int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.HasPrefix(b, []byte("livedict-sandbox\x00"+childArg+"\x00")) && bytes.Contains(b, []byte(m)) {
			helper, _ = strconv.Atoi(e.Name())
		}
	}
	if helper == 0 {
		t.Fatal("no helper process found")
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", helper))
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", helper, task.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // a thread that ended since the listing
		}
		if err != nil {
			t.Fatal(err)
		}
		status := string(b)
		if !strings.Contains(status, "\nNoNewPrivs:\t1\n") || !strings.Contains(status, "\nSeccomp:\t2\n") {
			t.Errorf("helper thread %s lacks no_new_privs or seccomp:\n%s", task.Name(), status)
		}
	}
	if len(tasks) < 2 {
		t.Logf("the helper has %d thread(s)", len(tasks))
	}
	killSleep(t, m)
	<-done
}
