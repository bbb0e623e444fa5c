package sandbox

import "golang.org/x/sys/unix"

const (
	seccompAuditArch = unix.AUDIT_ARCH_AARCH64
	seccompX32Bit    = 0
)

func archDeniedSyscalls() []uint32 { return []uint32{unix.SYS_KEXEC_FILE_LOAD} }
