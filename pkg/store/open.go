package store

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
)

// Open opens (creating if needed) the store named by a URL: "sqlite:PATH",
// "file:DIR", "memory:", "redis://…", "rediss://…", "unix:///…" (Redis), or a bare path,
// which means SQLite.
func Open(storeURL string, opts Options) (Store, error) {
	scheme, rest, found := strings.Cut(storeURL, ":")
	if !found || strings.ContainsAny(scheme, "/.\\") {
		return openSQLite(storeURL, opts)
	}
	switch scheme {
	case "sqlite":
		return openSQLite(rest, opts)
	case "file":
		if rest == "" {
			return nil, fmt.Errorf("%w %q: file: needs a folder", ErrBadURL, storeURL)
		}
		return openFile(rest, opts)
	case "memory":
		return NewMemory(opts), nil
	case "redis", "rediss", "unix":
		return openRedis(storeURL, opts, opts.Redis)
	}
	return nil, fmt.Errorf("%w %q: use sqlite:PATH, file:DIR, memory:, redis://HOST or a path", ErrBadURL, RedactURL(storeURL))
}

// HomeDir is $HOME or, when it is unset (cron jobs, `env -i`, some
// service managers), the home directory in the user database, as a shell
// expands ~ and ssh finds ~/.ssh; "" when neither names one. Falling back
// to "." gave every working directory a store and config of its own;
// falling back to the temp folder put a Redis store's state where another
// user may have made the folders first.
//
// A relative $HOME is passed over, as a relative XDG_* is: it too made
// the store depend on the working directory. So is a $HOME that belongs to
// another user when livedict runs as root (`sudo livedict` with a sudo
// that keeps HOME, `sudo -E`, `su -m`): root's folders made there, 0700,
// locked that user out of their own ~/.local. Root gets its own home, as
// `sudo -H` gives; other users keep $HOME whoever owns it (a container's
// arbitrary uid with a group-writable home).
func HomeDir() string {
	if h := os.Getenv("HOME"); filepath.IsAbs(h) && !othersHomeForRoot(h) {
		return h
	}
	if u, err := user.Current(); err == nil && filepath.IsAbs(u.HomeDir) {
		return u.HomeDir
	}
	return ""
}
