//go:build !linux

package cmd

import "syscall"

// childAttr: no parent-death signal outside Linux.
func childAttr() *syscall.SysProcAttr { return nil }

// waitExited: without waitid's WNOWAIT here, reap's wait4 alone waits; a
// signal racing the reaping could then reach a process that reused the
// pid within microseconds (rare).
func waitExited(pid int) {}
