package sandbox

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The layout of struct seccomp_data that the filter reads. The filter only
// ever looks at the low 32 bits of an argument, which on the little-endian
// machines it supports (amd64, arm64) come first; every argument it checks
// (clone and unshare flags, a socket family) is decided by those bits.
const (
	seccompNrOffset   = 0
	seccompArchOffset = 4
	seccompArg0Offset = 16
	seccompArg1Offset = 24
)

// Namespace flags a hook may not use: a new user namespace is the usual
// first step of kernel exploits, and the others are no use to a hook.
// CLONE_NEWTIME shares its bit with the exit signal in clone(2), so it is
// only checked for unshare(2).
const (
	cloneNamespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
		unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET
	unshareNamespaceFlags = cloneNamespaceFlags | unix.CLONE_NEWTIME
)

// deniedSyscalls is the deny-list: system calls that administer the
// machine, inspect or modify other processes, or are large kernel attack
// surfaces, none of which a hook reacting to a key change needs. Each
// fails with EPERM.
func deniedSyscalls() []uint32 {
	common := []uint32{
		unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV,
		unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_CHROOT,
		unix.SYS_OPEN_TREE, unix.SYS_MOVE_MOUNT, unix.SYS_FSOPEN, unix.SYS_FSCONFIG,
		unix.SYS_FSMOUNT, unix.SYS_FSPICK, unix.SYS_MOUNT_SETATTR,
		unix.SYS_KEXEC_LOAD, unix.SYS_REBOOT,
		unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
		unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN, unix.SYS_USERFAULTFD,
		unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY,
		unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_ACCT, unix.SYS_SYSLOG,
		unix.SYS_QUOTACTL, unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_SETNS,
		// Another process's descriptors: the hook's own are all it gets.
		unix.SYS_PIDFD_GETFD,
		// io_uring performs file and socket operations that seccomp
		// cannot see, which would bypass every rule here.
		unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
	}
	return append(common, archDeniedSyscalls()...)
}

// seccompProgram builds the deny-list filter by hand. (github.com/elastic/
// go-seccomp-bpf, which the tests use to check this program, builds its
// syscall tables at package init, about 0.2 ms and 160 KB on every livedict
// start, and its deny-lists let foreign-architecture system calls through.)
//
// Every check is "jump if equal, else skip the next instruction", so no
// jump ever goes further than a few instructions.
//
// traceMe lets ptrace(2) through for PTRACE_TRACEME and PTRACE_DETACH, and
// nothing else: the spawner starts a hook stopped at its exec that way, to
// set its limits before it runs (see startDirect). Neither request gives a
// hook any hold on another process: TRACEME hands its parent power over
// the caller, and DETACH only lets go of a tracee, which a hook can only
// have through a child's TRACEME, since ATTACH and SEIZE stay denied.
func seccompProgram(noNetwork, traceMe bool) []unix.SockFilter {
	const (
		ld    = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		jset  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
		allow = unix.SECCOMP_RET_ALLOW
		eperm = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		enosy = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	)
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jump := func(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
	}

	p := []unix.SockFilter{
		// A system call of another architecture (int 0x80 on amd64) has
		// other numbers and would slip past the deny-list: kill.
		stmt(ld, seccompArchOffset),
		jump(jeq, seccompAuditArch, 1, 0),
		stmt(ret, unix.SECCOMP_RET_KILL_PROCESS),
		stmt(ld, seccompNrOffset),
	}
	if seccompX32Bit != 0 {
		// x32 system calls: same architecture, other numbers.
		p = append(p, jump(jge, seccompX32Bit, 0, 1), stmt(ret, enosy))
	}
	if traceMe {
		p = append(p,
			jump(jeq, unix.SYS_PTRACE, 0, 5),
			stmt(ld, seccompArg0Offset),
			jump(jeq, unix.PTRACE_TRACEME, 2, 0),
			jump(jeq, unix.PTRACE_DETACH, 1, 0),
			stmt(ret, eperm),
			stmt(ret, allow),
		)
	}
	for _, nr := range deniedSyscalls() {
		p = append(p, jump(jeq, nr, 0, 1), stmt(ret, eperm))
	}
	// clone3 passes its flags in memory, out of a filter's sight. ENOSYS
	// makes the C library fall back to clone, whose flags are checked.
	p = append(p, jump(jeq, unix.SYS_CLONE3, 0, 1), stmt(ret, enosy))
	// Each block below ends in a return on both paths, so the system call
	// number does not need reloading after it.
	for _, c := range []struct{ nr, flags uint32 }{
		{unix.SYS_CLONE, cloneNamespaceFlags},
		{unix.SYS_UNSHARE, unshareNamespaceFlags},
	} {
		p = append(p,
			jump(jeq, c.nr, 0, 4),
			stmt(ld, seccompArg0Offset),
			jump(jset, c.flags, 0, 1),
			stmt(ret, eperm),
			stmt(ret, allow),
		)
	}
	if noNetwork {
		// No socket(2) at all. For the internet families the network
		// namespace already leaves nothing to reach and this is a second
		// lock on the same door; for Unix sockets by path it is the only
		// one: no namespace hides the filesystem, and Landlock (up to ABI
		// 7) does not restrict connect(2). A connected pair from
		// socketpair(2) reaches no one else, except a datagram one
		// (SOCK_RAW is a datagram socket in AF_UNIX), which can sendto(2)
		// any datagram socket by path: only stream and seqpacket pairs.
		p = append(p,
			jump(jeq, unix.SYS_SOCKET, 0, 1),
			stmt(ret, eperm),
			jump(jeq, unix.SYS_SOCKETPAIR, 0, 8),
			stmt(ld, seccompArg0Offset),
			jump(jeq, unix.AF_UNIX, 0, 4),
			stmt(ld, seccompArg1Offset),
			stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, sockTypeMask),
			jump(jeq, unix.SOCK_STREAM, 2, 0),
			jump(jeq, unix.SOCK_SEQPACKET, 1, 0),
			stmt(ret, eperm),
			stmt(ret, allow),
		)
	}
	return append(p, stmt(ret, allow))
}

// sockTypeMask is SOCK_TYPE_MASK: the socket type without the
// SOCK_NONBLOCK and SOCK_CLOEXEC flags.
const sockTypeMask = 0xf

// applySeccomp installs the filter on every thread of the helper (TSYNC),
// which also gives each no_new_privs when this thread has it: the thread
// that execs or forks the hook needs it, and the Go runtime's other
// threads live on beside the hook while the helper waits as its init.
func applySeccomp(cfg childConfig) Layer {
	if seccompAuditArch == 0 {
		return off(layerSeccomp, "no filter for this CPU architecture")
	}
	prog := seccompProgram(cfg.NoNetwork, false)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	threads := "every thread of the helper"
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	switch {
	case errno == 0 && r == 0:
	case errno == unix.ENOSYS || errno == unix.EINVAL:
		// Kernels before 3.17: this thread only. The helper is not
		// dumpable, so the hook cannot get at its other threads.
		if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
			return off(layerSeccomp, "prctl(PR_SET_SECCOMP): "+err.Error())
		}
		threads = "the helper thread that starts the hook"
	case errno != 0:
		return off(layerSeccomp, "seccomp(SECCOMP_SET_MODE_FILTER): "+errno.Error())
	default:
		return off(layerSeccomp, fmt.Sprintf("seccomp(SECCOMP_FILTER_FLAG_TSYNC): thread %d has another filter", r))
	}
	ptrace := "ptrace"
	if cfg.Probe && cfg.UserNS {
		// Where user namespaces work, hooks are started by the spawner
		// itself, with the filter of applyThreadSeccomp: say so.
		ptrace = "ptrace but for TRACEME and DETACH, which hooks the spawner starts itself need"
	}
	return on(layerSeccomp, seccompWhy(cfg, ptrace, threads))
}

// applyThreadSeccomp installs the filter, with traceMe, on this thread
// only: the spawner's thread that starts one hook (see startDirect).
func applyThreadSeccomp(cfg childConfig) (Layer, error) {
	if seccompAuditArch == 0 {
		return off(layerSeccomp, "no filter for this CPU architecture"), nil
	}
	prog := seccompProgram(cfg.NoNetwork, true)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return Layer{}, fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", errno)
	}
	return on(layerSeccomp, seccompWhy(cfg, "ptrace but for TRACEME and DETACH", "the hook and all it starts")), nil
}

func seccompWhy(cfg childConfig, ptrace, threads string) string {
	why := fmt.Sprintf("deny-list of %d system calls (%s, pidfd_getfd, mount, bpf, io_uring, ...), namespace flags of clone and unshare, clone3; on %s",
		len(deniedSyscalls()), ptrace, threads)
	if cfg.NoNetwork {
		why += "; --no-network: socket(2) for every family, Unix included, and socketpair(2) but for Unix stream and seqpacket pairs"
	} else {
		why += "; sockets allowed (--no-network not set)"
	}
	return why
}
