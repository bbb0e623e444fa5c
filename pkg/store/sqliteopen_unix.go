//go:build unix

package store

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// checkSideFiles looks at -journal, -wal and -shm by name before each
// transaction, and SQLite opens them by name a moment later. In a sticky
// /tmp another user can create the journal in between: one who flapped a
// hot journal in and out in a loop had it rolled back into the store
// within a few dozen commands, replacing the owner's data. So SQLite's
// own open(2) is wrapped (its unix VFS lets a program replace the system
// calls it makes, for fault injection and sandboxing): a side file is
// opened without following a symlink and the descriptor SQLite would use
// is checked with the trust rule, so what is checked is what is used. A
// refused one fails the open with EACCES; SQLite then reports it cannot
// open the file, and wrap names it (checkSideFiles again).

var guardSideFiles = sync.OnceValue(func() error {
	tls := libc.NewTLS()
	defer tls.Close()
	vfs := sqlite3.Xsqlite3_vfs_find(tls, 0)
	if vfs == 0 {
		return errNoVFS
	}
	v := (*sqlite3.Tsqlite3_vfs)(cPointer(vfs))
	name, err := libc.CString("open")
	if err != nil {
		return err
	}
	// Kept for the life of the process: SQLite keeps the name's pointer.
	sysOpen = (*(*func(*libc.TLS, uintptr, uintptr) uintptr)(unsafe.Pointer(&struct{ uintptr }{v.FxGetSystemCall})))(tls, vfs, name)
	if sysOpen == 0 {
		return errNoVFS
	}
	set := *(*func(*libc.TLS, uintptr, uintptr, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{v.FxSetSystemCall}))
	if rc := set(tls, vfs, name, funcPtr(trustedOpen)); rc != sqlite3.SQLITE_OK {
		return errNoVFS
	}
	return nil
})

var errNoVFS = NewError(KindStore, "cannot guard SQLite's side files: its unix VFS is not there")

// sysOpen is SQLite's own open, which trustedOpen calls.
var sysOpen uintptr

// funcPtr is f as the function pointer the transpiled SQLite calls, as
// modernc.org/sqlite's own __ccgo_fp makes them.
func funcPtr(f func(*libc.TLS, uintptr, int32, int32) int32) uintptr {
	var i any = f
	return (*[2]uintptr)(unsafe.Pointer(&i))[1]
}

// refused is the last refusal trustedOpen made: SQLite reports only that
// it could not open a file, and by the time the error is worded the file
// may be gone again (another user flapping it in and out).
var refused atomic.Pointer[TrustError]

// takeRefused returns (and forgets) the last refusal of a file whose name
// starts with real (the store or one of its side files), or nil.
func takeRefused(real string) error {
	te := refused.Load()
	if te == nil || !strings.HasPrefix(te.Path, real) || !refused.CompareAndSwap(te, nil) {
		return nil
	}
	return te
}

// cPointer is p, an address in the C heap of modernc.org/libc (never
// moved by Go's collector), as a pointer; written so, not as
// unsafe.Pointer(p), which go vet cannot tell from a Go address.
func cPointer(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// trustedOpen is open(2) for SQLite: its side files are opened with
// O_NOFOLLOW and refused (EACCES) when the descriptor fails the trust
// rule, and so is any other regular file (the store); folders and
// devices are opened as SQLite asked.
func trustedOpen(tls *libc.TLS, zFile uintptr, flags, mode int32) int32 {
	name := libc.GoString(zFile)
	side := strings.HasSuffix(name, "-journal") || strings.HasSuffix(name, "-wal") || strings.HasSuffix(name, "-shm")
	if side {
		flags |= unix.O_NOFOLLOW
	}
	fd := (*(*func(*libc.TLS, uintptr, int32, int32) int32)(unsafe.Pointer(&struct{ uintptr }{sysOpen})))(tls, zFile, flags, mode)
	if fd < 0 {
		return fd
	}
	var st unix.Stat_t
	err := unix.Fstat(int(fd), &st)
	switch {
	case err == nil && side:
		err = checkSideFile(name, &st)
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG:
		// The store itself (and SQLite's temporary files): the store
		// file was checked by name before, but one that another user
		// can rename in its folder may be swapped in between.
		err = trustStat(name, &st)
	case err == nil:
		return fd // a folder SQLite syncs, /dev/urandom
	}
	if err != nil {
		if te := (*TrustError)(nil); errors.As(err, &te) {
			refused.Store(te)
		}
		unix.Close(int(fd))
		*(*int32)(cPointer(libc.X__errno_location(tls))) = int32(unix.EACCES)
		return -1
	}
	return fd
}
