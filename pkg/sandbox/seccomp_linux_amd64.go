package sandbox

import "golang.org/x/sys/unix"

const (
	seccompAuditArch = unix.AUDIT_ARCH_X86_64
	// seccompX32Bit marks x32 system call numbers on amd64.
	seccompX32Bit = 0x40000000
)

func archDeniedSyscalls() []uint32 {
	return []uint32{unix.SYS_KEXEC_FILE_LOAD, unix.SYS_IOPL, unix.SYS_IOPERM}
}
