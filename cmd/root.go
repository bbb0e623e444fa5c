// Package cmd is livedict's command line: one file per command, each
// building its cobra.Command from a function, all sharing an *App. Nothing
// here is package-level state, so tests can run many commands in one
// process.
package cmd

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// commands is every top-level command, by name, with the function that
// builds it. THIS TABLE IS THE ONE PLACE TO ADD A TOP-LEVEL COMMAND: one
// line here, its constructor in its own file. A one-shot run builds only
// the command it names (see Run), so a command missing from this table
// could not be run; TestCommandTable checks the table against the tree.
func commands() []topLevel {
	return []topLevel{
		{"set", newSetCmd}, {"get", newGetCmd}, {"getdel", newGetDelCmd}, {"getex", newGetExCmd},
		{"mset", newMSetCmd}, {"mget", newMGetCmd}, {"append", newAppendCmd}, {"strlen", newStrlenCmd},
		{"del", newDelCmd}, {"exists", newExistsCmd},
		{"lock", newLockCmd}, {"run", newRunCmd}, {"wait", newWaitCmd}, {"watch", newWatchCmd},
		{"ttl", func(a *App) *cobra.Command { return newTTLCmd(a, "ttl") }},
		{"pttl", func(a *App) *cobra.Command { return newTTLCmd(a, "pttl") }},
		{"expire", func(a *App) *cobra.Command { return newExpireCmd(a, "expire") }},
		{"expireat", func(a *App) *cobra.Command { return newExpireCmd(a, "expireat") }},
		{"persist", newPersistCmd},
		{"incr", func(a *App) *cobra.Command { return newIncrCmd(a, "incr") }},
		{"decr", func(a *App) *cobra.Command { return newIncrCmd(a, "decr") }},
		{"incrbyfloat", newIncrByFloatCmd},
		{"rename", newRenameCmd}, {"keys", newKeysCmd}, {"list", newListCmd},
		{"buckets", newBucketsCmd}, {"bucket", newBucketCmd}, {"stats", newStatsCmd}, {"reap", newReapCmd},
		{"export", newExportCmd}, {"import", newImportCmd},
		{"config", newConfigCmd}, {"completion", newCompletionCmd}, {"version", newVersionCmd},
		{"hook", newHookCmd}, {"daemon", newDaemonCmd}, {"identity", newIdentityCmd},
		{"exit-codes", func(*App) *cobra.Command { return newExitCodesTopic() }},
	}
}

// topLevel names a top-level command and builds it.
type topLevel struct {
	name string
	new  func(*App) *cobra.Command
}

// NewRootCmd builds the whole command tree around app.
func NewRootCmd(a *App) *cobra.Command { return newRootCmd(a, nil) }

// newRootCmd builds the root command for the command line args: with only
// the top-level command args name, when it is in the table (building all
// of them cost a one-shot `get` a tenth of its instructions); with the
// whole tree when args name no command, an unknown one (so cobra can
// suggest a near one), help or completion (which describe the tree).
func newRootCmd(a *App, args []string) *cobra.Command {
	root := &cobra.Command{
		Use:     "livedict",
		Example: "  livedict set token \"$t\" --ttl 55m\n  livedict get token || refresh\n  livedict help exit-codes",
		Short:   "A TTL key-value store for the shell",
		Long: `livedict is a TTL key-value store for the shell: scripts cache values in it,
people read and write it by hand, and every command exits in milliseconds.

Run 'livedict help exit-codes' for what each exit status means.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd.Flags())
			if err != nil {
				return err
			}
			a.Config = cfg
			a.started = true
			return nil
		},
	}
	root.SetOut(a.IO.Out)
	root.SetErr(a.IO.Err)
	root.SetIn(a.IO.In)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr(flagValueErr(err), fmt.Sprintf("run '%s --help' for usage", c.CommandPath()))
	})

	pf := root.PersistentFlags()
	// memory: is not offered: the command line refuses it (nothing written
	// there would outlive the command).
	pf.String("store", "", "store URL: sqlite:PATH, file:DIR, redis://HOST[:PORT][/DB][?prefix=P], rediss://…, unix:///SOCKET, or a path (env LIVEDICT_STORE)")
	pf.StringP("bucket", "b", "", "bucket to work in (env LIVEDICT_BUCKET; default main)")
	pf.String("config", "", "configuration file (env LIVEDICT_CONFIG)")
	pf.String("color", "", "colour on a terminal: auto, always or never (env LIVEDICT_COLOR)")
	pf.BoolVar(&a.JSON, "json", false, "print results (and errors, on stderr) as JSON, one object per line")
	pf.BoolVarP(&a.Verbose, "verbose", "v", false, "print counts from action commands")
	pf.BoolVarP(&a.Quiet, "quiet", "q", false, "do not print hints")
	pf.BoolVar(&a.NoHooks, "no-hooks", false, "record no hook events for this command")
	pf.BoolVar(&a.WaitHooks, "wait-hooks", false, "wait until the hooks this command triggered have run")

	built := false
	if only := commandName(root, args); only != "" && only != "help" && only != "completion" {
		for _, c := range commands() {
			if c.name == only {
				root.AddCommand(c.new(a))
				built = true
				break
			}
		}
	}
	if !built {
		for _, c := range commands() {
			root.AddCommand(c.new(a))
		}
	}
	root.SetHelpCommand(newHelpCmd())
	restoreNegativeNumbers(root)
	return root
}

// newHelpCmd replaces cobra's help command, which answers an unknown topic
// on stdout with exit 0.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command or topic (try: help exit-codes)",
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return usageErr(fmt.Errorf("unknown help topic %q", strings.Join(args, " ")), "run 'livedict help' for the commands and topics")
			}
			return target.Help()
		},
	}
}

// negMark prefixes an argument that looks like a negative number so the
// flag parser takes it as an argument, not a shorthand flag: `set n -5`,
// `incr n -3`, `expire k -1` work as in redis-cli. No argument can contain
// a NUL byte, so the mark never meets real input.
const negMark = "\x00neg"

// protectNegativeNumbers marks "-5", "-1.5", "-10s" and the like, except
// a word that is one of the command's own shorthand flags (keys -0) or the
// value of the flag before it.
func protectNegativeNumbers(root *cobra.Command, args []string) []string {
	if !slices.ContainsFunc(args, looksNegative) {
		return slices.Clone(args) // the common case: no command lookup needed
	}
	flags := root.PersistentFlags()
	if c, _, err := root.Find(args); err == nil {
		flags = c.Flags() // includes the persistent flags it inherits
	}
	takesValue := func(word string) bool {
		if !strings.HasPrefix(word, "-") {
			return false // a positional argument (a key named b), not -b
		}
		name, hasValue := strings.TrimLeft(word, "-"), strings.Contains(word, "=")
		var f *pflag.Flag
		if strings.HasPrefix(word, "--") {
			f = flags.Lookup(name)
		} else if len(name) == 1 {
			f = flags.ShorthandLookup(name)
		}
		return f != nil && !hasValue && f.NoOptDefVal == ""
	}
	out := make([]string, len(args))
	copy(out, args)
	for i, arg := range out {
		if arg == "--" {
			break
		}
		if !looksNegative(arg) {
			continue
		}
		if len(arg) == 2 && flags.ShorthandLookup(arg[1:]) != nil {
			continue
		}
		if i > 0 && takesValue(out[i-1]) {
			continue
		}
		out[i] = negMark + arg
	}
	return out
}

// commandName returns the top-level command name in args, skipping the
// global flags before it, or "" when it cannot tell (combined shorthands,
// an unknown flag, no name at all): then the whole tree is built.
func commandName(root *cobra.Command, args []string) string {
	flags := root.PersistentFlags()
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" || len(arg) < 2 || !strings.HasPrefix(arg, "-") {
			if arg == "--" || arg == "" || strings.HasPrefix(arg, "-") {
				return ""
			}
			return arg
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		var f *pflag.Flag
		if strings.HasPrefix(arg, "--") {
			f = flags.Lookup(name)
		} else if len(name) == 1 {
			f = flags.ShorthandLookup(name)
		}
		if f == nil {
			return ""
		}
		if !hasValue && f.NoOptDefVal == "" {
			i++ // its value
		}
	}
	return ""
}

// looksNegative says whether arg could be a negative number: "-5", "-1.5s",
// and the words Redis's strtold reads as numbers, "-inf", "-infinity" and
// "-nan" in any case: `incrbyfloat k -inf` works in redis-cli, and no
// command has shorthands that spell them.
func looksNegative(arg string) bool {
	digit := func(i int) bool { return len(arg) > i && arg[i] >= '0' && arg[i] <= '9' }
	if len(arg) >= 2 && arg[0] == '-' && (digit(1) || arg[1] == '.' && digit(2)) { // -5, -.5
		return true
	}
	switch strings.ToLower(arg) {
	case "-inf", "-infinity", "-nan":
		return true
	}
	return false
}

// unknownLeadingFlag reports an unknown flag before the command name.
// Cobra takes such a flag to have a value, swallows the command name, and
// then complains about the wrong word ("unknown command k" for
// `livedict --bogus get k`). It also refuses a command word that cobra
// would skip: an empty one (`livedict "$cmd" k` with cmd unset), "-", or
// words after a "--" that comes first (`livedict -- get k`). Cobra drops
// those words and, the root having nothing to run, printed the help on
// stdout with exit 0, as if the command had succeeded; or it named the
// key as the unknown command.
func unknownLeadingFlag(root *cobra.Command, args []string) error {
	flags := root.PersistentFlags()
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "" || arg == "-":
			return usageErr(fmt.Errorf("unknown command %q for \"livedict\"", arg), "run 'livedict --help' for usage")
		case arg == "--" && i+1 < len(args):
			return usageErr(fmt.Errorf("no command before \"--\" (the words after it are arguments, never the command)"), "put the command first: livedict COMMAND [flags] -- ARGS...")
		}
		if arg == "--" || !strings.HasPrefix(arg, "-") || len(arg) < 2 {
			return nil // the command name (or the end of flags) is reached
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		var f *pflag.Flag
		if strings.HasPrefix(arg, "--") {
			f = flags.Lookup(name)
		} else if len(name) == 1 {
			f = flags.ShorthandLookup(name)
		} else {
			return nil // combined shorthands: left to the flag parser
		}
		if f == nil && name != "help" && name != "h" {
			return usageErr(fmt.Errorf("unknown flag: %s", arg), "run 'livedict --help' for usage")
		}
		if f != nil && !hasValue && f.NoOptDefVal == "" {
			i++ // its value
		}
	}
	return nil
}

// restoreNegativeNumbers wraps every command so its RunE sees the
// arguments as typed.
func restoreNegativeNumbers(c *cobra.Command) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			for i, arg := range args {
				args[i] = strings.TrimPrefix(arg, negMark)
			}
			return run(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		restoreNegativeNumbers(sub)
	}
}

// newExitCodesTopic is the `livedict help exit-codes` help topic.
func newExitCodesTopic() *cobra.Command {
	return &cobra.Command{
		Use:   "exit-codes",
		Short: "What each exit status means",
		Long:  exitCodesHelp,
	}
}

// args checks the number of positional arguments, as a usage error.
func args(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= min && (max < 0 || len(args) <= max) {
			return nil
		}
		want := fmt.Sprintf("%d to %d arguments", min, max)
		switch {
		case min == max && min == 1:
			want = "1 argument"
		case min == max:
			want = fmt.Sprintf("%d arguments", min)
		case max < 0:
			want = "at least " + plural(int64(min), "argument")
		}
		return usageErr(fmt.Errorf("%s takes %s, got %d", cmd.Name(), want, len(args)),
			fmt.Sprintf("usage: %s", strings.TrimSpace(cmd.UseLine())))
	}
}

// groupArgs is Args for a command that only groups others (hook, bucket):
// alone it is a usage error naming them, as is an unknown one. cobra's
// "takes at least 1 argument" with the hint "usage: livedict hook [flags]"
// told a user nothing to type.
func groupArgs(cmd *cobra.Command, args []string) error {
	var names []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	hint := fmt.Sprintf("run 'livedict %s --help' for what each does", cmd.Name())
	if len(args) == 0 {
		return usageErr(fmt.Errorf("%s needs a command: %s", cmd.Name(), strings.Join(names, ", ")), hint)
	}
	return usageErr(fmt.Errorf("unknown %s command %q", cmd.Name(), args[0]),
		fmt.Sprintf("the %s commands: %s; %s", cmd.Name(), strings.Join(names, ", "), hint))
}

// flagValueErr words a flag value pflag could not parse as a number or a
// boolean in the user's terms: pflag's own line ended in Go's ("strconv.
// ParseBool: parsing "x": invalid syntax", for get --help=x or set --nx=x).
func flagValueErr(err error) error {
	var iv *pflag.InvalidValueError
	var ne *strconv.NumError
	if !errors.As(err, &iv) || !errors.As(err, &ne) {
		return err
	}
	want := "must be a number"
	switch {
	case ne.Func == "ParseBool":
		want = "must be true or false"
	case errors.Is(ne.Err, strconv.ErrRange):
		want = "is out of range"
	case strings.HasPrefix(ne.Func, "ParseInt") || strings.HasPrefix(ne.Func, "ParseUint"):
		want = "must be a whole number"
	}
	name := "--" + iv.GetFlag().Name
	if sh := iv.GetFlag().Shorthand; sh != "" {
		name = "-" + sh + "/" + name
	}
	return fmt.Errorf("invalid argument %q for %s: %s", iv.GetValue(), name, want)
}

// exclusive fails when more than one of the named flags is set.
func exclusive(fs *pflag.FlagSet, names ...string) error {
	var set []string
	for _, n := range names {
		if fs.Changed(n) {
			set = append(set, "--"+n)
		}
	}
	if len(set) > 1 {
		return usageErr(fmt.Errorf("%s cannot be used together", strings.Join(set, " and ")), "")
	}
	return nil
}
