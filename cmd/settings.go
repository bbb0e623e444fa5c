package cmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/livedict/livedict/pkg/readfile"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// setting is one configuration key: its default, the global flag that can
// set it (if any), and how its value is checked.
type setting struct {
	key   string
	flag  string
	def   string
	check func(string) error
	doc   string
	// text: a name or path, which a config file must give as a string.
	// YAML reads `bucket: 007` as the number 7 and TOML `bucket = 1e3`
	// as 1000; turned back into text they would name another bucket.
	text bool
}

func oneOf(vals ...string) func(string) error {
	return func(s string) error {
		for _, v := range vals {
			if s == v {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(vals, ", "))
	}
}

func isCount(s string) error {
	if n, err := strconv.ParseInt(s, 10, 64); err != nil || n < 0 {
		return fmt.Errorf("must be a whole number ≥ 0")
	}
	return nil
}

func isDuration(s string) error {
	d, err := ttl.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("must be a positive duration such as 5s or 1500ms")
	}
	return nil
}

// settings lists every configuration key livedict reads. Keeping them in one
// table gives `config` its listing and the file check its list of known keys.
var settings = []setting{
	{key: "store", text: true, flag: "store", doc: "store URL: sqlite:PATH, file:DIR, redis://HOST[:PORT][/DB][?prefix=P], rediss://…, unix:///SOCKET, or a path"},
	{key: "bucket", text: true, flag: "bucket", def: store.DefaultBucket, check: func(s string) error { return store.ValidateBucket(s) }, doc: "bucket used when -b is not given"},
	{key: "color", text: true, flag: "color", def: "auto", check: oneOf("auto", "always", "never"), doc: "colour on a terminal"},
	{key: "busy_timeout", def: "5s", check: isDuration, doc: "how long to wait for another process holding the store"},
	{key: "durability", text: true, def: "normal", check: oneOf("normal", "full"), doc: "full: fsync every commit (survives power loss)"},
	{key: "max_value_bytes", def: "67108864", check: isCount, doc: "largest value accepted (0 = no limit)"},
	{key: "max_total_keys", def: "0", check: isCount, doc: "most keys the store may hold (0 = no limit)"},
	{key: "retries", def: "3", check: isCount, doc: "how often a failed hook run is retried before it is marked failed"},
	{key: "retry_backoff", def: "1s", check: isDuration, doc: "wait before a hook's first retry; it doubles for each retry after"},
	{key: "max_event_value_bytes", def: "65536", check: isCount, doc: "how much of a value a hook event carries (the rest is cut)"},
	{key: "hook_concurrency", def: "4", check: isConcurrency, doc: "how many hooks may run at once (1 to 1024)"},
	{key: "hook_key_file", text: true, doc: "key that signs hook definitions on a shared (Redis) store; made 0600 on first use"},
	{key: "identity_file", text: true, doc: "age identity that opens encrypted buckets (default $XDG_CONFIG_HOME/livedict/identity.txt, made 0600 on first use)"},
	{key: "recipients_file", text: true, doc: "age public keys of other hosts, one a line, that encrypted buckets are also encrypted to"},
	{key: "connect_timeout", def: "2s", check: isDuration, doc: "how long to wait for a Redis server to answer"},
	{key: "redis_password_file", text: true, doc: "file holding the Redis password (instead of the URL or LIVEDICT_REDIS_PASSWORD)"},
	{key: "redis_ca_file", text: true, doc: "PEM file of the CAs that sign a rediss:// server's certificate (default: the system's)"},
}

// maxHookConcurrency caps hook_concurrency. The deliverer sizes a channel
// by it, so 9223372036854775807 made every delivering process (the
// daemon, and the detached one a plain `set` starts) panic with
// "makechan: size out of range"; each run is a process, so no machine
// runs more than this many hooks at once anyway.
const maxHookConcurrency = 1024

func isConcurrency(s string) error {
	if n, err := strconv.ParseInt(s, 10, 64); err != nil || n < 1 || n > maxHookConcurrency {
		return fmt.Errorf("must be a whole number from 1 to %d", maxHookConcurrency)
	}
	return nil
}

// Config is the effective configuration of one command.
type Config struct {
	Store         string
	Bucket        string
	Color         string
	BusyTimeout   time.Duration
	Durability    store.Durability
	MaxValueBytes int64
	MaxTotalKeys  int64
	// Hook delivery.
	Retries            int
	RetryBackoff       time.Duration
	MaxEventValueBytes int
	HookConcurrency    int
	// HookKeyFile signs and verifies hook definitions on shared stores.
	HookKeyFile string
	// Encryption at rest.
	IdentityFile   string
	RecipientsFile string
	// Redis.
	ConnectTimeout    time.Duration
	RedisPasswordFile string
	RedisCAFile       string

	// File is the configuration file that was read, if any.
	File string
	// values and sources, by key, for `livedict config`.
	values, sources map[string]string
}

// xdgDir returns $env, or fallback under the home directory, or "" when
// there is no home directory to put it under. A relative $env is ignored,
// as the XDG Base Directory spec says: it would put the store (or read a
// config) wherever the command happens to run.
func xdgDir(env, fallback string) string {
	if d := os.Getenv(env); filepath.IsAbs(d) {
		return d
	}
	home := store.HomeDir()
	if home == "" {
		return ""
	}
	return filepath.Join(home, fallback)
}

// configFile finds the configuration file and reports whether the user
// named it (then it must exist).
func configFile(flags *pflag.FlagSet) (path string, explicit bool) {
	if f := flags.Lookup("config"); f != nil && f.Changed {
		return f.Value.String(), true
	}
	if p := os.Getenv("LIVEDICT_CONFIG"); p != "" {
		return p, true
	}
	base := xdgDir("XDG_CONFIG_HOME", ".config")
	if base == "" {
		return "", false // no home: no default file, rather than one in "."
	}
	dir := filepath.Join(base, "livedict")
	for _, name := range []string{"config.toml", "config.yaml", "config.yml", "config.json"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, false
		}
	}
	return "", false
}

// loadConfig resolves every setting: flags > LIVEDICT_* > config file >
// defaults.
func loadConfig(flags *pflag.FlagSet) (*Config, error) {
	cfg := &Config{values: map[string]string{}, sources: map[string]string{}}
	// viper reads the configuration file; the precedence is resolved
	// below, by hand, since asking viper for each key (defaults, bound
	// flags, automatic env) cost every one-shot command about 4% of its
	// instructions, and a command run without a config file needs no
	// viper at all.
	var v *viper.Viper
	path, explicit := configFile(flags)
	if explicit && path == "" {
		// --config "$UNSET" must not quietly mean no file at all.
		return nil, usageErr(errors.New("flag --config: empty path"), "")
	}
	if path != "" {
		if _, err := os.Stat(path); err != nil && explicit {
			return nil, usageErr(fmt.Errorf("config file %s: %w", path, unwrapPathErr(err)), "")
		} else if err == nil {
			v = viper.New()
			if err := readConfigFile(v, path); err != nil {
				return nil, err
			}
			cfg.File = path
		}
	}
	for _, s := range settings {
		if v != nil && v.InConfig(s.key) {
			// The file's value is checked even when a flag or the
			// environment overrides it: a bad value in the file is an
			// error (SPEC), not one that waits for the day the
			// override is dropped (it passed unseen while
			// LIVEDICT_BUCKET or -b was given).
			if err := checkSetting(s, v.GetString(s.key), cfg.File); err != nil {
				return nil, err
			}
		}
		val, src := s.def, "default"
		envName := "LIVEDICT_" + strings.ToUpper(s.key)
		if f := flags.Lookup(s.flag); f != nil && f.Changed {
			val, src = f.Value.String(), "flag --"+s.flag
		} else if e, ok := os.LookupEnv(envName); ok && e != "" {
			val, src = e, "env "+envName
		} else if v != nil && v.InConfig(s.key) {
			val, src = v.GetString(s.key), cfg.File
		}
		if src != "default" && src != cfg.File { // the file's was checked above
			if err := checkSetting(s, val, src); err != nil {
				return nil, err
			}
		}
		if src == cfg.File && pathSettings[s.key] {
			val = configRelative(s.key, val, cfg.File)
		}
		cfg.values[s.key], cfg.sources[s.key] = val, src
	}
	cfg.Store = cfg.values["store"]
	if cfg.Store == "" {
		data := xdgDir("XDG_DATA_HOME", ".local/share")
		if data == "" {
			return nil, usageErr(errors.New("no home directory for the default store: HOME is unset and the user database has none"),
				"set HOME or XDG_DATA_HOME, or name a store with --store or LIVEDICT_STORE")
		}
		cfg.Store = "sqlite:" + filepath.Join(data, "livedict", "livedict.db")
		cfg.values["store"] = cfg.Store
	}
	cfg.Store = expandHome(cfg.Store)
	cfg.Bucket = cfg.values["bucket"]
	cfg.Color = cfg.values["color"]
	cfg.BusyTimeout, _ = ttl.ParseDuration(cfg.values["busy_timeout"])
	cfg.Durability = store.Durability(cfg.values["durability"])
	cfg.MaxValueBytes, _ = strconv.ParseInt(cfg.values["max_value_bytes"], 10, 64)
	cfg.MaxTotalKeys, _ = strconv.ParseInt(cfg.values["max_total_keys"], 10, 64)
	cfg.Retries, _ = strconv.Atoi(cfg.values["retries"])
	cfg.RetryBackoff, _ = ttl.ParseDuration(cfg.values["retry_backoff"])
	cfg.MaxEventValueBytes, _ = strconv.Atoi(cfg.values["max_event_value_bytes"])
	cfg.HookConcurrency, _ = strconv.Atoi(cfg.values["hook_concurrency"])
	if cfg.values["hook_key_file"] == "" {
		cfg.values["hook_key_file"] = configPath("hook.key")
	}
	cfg.HookKeyFile = expandHome(cfg.values["hook_key_file"])
	cfg.IdentityFile = cfg.values["identity_file"]
	if cfg.IdentityFile == "" {
		cfg.IdentityFile = configPath("identity.txt")
		cfg.values["identity_file"] = cfg.IdentityFile
	}
	cfg.IdentityFile = expandHome(cfg.IdentityFile)
	cfg.RecipientsFile = expandHome(cfg.values["recipients_file"])
	cfg.ConnectTimeout, _ = ttl.ParseDuration(cfg.values["connect_timeout"])
	cfg.RedisPasswordFile = expandHome(cfg.values["redis_password_file"])
	cfg.RedisCAFile = expandHome(cfg.values["redis_ca_file"])
	// `config` shows the store URL, never a password in it.
	cfg.values["store"] = store.RedactURL(cfg.values["store"])
	return cfg, nil
}

// checkSetting checks the value val of setting s that src (a flag, an
// environment variable or the config file) gave.
func checkSetting(s setting, val, src string) error {
	if s.key == "store" && val == "" {
		// --store "$UNSET" must not quietly mean the default
		// store; an empty environment variable counts as unset.
		return usageErr(fmt.Errorf("%s: empty store URL: name a store, or leave it unset for the default", src), "")
	}
	if s.check == nil {
		return nil
	}
	err := s.check(val)
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), strconv.Quote(val)) {
		// It names the value already ("invalid bucket
		// name \"a/b\": ..."): say it once.
		return usageErr(fmt.Errorf("%s: %v", src, err), "")
	}
	return usageErr(fmt.Errorf("%s: %s %q: %v", src, s.key, val, err), "")
}

// maxConfigFile caps what is read of a configuration file: a few hundred
// bytes of settings, so a path that is /dev/zero or a stray huge file is
// an error at once, not a hang that eats memory.
const maxConfigFile = 1 << 20

// readConfigFile reads TOML, YAML or JSON (by extension; TOML otherwise)
// and rejects keys livedict does not know, naming the file and the key.
func readConfigFile(v *viper.Viper, path string) error {
	format := "toml"
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		format = "yaml"
	case ".json":
		format = "json"
	}
	v.SetConfigType(format)
	data, err := readfile.Owned(path, maxConfigFile)
	if err != nil {
		return usageErr(fmt.Errorf("config file %s: %w", path, unwrapPathErr(err)), "")
	}
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return usageErr(configSyntaxErr(path, data, err), "")
	}
	known := map[string]bool{}
	for _, s := range settings {
		known[s.key] = true
	}
	top, nulls := topLevelNames(data, format)
	if twice := caseTwins(top); twice != "" {
		// livedict's keys are case-insensitive (viper's), TOML's and
		// JSON's are not: one of the two would silently win.
		return usageErr(fmt.Errorf("config file %s: %s is given twice, in different case", path, twice), "")
	}
	var unknown []string
	for _, k := range v.AllKeys() {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	for _, k := range top {
		if !known[strings.ToLower(k)] {
			unknown = append(unknown, strings.ToLower(k))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return usageErr(fmt.Errorf("config file %s: unknown key %q", path, unknown[0]), "run 'livedict config' to see the known keys")
	}
	if len(nulls) > 0 {
		// viper drops a key with no value (YAML's `store:`, JSON's
		// null) as if it were not there, which made it the default
		// store or bucket; an empty value is an error, as `store = ""`.
		sort.Strings(nulls)
		return usageErr(fmt.Errorf("config file %s: %s: no value: give one, or leave the key out for the default", path, strings.ToLower(nulls[0])), "")
	}
	for _, s := range settings {
		if !v.InConfig(s.key) {
			continue
		}
		x := v.Get(s.key)
		err := checkScalar(x)
		if _, isString := x.(string); err == nil && s.text && !isString && x != nil {
			err = fmt.Errorf("expected text in quotes, not %s: quote the value as you mean it", valueKind(x))
		}
		if err != nil {
			return usageErr(fmt.Errorf("config file %s: %s: %v", path, s.key, err), "")
		}
	}
	return nil
}

// topLevelNames lists the names at the top of a config file that viper
// has already read without error. viper's AllKeys lists only leaves, so an
// unknown table with nothing in it (`[redis]`, `foo: {}`) would pass the
// unknown-key check unseen; every setting livedict knows is a top-level
// single value, so its top-level names are what to check. nulls are the
// names given no value (YAML's `key:` or `~`, JSON's null).
func topLevelNames(data []byte, format string) (names, nulls []string) {
	var m map[string]any
	var err error
	switch format {
	case "yaml":
		err = yaml.Unmarshal(data, &m)
	case "json":
		err = json.Unmarshal(data, &m)
	default:
		err = toml.Unmarshal(data, &m)
	}
	if err != nil {
		return nil, nil // viper decoded it; its keys are checked already
	}
	names = make([]string, 0, len(m))
	for k, x := range m {
		names = append(names, k)
		if x == nil {
			nulls = append(nulls, k)
		}
	}
	return names, nulls
}

// caseTwins returns a name that appears among names in two spellings
// that differ only in case ("store and Store"), or "".
func caseTwins(names []string) string {
	sort.Strings(names)
	seen := map[string]string{}
	for _, n := range names {
		l := strings.ToLower(n)
		if first, ok := seen[l]; ok {
			return fmt.Sprintf("%q (as %q and %q)", l, first, n)
		}
		seen[l] = n
	}
	return ""
}

// valueKind names what a config file gave where text was expected.
func valueKind(x any) string {
	switch x.(type) {
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return fmt.Sprintf("the number %v", x)
	}
	return fmt.Sprintf("a date or other value (%v)", x)
}

// checkScalar refuses tables and lists where a single value is expected,
// and floats that are not whole numbers (JSON has no integers).
func checkScalar(x any) error {
	switch x := x.(type) {
	case map[string]any, []any:
		return fmt.Errorf("expected a single value, not a table or list")
	case float64:
		if x != math.Trunc(x) {
			return fmt.Errorf("%v is not a whole number", x)
		}
	}
	return nil
}

// configPath names a file in livedict's config folder, or "" when there is
// no home to find that folder in (the command that needs the file fails
// then, naming the setting, rather than using a file in ".").
func configPath(name string) string {
	base := xdgDir("XDG_CONFIG_HOME", ".config")
	if base == "" {
		return ""
	}
	return filepath.Join(base, "livedict", name)
}

// pathSettings name files (or, for store, a store that may be one).
var pathSettings = map[string]bool{"store": true, "hook_key_file": true, "identity_file": true,
	"recipients_file": true, "redis_password_file": true, "redis_ca_file": true}

// configRelative resolves a relative path that the configuration file at
// file gives (store = "cache.db", identity_file = "keys/id.txt") against
// that file's folder. Resolved against the working directory, as they
// were, each folder a script or cron ran in had a store of its own, and
// --encrypt made a new identity there. Flags and LIVEDICT_* are the
// command line's: relative to where it runs, as usual. URLs, ~/ and
// absolute paths are left as they are.
//
// Only store is a URL, read as store.Open reads it: a colon after a /, a
// . or a \ is part of a path (stores/10:00.db), and the *_file settings
// are paths whatever they hold.
func configRelative(key, val, file string) string {
	scheme := ""
	if s, rest, found := strings.Cut(val, ":"); key == "store" && found && !strings.ContainsAny(s, "/.\\") {
		if s != "sqlite" && s != "file" {
			return val // a URL (redis://, memory:)
		}
		scheme, val = s+":", rest
	}
	if val == "" || filepath.IsAbs(val) || strings.HasPrefix(val, "~/") {
		return scheme + val // not a relative path
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return scheme + val
	}
	return scheme + filepath.Join(dir, val)
}

func expandHome(p string) string {
	for _, prefix := range []string{"~/", "sqlite:~/", "file:~/"} {
		if strings.HasPrefix(p, prefix) {
			if home := store.HomeDir(); home != "" {
				return strings.TrimSuffix(prefix, "~/") + filepath.Join(home, p[len(prefix):])
			}
		}
	}
	return p
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// configSyntaxErr names the file and, where the parser knows it, the line,
// as compilers do (file:line: reason), so an editor can jump there. YAML's
// parser already puts the line in its message.
func configSyntaxErr(path string, data []byte, err error) error {
	msg := err.Error()
	var pe viper.ConfigParseError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		msg = pe.Unwrap().Error() // without viper's "While parsing config:"
	}
	var te *toml.DecodeError
	var je *json.SyntaxError
	switch {
	case errors.As(err, &te):
		row, col := te.Position()
		return fmt.Errorf("config file %s:%d:%d: %s", path, row, col, oneLine(msg))
	case errors.As(err, &je):
		if je.Offset <= int64(len(data)) {
			line := 1 + bytes.Count(data[:je.Offset], []byte("\n"))
			return fmt.Errorf("config file %s:%d: %s", path, line, oneLine(msg))
		}
	}
	if line := tomlRedefinedAt(data, msg); line > 0 {
		return fmt.Errorf("config file %s:%d: %s", path, line, oneLine(msg))
	}
	return fmt.Errorf("config file %s: %s", path, oneLine(msg))
}

// tomlRedefinedAt finds the line of go-toml's "key K is already defined",
// which carries no position: the second line that sets K (the settings
// are flat, so a line "K = ..." or "\"K\" = ..." is the key). 0 when msg
// is another error or the line cannot be told.
func tomlRedefinedAt(data []byte, msg string) int {
	key, ok := strings.CutPrefix(msg, "toml: key ")
	if key, ok = strings.CutSuffix(key, " is already defined"); !ok || key == "" {
		return 0
	}
	seen := 0
	for i, line := range strings.Split(string(data), "\n") {
		name, _, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		if name == key || name == `"`+key+`"` {
			if seen++; seen == 2 {
				return i + 1
			}
		}
	}
	return 0
}
