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

// TestExamplesNameTheirCommand: a command's --help examples are the ones a
// user copies for that command, so at least one must run it (decr once
// showed incr's examples, and its text said "livedict incr KEY -5").
func TestExamplesNameTheirCommand(t *testing.T) {
	a := &App{IO: &IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, Clock: ttl.System}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Hidden || !c.IsAvailableCommand() || c.Example == "" {
			return
		}
		if !strings.Contains(c.Example, c.CommandPath()) {
			t.Errorf("%q: no example runs it:\n%s", c.CommandPath(), c.Example)
		}
	}
	walk(NewRootCmd(a))
}

// TestIncrDecrHelp: decr's help speaks of decr, incr's of incr.
func TestIncrDecrHelp(t *testing.T) {
	a := &App{IO: &IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, Clock: ttl.System}
	root := NewRootCmd(a)
	for _, name := range []string{"incr", "decr"} {
		c, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		other := map[string]string{"incr": "decr", "decr": "incr"}[name]
		if strings.Contains(c.Long+c.Example, "livedict "+other+" ") {
			t.Errorf("%s's help shows %s:\n%s\n%s", name, other, c.Long, c.Example)
		}
	}
}

// TestFlagDefaultsShownOnce: pflag appends (default "X") to a flag whose
// default is not its type's zero value, so a usage text that states the
// default itself shows it twice, sometimes in two words ("--wait ... (default:
// do not wait) (default "0")").
func TestFlagDefaultsShownOnce(t *testing.T) {
	a := &App{IO: &IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, Clock: ttl.System}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		for _, line := range strings.Split(c.LocalFlags().FlagUsages(), "\n") {
			if strings.Count(line, "default") > 1 {
				t.Errorf("%s: %s", c.CommandPath(), strings.TrimSpace(line))
			}
		}
	}
	walk(NewRootCmd(a))
}
