package sandbox

import (
	"errors"
	"fmt"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// applyLandlock makes the whole filesystem read-only (and executable) for
// this thread and what it execs, except the work dir and the --write dirs.
//
// It uses the raw Landlock calls on the current, locked thread rather than
// go-landlock's RestrictPaths: that one restricts every thread of the
// process by walking /proc/<pid>/task, which hung inside a new PID
// namespace, and only this thread matters because it is the one that
// execs the hook.
//
// An error means Landlock is available but could not be set up as asked;
// the hook must not run then. A kernel without Landlock gives an "off"
// layer instead. abstractScoped reports that the hook cannot reach
// abstract Unix sockets made outside its sandbox.
func applyLandlock(cfg childConfig) (l Layer, abstractScoped bool, err error) {
	abi, err := ll.LandlockGetABIVersion()
	if err != nil {
		why := "not supported by this kernel: " + err.Error()
		if errors.Is(err, unix.EOPNOTSUPP) {
			why = "disabled in this kernel (boot with lsm=...,landlock to enable it)"
		}
		return off(layerLandlock, why), false, nil
	}

	// The rights each ABI version knows; handling all of them means
	// everything not granted below is denied.
	handled := uint64(ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile |
		ll.AccessFSReadDir | ll.AccessFSRemoveDir | ll.AccessFSRemoveFile |
		ll.AccessFSMakeChar | ll.AccessFSMakeDir | ll.AccessFSMakeReg |
		ll.AccessFSMakeSock | ll.AccessFSMakeFifo | ll.AccessFSMakeBlock |
		ll.AccessFSMakeSym)
	if abi >= 2 {
		handled |= ll.AccessFSRefer
	}
	if abi >= 3 {
		handled |= ll.AccessFSTruncate
	}
	if abi >= 5 {
		handled |= ll.AccessFSIoctlDev
	}
	attr := ll.RulesetAttr{HandledAccessFS: handled}
	// Every ABI: a process in a Landlock domain may not ptrace one outside
	// it, which also keeps pidfd_getfd, /proc/PID/fd and /proc/PID/mem of
	// livedict itself out of the hook's reach.
	extras := []string{"no ptrace, pidfd_getfd or /proc/PID/fd access to processes outside the sandbox"}
	if abi >= 6 {
		// The hook may not signal processes outside its sandbox, nor reach
		// abstract Unix sockets (which a network namespace does not hide).
		attr.Scoped = ll.ScopeSignal | ll.ScopeAbstractUnixSocket
		extras = append(extras, "no signals or abstract sockets outside the sandbox")
	}
	if cfg.NoNetwork && abi >= 4 {
		// Belt and braces for --no-network: TCP bind and connect are
		// handled and never granted.
		attr.HandledAccessNet = ll.AccessNetBindTCP | ll.AccessNetConnectTCP
		extras = append(extras, "no TCP bind or connect")
	}

	ruleset, err := ll.LandlockCreateRuleset(&attr, 0)
	if err != nil {
		return Layer{}, false, fmt.Errorf("landlock_create_ruleset: %w", err)
	}
	defer unix.Close(ruleset)

	read := uint64(ll.AccessFSExecute | ll.AccessFSReadFile | ll.AccessFSReadDir)
	devNull := uint64(ll.AccessFSReadFile|ll.AccessFSWriteFile) | handled&uint64(ll.AccessFSTruncate|ll.AccessFSIoctlDev)
	rules := []struct {
		path   string
		access uint64
	}{
		{"/", read},
		// Shell redirections to /dev/null are everywhere in hooks.
		{"/dev/null", devNull},
		{cfg.WorkDir, handled},
	}
	for _, d := range cfg.WriteDirs {
		rules = append(rules, struct {
			path   string
			access uint64
		}{d, handled})
	}
	for _, r := range rules {
		if err := addPathRule(ruleset, r.path, r.access); err != nil {
			return Layer{}, false, err
		}
	}
	if err := ll.LandlockRestrictSelf(ruleset, 0); err != nil {
		return Layer{}, false, fmt.Errorf("landlock_restrict_self: %w", err)
	}

	why := fmt.Sprintf("ABI %d: read-only filesystem except the work dir", abi)
	if n := len(cfg.WriteDirs); n > 0 {
		why += fmt.Sprintf(" and %d --write dir(s)", n)
	}
	for _, e := range extras {
		why += "; " + e
	}
	return on(layerLandlock, why), abi >= 6, nil
}

func addPathRule(ruleset int, path string, access uint64) error {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("landlock: open %s: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("landlock: stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		// Rights that only make sense on directories are refused on files.
		access &= uint64(ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile |
			ll.AccessFSTruncate | ll.AccessFSIoctlDev)
	}
	if err := ll.LandlockAddPathBeneathRule(ruleset, &ll.PathBeneathAttr{AllowedAccess: access, ParentFd: fd}, 0); err != nil {
		return fmt.Errorf("landlock: allow %s: %w", path, err)
	}
	return nil
}
