//go:build linux && (amd64 || arm64)

package sandbox

import (
	"encoding/binary"
	"runtime"
	"testing"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// referencePolicy states the same deny-list as seccompProgram in
// github.com/elastic/go-seccomp-bpf's terms, with syscall names from its
// own tables: the reference the hand-built program is checked against.
func referencePolicy(t *testing.T, info *arch.Info, noNetwork bool) []bpf.Instruction {
	t.Helper()
	var names []string
	for _, nr := range deniedSyscalls() {
		name, ok := info.SyscallNumbers[int(nr)]
		if !ok {
			t.Fatalf("syscall %d unknown to go-seccomp-bpf", nr)
		}
		names = append(names, name)
	}
	bits := func(name string, mask uint64) seccomp.NameWithConditions {
		return seccomp.NameWithConditions{Name: name, Conditions: seccomp.ArgumentConditions{
			{Argument: 0, Operation: seccomp.BitsSet, Value: mask},
		}}
	}
	groups := []seccomp.SyscallGroup{
		{Names: names, Action: seccomp.ActionErrno},
		{Names: []string{"clone3"}, Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS)},
		{NamesWithCondtions: []seccomp.NameWithConditions{
			bits("clone", cloneNamespaceFlags),
			bits("unshare", unshareNamespaceFlags),
		}, Action: seccomp.ActionErrno},
	}
	if noNetwork {
		// socketpair is allowed for AF_UNIX when the type (its low four
		// bits) is SOCK_STREAM (1) or SOCK_SEQPACKET (5): bit 0 set, bits
		// 1 and 3 clear.
		cond := func(arg uint32, op seccomp.Operation, v uint64) seccomp.NameWithConditions {
			return seccomp.NameWithConditions{Name: "socketpair", Conditions: seccomp.ArgumentConditions{
				{Argument: arg, Operation: op, Value: v},
			}}
		}
		groups = append(groups,
			seccomp.SyscallGroup{Names: []string{"socket"}, Action: seccomp.ActionErrno},
			seccomp.SyscallGroup{NamesWithCondtions: []seccomp.NameWithConditions{
				cond(0, seccomp.NotEqual, unix.AF_UNIX),
				cond(1, seccomp.BitsNotSet, 1),
				cond(1, seccomp.BitsSet, 0xa),
			}, Action: seccomp.ActionErrno},
		)
	}
	policy := seccomp.Policy{DefaultAction: seccomp.ActionAllow, Syscalls: groups}
	prog, err := policy.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

// seccompData lays out a struct seccomp_data for x/net/bpf's VM, which
// loads words big-endian: each word goes where the filters read it (low
// half of an argument first, as on the little-endian machines we filter).
func seccompData(nr, auditArch uint32, arg0 uint64, arg1 ...uint64) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[seccompNrOffset:], nr)
	binary.BigEndian.PutUint32(b[seccompArchOffset:], auditArch)
	binary.BigEndian.PutUint32(b[seccompArg0Offset:], uint32(arg0))
	binary.BigEndian.PutUint32(b[seccompArg0Offset+4:], uint32(arg0>>32))
	for _, a := range arg1 {
		binary.BigEndian.PutUint32(b[seccompArg1Offset:], uint32(a))
		binary.BigEndian.PutUint32(b[seccompArg1Offset+4:], uint32(a>>32))
	}
	return b
}

func vmFor(t *testing.T, prog []unix.SockFilter) *bpf.VM {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(prog))
	for i, f := range prog {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("seccompProgram has instructions x/net/bpf cannot decode")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

func TestSeccompProgramMatchesReference(t *testing.T) {
	info, err := arch.GetInfo(runtime.GOARCH)
	if err != nil {
		t.Skip("skipped: go-seccomp-bpf has no table for", runtime.GOARCH)
	}
	if uint32(info.ID) != seccompAuditArch {
		t.Fatalf("audit arch %#x, go-seccomp-bpf says %#x", seccompAuditArch, info.ID)
	}
	const sigchld = uint64(unix.SIGCHLD)
	args := []uint64{
		0, sigchld, unix.CLONE_VM | unix.CLONE_VFORK | sigchld,
		unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD,
		unix.CLONE_NEWUSER, unix.CLONE_NEWNET | sigchld, unix.CLONE_NEWNS, unix.CLONE_NEWTIME,
		unix.CLONE_FILES, unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK, unix.AF_PACKET,
	}
	for _, noNetwork := range []bool{false, true} {
		mine := vmFor(t, seccompProgram(noNetwork, false))
		ref, err := bpf.NewVM(referencePolicy(t, info, noNetwork))
		if err != nil {
			t.Fatal(err)
		}
		check := func(nr uint32, arg uint64, arg1 ...uint64) {
			in := seccompData(nr, seccompAuditArch, arg, arg1...)
			got, err1 := mine.Run(in)
			want, err2 := ref.Run(in)
			if err1 != nil || err2 != nil || got != want {
				t.Errorf("noNetwork=%v nr %d (%s) args %#x %#x: action %#x (%v), reference %#x (%v)",
					noNetwork, nr, info.SyscallNumbers[int(nr)], arg, arg1, got, err1, want, err2)
			}
		}
		for nr := uint32(0); nr < 1024; nr++ {
			for _, a := range args {
				check(nr, a)
			}
		}
		// The socket type, with and without flags, for socket and
		// socketpair.
		for _, nr := range []uint32{unix.SYS_SOCKET, unix.SYS_SOCKETPAIR} {
			for _, family := range []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_NETLINK} {
				for _, typ := range []uint64{0, unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_RAW, unix.SOCK_SEQPACKET,
					unix.SOCK_STREAM | unix.SOCK_CLOEXEC, unix.SOCK_SEQPACKET | unix.SOCK_NONBLOCK,
					unix.SOCK_DGRAM | unix.SOCK_CLOEXEC, 0xf, 0xd} {
					check(nr, family, typ)
				}
			}
		}
		if runtime.GOARCH == "amd64" {
			// x32 system calls: the same audit arch, numbers with bit 30 set.
			for _, nr := range []uint32{0x40000000, 0x40000000 | unix.SYS_PTRACE, 0xffffffff} {
				check(nr, 0)
			}
		}
	}

	// Where the reference is weaker: its deny-lists allow system calls of
	// another architecture (int 0x80 on amd64), whose numbers differ.
	mine := vmFor(t, seccompProgram(true, false))
	for _, foreign := range []uint32{unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_ARM} {
		got, _ := mine.Run(seccompData(unix.SYS_GETPID, foreign, 0))
		if uint32(got) != unix.SECCOMP_RET_KILL_PROCESS {
			t.Errorf("foreign arch %#x: action %#x, want kill", foreign, got)
		}
	}
}

// TestSeccompDeniesTheDangerousCalls checks the deny-list against the
// names the sandbox promises, through go-seccomp-bpf's own syscall table,
// so a wrong constant cannot hide.
func TestSeccompDeniesTheDangerousCalls(t *testing.T) {
	info, err := arch.GetInfo(runtime.GOARCH)
	if err != nil {
		t.Skip("skipped: go-seccomp-bpf has no table for", runtime.GOARCH)
	}
	vm := vmFor(t, seccompProgram(false, false))
	eperm := unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	for _, name := range []string{
		"ptrace", "mount", "umount2", "pivot_root", "chroot", "kexec_load", "kexec_file_load",
		"init_module", "finit_module", "delete_module", "bpf", "perf_event_open",
		"keyctl", "add_key", "request_key", "reboot", "swapon", "swapoff", "setns",
		"process_vm_readv", "process_vm_writev", "open_by_handle_at", "userfaultfd",
		"io_uring_setup", "fsopen", "move_mount", "pidfd_getfd",
	} {
		nr, ok := info.SyscallNames[name]
		if !ok {
			t.Errorf("%s unknown on %s", name, runtime.GOARCH)
			continue
		}
		if got, _ := vm.Run(seccompData(uint32(nr), seccompAuditArch, 0)); uint32(got) != eperm {
			t.Errorf("%s: action %#x, want EPERM", name, got)
		}
	}
	for _, name := range []string{"read", "write", "openat", "execve", "wait4", "kill", "socket", "connect"} {
		nr := info.SyscallNames[name]
		if got, _ := vm.Run(seccompData(uint32(nr), seccompAuditArch, unix.AF_INET)); uint32(got) != unix.SECCOMP_RET_ALLOW {
			t.Errorf("%s: action %#x, want allow", name, got)
		}
	}
}

// TestSeccompTraceMeLetsOnlyTraceMeAndDetach: the filter of a hook the
// spawner starts itself (see startDirect) differs from the helper's only in
// letting ptrace through for PTRACE_TRACEME and PTRACE_DETACH.
func TestSeccompTraceMeLetsOnlyTraceMeAndDetach(t *testing.T) {
	eperm := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	for _, noNetwork := range []bool{false, true} {
		plain, traceMe := vmFor(t, seccompProgram(noNetwork, false)), vmFor(t, seccompProgram(noNetwork, true))
		for nr := uint32(0); nr < 1024; nr++ {
			for _, a := range []uint64{0, 1, unix.PTRACE_ATTACH, unix.PTRACE_DETACH, unix.PTRACE_SEIZE, unix.AF_UNIX, unix.CLONE_NEWUSER} {
				in := seccompData(nr, seccompAuditArch, a)
				got, err1 := traceMe.Run(in)
				want, err2 := plain.Run(in)
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				if nr == unix.SYS_PTRACE {
					if a == unix.PTRACE_TRACEME || a == unix.PTRACE_DETACH {
						want = unix.SECCOMP_RET_ALLOW
					} else if uint32(got) != eperm {
						t.Errorf("ptrace request %#x: action %#x, want EPERM", a, got)
					}
				}
				if got != want {
					t.Errorf("noNetwork=%v nr %d arg %#x: action %#x, want %#x", noNetwork, nr, a, got, want)
				}
			}
		}
	}
}
