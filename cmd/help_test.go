package cmd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/livedict/livedict/pkg/ttl"
	"github.com/spf13/cobra"
)

// TestEveryCommandHasAnExample walks the command tree: a command's --help
// must show at least one realistic example (a line starting with
// "livedict"), since that is what a new user copies first.
func TestEveryCommandHasAnExample(t *testing.T) {
	a := &App{IO: &IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, Clock: ttl.System}
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Hidden || !c.IsAvailableCommand() && !c.Runnable() && !c.HasSubCommands() {
			return // a help topic such as exit-codes
		}
		n++
		if !strings.Contains(c.Example, "livedict ") {
			t.Errorf("%q has no example in its --help (cobra.Command.Example)", c.CommandPath())
		}
	}
	walk(NewRootCmd(a))
	if n < 30 {
		t.Fatalf("walked only %d commands", n)
	}
}
