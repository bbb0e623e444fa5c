//go:build !unix

package cmd

// reservePoller does nothing here (see poller_unix.go).
func reservePoller() {}
