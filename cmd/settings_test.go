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
