// Command livedict is a TTL key-value store for the shell.
package main

import (
	"os"

	"github.com/livedict/livedict/cmd"
)

func main() { os.Exit(cmd.Main()) }
