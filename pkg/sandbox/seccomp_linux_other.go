//go:build linux && !amd64 && !arm64

package sandbox

// The filter reads the low half of arguments at little-endian offsets and
// has been written for amd64 and arm64 only; elsewhere the layer is off.
const (
	seccompAuditArch = 0
	seccompX32Bit    = 0
)

func archDeniedSyscalls() []uint32 { return nil }
