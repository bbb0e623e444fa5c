package sandbox

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// ptraceAttackEnv makes the test binary, run as a hook, the hostile hook of
// TestHookPtrace.
const ptraceAttackEnv = "LIVEDICT_SANDBOX_TEST_PTRACE"

// ptraceAttack is that hook. The spawner starts hooks stopped at their
// exec, so their seccomp filter lets PTRACE_TRACEME and PTRACE_DETACH
// through: it tries every other way to trace the processes that started it,
// and asks to be traced itself, on a thread of its own, and then takes a
// signal, which stops it for its tracer.
func ptraceAttack() {
	// The spawner, and the stand-in init of this namespace, by their
	// command lines (the host's /proc shows them).
	targets := append(procsWith(spawnerArg), procsWith(HelperName, "init")...)
	fmt.Printf("TARGETS %d\n", len(targets))
	for _, pid := range append(targets, os.Getppid(), 1) {
		for _, req := range []int{unix.PTRACE_ATTACH, unix.PTRACE_SEIZE, unix.PTRACE_PEEKDATA, unix.PTRACE_DETACH} {
			if _, _, errno := unix.Syscall6(unix.SYS_PTRACE, uintptr(req), uintptr(pid), 0, 0, 0, 0); errno == 0 {
				fmt.Printf("TRACED %d with request %d\n", pid, req)
			}
		}
	}
	signal.Ignore(syscall.SIGUSR2)
	// On the thread this runs on (the main one, the hook's own pid, as a
	// rule), then surely on another: a thread is traced on its own.
	runtime.LockOSThread()
	traceMe()
	if unix.Gettid() == os.Getpid() {
		done := make(chan struct{})
		go onAnotherThread(done)
		<-done
	}
	fmt.Println("DONE")
}

// onAnotherThread runs traceMe on a thread other than the main one,
// keeping the main one locked if it lands there.
func onAnotherThread(done chan struct{}) {
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
	if unix.Gettid() == os.Getpid() {
		go onAnotherThread(done)
		return
	}
	traceMe()
	close(done)
}

// traceMe asks for this thread to be traced, then sends it a signal, which
// stops it for its tracer, if it has one: that must let it go on.
func traceMe() {
	which := "thread"
	if unix.Gettid() == os.Getpid() {
		which = "main"
	}
	_, _, errno := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0, 0, 0, 0)
	fmt.Printf("TRACEME %s %v\n", which, errno == 0)
	_ = unix.Tgkill(os.Getpid(), unix.Gettid(), syscall.SIGUSR2)
	b, _ := os.ReadFile("/proc/thread-self/status")
	for l := range strings.Lines(string(b)) {
		if strings.HasPrefix(l, "TracerPid:") {
			fmt.Printf("AFTER %s %s", which, l)
		}
	}
}

// TestHookPtrace: a hook cannot trace the spawner, its stand-in init or
// anything else, and one that asks to be traced (allowed, where the
// spawner starts it) is let go by the spawner and runs to its end.
func TestHookPtrace(t *testing.T) {
	if os.Getuid() == 0 && os.Getenv(unprivilegedEnv) == "" {
		t.Run("as-nobody", func(t *testing.T) { runAsNobody(t, "TestHookPtrace") })
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	modes(t, func(t *testing.T, md mode) {
		out := runAttack(t, "ptrace", md.spec(Spec{
			Argv: []string{self},
			Env:  map[string]string{ptraceAttackEnv: "1"},
		}))
		if strings.Contains(out, "TRACED") {
			t.Errorf("the hook traced a process outside it:\n%s", out)
		}
		if !md.noNamespaces && strings.Contains(out, "TARGETS 0\n") {
			t.Errorf("the hook found no spawner to attack:\n%s", out)
		}
		direct := !md.noNamespaces && !md.helperInit
		for _, which := range []string{"main", "thread"} {
			if which == "main" && !strings.Contains(out, "TRACEME main") {
				continue // the attack ran on another thread only
			}
			if want := fmt.Sprintf("TRACEME %s %v\n", which, direct); !strings.Contains(out, want) {
				t.Errorf("want %q:\n%s", want, out)
			}
			if want := fmt.Sprintf("AFTER %s TracerPid:\t0\n", which); !strings.Contains(out, want) {
				t.Errorf("want %q: still traced after the signal:\n%s", want, out)
			}
		}
	})
}
