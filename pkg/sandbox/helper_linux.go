package sandbox

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// defaultHelper is the binary Run starts when Spec.Helper is empty: the
// livedict-sandbox beside the running executable when it is trusted, else
// the running executable itself.
func defaultHelper() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("sandbox: cannot find livedict's own binary: %w", err)
	}
	if p := filepath.Join(filepath.Dir(self), HelperName); TrustedHelper(p) == nil {
		return p, nil
	}
	return self, nil
}

// TrustedHelper reports why the helper binary at path must not be used, or
// nil. The binary runs as the user with the hook's descriptors before any
// restriction applies, so nobody else may have put it there or be able to
// change it: like every file livedict trusts (SPEC "Store", Trust), it must
// be a regular file (not a symbolic link) owned by the user or root and
// writable by neither group nor others, and so must the folder holding it,
// so that it cannot be replaced between this check and the exec. Its own
// executable bits are checked too.
func TrustedHelper(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if st.Mode&0o111 == 0 {
		return fmt.Errorf("%s is not executable", path)
	}
	if err := ownedSafely(path, &st, false, false, ""); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := unix.Stat(dir, &st); err != nil {
		return &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	return ownedSafely(dir, &st, false, false, "")
}

// ownedSafely is the ownership half of the trust rule for path, as st
// describes it: owned by the user or root, writable by nobody else (its
// group may write it when groupOK; every user may write a sticky folder,
// whose entries only their owners can replace). why ends each refusal.
func ownedSafely(path string, st *unix.Stat_t, groupOK, sticky bool, why string) error {
	uid := uint32(os.Geteuid())
	switch {
	case st.Uid != uid && st.Uid != 0:
		return fmt.Errorf("%s is owned by uid %d%s", path, st.Uid, why)
	case st.Mode&0o002 != 0 && !sticky:
		return fmt.Errorf("%s is writable by every user (mode %04o)%s", path, st.Mode&0o7777, why)
	case st.Mode&0o020 != 0 && !groupOK:
		return fmt.Errorf("%s is writable by its group (mode %04o)%s", path, st.Mode&0o7777, why)
	}
	return nil
}

// CheckCommand reports why the hook command at path must not be run, or
// nil: a file another user can change would run their code as the user
// at every event. Like the configuration file (and ssh's config), the
// command, resolved through symlinks, must be owned by the user or root
// and not writable by every user (group-writable passes: with per-user
// groups, umask 002, every file the user makes is), and so must the folder
// holding it unless that folder is sticky (then others cannot rename or
// replace what is ours in it).
func CheckCommand(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Stat(real, &st); err != nil {
		return &os.PathError{Op: "stat", Path: real, Err: err}
	}
	const why = ", who could change what runs as you"
	if err := ownedSafely(real, &st, true, false, why); err != nil {
		return err
	}
	dir := filepath.Dir(real)
	if err := unix.Stat(dir, &st); err != nil {
		return &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	return ownedSafely(dir, &st, true, st.Mode&unix.S_ISVTX != 0, why)
}
