// Command livedict is a TTL key-value store for the shell.
package main

import (
	"os"

	"github.com/livedict/livedict/cmd"
	"github.com/livedict/livedict/pkg/sandbox"
)

func main() {
	// A hook's sandbox is set up by livedict's own binary, re-executed in
	// a hidden helper mode; in every other run this returns at once.
	sandbox.MaybeRunChild()
	os.Exit(cmd.Main())
}
