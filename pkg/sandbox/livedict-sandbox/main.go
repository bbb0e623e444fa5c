// Command livedict-sandbox is livedict's hook sandbox helper on its own: it
// sets up the sandbox (rlimits, no_new_privs, Landlock, seccomp, closing
// stray descriptors) and execs the hook, exactly as livedict re-executed in
// its hidden helper mode does, but without the start-up of every package
// livedict links (SQLite, cobra, viper, lipgloss). It imports pkg/sandbox
// and nothing else of livedict's.
//
// livedict uses it when it lies beside the livedict executable and passes
// the trust check (see sandbox.Run); otherwise livedict re-executes itself.
// It is not a command for people: run any other way it says so and exits 2.
package main

import (
	"os"

	"github.com/livedict/livedict/pkg/sandbox"
)

func main() {
	sandbox.MaybeRunChild()
	os.Stderr.WriteString("livedict-sandbox: the hook sandbox helper; livedict runs it, people do not\n")
	os.Exit(2)
}
