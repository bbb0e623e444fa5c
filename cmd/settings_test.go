package cmd

import (
	"path/filepath"
	"testing"
)

// TestNoHomeNoRelativePaths: with HOME unset (cron, env -i), the default
// store and config folder used to be ./.local/share and ./.config, so each
// working directory got a store of its own. They must come from the user
// database, or be "" (the store then is an error), never relative.
func TestNoHomeNoRelativePaths(t *testing.T) {
	t.Setenv("HOME", "")
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("XDG_CONFIG_HOME", "")
	for _, d := range []string{xdgDir("XDG_DATA_HOME", ".local/share"), xdgDir("XDG_CONFIG_HOME", ".config")} {
		if d != "" && !filepath.IsAbs(d) {
			t.Errorf("with HOME unset: %q, want an absolute path or none", d)
		}
	}
	if p := expandHome("sqlite:~/x.db"); p != "sqlite:~/x.db" && !filepath.IsAbs(p[len("sqlite:"):]) {
		t.Errorf("expandHome with HOME unset: %q", p)
	}
}

// A relative XDG_DATA_HOME or XDG_CONFIG_HOME is ignored, as the XDG Base
// Directory spec says: it put the store (and looked for the config)
// wherever the command happened to run.
func TestRelativeXDGIgnored(t *testing.T) {
	t.Setenv("HOME", "/home/someone")
	t.Setenv("XDG_DATA_HOME", "data")
	t.Setenv("XDG_CONFIG_HOME", "./conf")
	if d := xdgDir("XDG_DATA_HOME", ".local/share"); d != "/home/someone/.local/share" {
		t.Errorf("XDG_DATA_HOME=data: %q, want /home/someone/.local/share", d)
	}
	if d := xdgDir("XDG_CONFIG_HOME", ".config"); d != "/home/someone/.config" {
		t.Errorf("XDG_CONFIG_HOME=./conf: %q, want /home/someone/.config", d)
	}
	t.Setenv("XDG_DATA_HOME", "/abs/data")
	if d := xdgDir("XDG_DATA_HOME", ".local/share"); d != "/abs/data" {
		t.Errorf("XDG_DATA_HOME=/abs/data: %q", d)
	}
}

// TestConfigRelative: a relative path in the config file is the file's
// folder's; URLs, ~/ and absolute paths are left as given.
func TestConfigRelative(t *testing.T) {
	file := "/etc/livedict/config.toml"
	for in, want := range map[string]string{
		"cache.db":                  "/etc/livedict/cache.db",
		"sqlite:cache.db":           "sqlite:/etc/livedict/cache.db",
		"file:store":                "file:/etc/livedict/store",
		"keys/id.txt":               "/etc/livedict/keys/id.txt",
		"../shared/id.txt":          "/etc/shared/id.txt",
		"/var/lib/l.db":             "/var/lib/l.db",
		"sqlite:/var/lib/l.db":      "sqlite:/var/lib/l.db",
		"~/l.db":                    "~/l.db",
		"sqlite:~/l.db":             "sqlite:~/l.db",
		"redis://h:6379/0?prefix=p": "redis://h:6379/0?prefix=p",
		"rediss://h":                "rediss://h",
		"unix:///run/redis.sock":    "unix:///run/redis.sock",
		"memory:":                   "memory:",
		"":                          "",
	} {
		if got := configRelative("store", in, file); got != want {
			t.Errorf("configRelative(%q) = %q, want %q", in, got, want)
		}
	}
	// A colon does not make a URL of what store.Open takes as a path (its
	// part before the colon holds a / or .), nor of a file setting, which
	// is never a URL: both were left relative to the working directory.
	for key, in := range map[string]string{
		"store":         "stores/2026-12-08T10:00.db",
		"identity_file": "keys:prod/id.txt",
	} {
		if got, want := configRelative(key, in, file), "/etc/livedict/"+in; got != want {
			t.Errorf("configRelative(%s, %q) = %q, want %q", key, in, got, want)
		}
	}
}
