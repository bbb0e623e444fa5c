package store

import (
	"fmt"
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
