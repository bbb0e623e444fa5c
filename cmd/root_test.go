package cmd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/livedict/livedict/pkg/ttl"
)

func testApp() *App {
	return &App{IO: &IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, Clock: ttl.System}
}

// TestCommandTable: a one-shot run builds only the command it names from
// the table in root.go, so every command of the whole tree must be in it,
// under its own name, exactly once.
func TestCommandTable(t *testing.T) {
	table := map[string]int{}
	for _, c := range commands() {
		table[c.name]++
		if got := c.new(testApp()).Name(); got != c.name {
			t.Errorf("table entry %q builds command %q", c.name, got)
		}
	}
	tree := NewRootCmd(testApp()).Commands()
	for _, c := range tree {
		if table[c.Name()] != 1 {
			t.Errorf("command %q is in the table %d times, want once", c.Name(), table[c.Name()])
		}
	}
	if len(tree) != len(table) { // help joins the tree only when it runs
		t.Errorf("tree has %d commands, table %d", len(tree), len(table))
	}
}

// TestOneShotBuildsOneCommand checks which top-level commands a command
// line builds.
func TestOneShotBuildsOneCommand(t *testing.T) {
	all := len(commands())
	for _, tc := range []struct {
		args []string
		want int // top-level commands built
	}{
		{[]string{"get", "k"}, 1},
		{[]string{"--store", "sqlite:x.db", "-b", "get", "set", "k", "v"}, 1},
		{[]string{"--store=sqlite:x.db", "-q", "--json", "hook", "list"}, 1},
		{[]string{"-b", "main", "exit-codes"}, 1},
		{[]string{"help", "get"}, all},
		{[]string{"completion", "bash"}, all},
		{[]string{"__complete", "ge"}, all},
		{[]string{"gte", "k"}, all},       // unknown: cobra suggests "get"
		{[]string{"--bogus", "get"}, all}, // unknown flag: left to the usual error
		{[]string{"-qv", "get", "k"}, all},
		{[]string{"--help"}, all},
		{[]string{"--store"}, all},
		{nil, all},
	} {
		got := len(newRootCmd(testApp(), tc.args).Commands())
		if got != tc.want {
			t.Errorf("%q built %d top-level commands, want %d", tc.args, got, tc.want)
		}
	}
}

func TestIsEnvName(t *testing.T) {
	for name, want := range map[string]bool{
		"A": true, "_": true, "_9": true, "token_2": true, "SECRET_TOKEN": true,
		"": false, "1BAD": false, "9": false, "A-B": false, "A B": false,
		"TOKEN=abc": false, "é": false, "A\x00": false, "Ä": false,
	} {
		if got := isEnvName(name); got != want {
			t.Errorf("isEnvName(%q) = %v, want %v", name, got, want)
		}
	}
}
