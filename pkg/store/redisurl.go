package store

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// redisTarget is a parsed Redis store URL.
type redisTarget struct {
	Network  string // "tcp" or "unix"
	Addr     string // host:port or socket path
	TLS      bool
	User     string
	Password string
	DB       int
	Prefix   string
}

// defaultRedisPrefix names a store's keys when the URL has no ?prefix=.
const defaultRedisPrefix = "livedict"

// parseRedisURL reads redis://[USER[:PASSWORD]@]HOST[:PORT][/DB][?prefix=P],
// rediss://… (TLS) and unix:///path[?db=N][&prefix=P]. Errors never
// include the password.
func parseRedisURL(raw string) (redisTarget, error) {
	t, why := parseRedisTarget(raw)
	if why != "" {
		return redisTarget{}, fmt.Errorf("%w %q: %s", ErrBadURL, RedactURL(raw), why)
	}
	return t, nil
}

// parseRedisTarget is parseRedisURL without the error: why says what is
// wrong, "" when raw is a good URL. RedactURL asks it too.
func parseRedisTarget(raw string) (redisTarget, string) {
	var t redisTarget
	bad := func(why string) (redisTarget, string) {
		return redisTarget{}, why
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("not a URL")
	}
	if strings.Contains(raw, "#") {
		// url.Parse takes a '#' for the start of a fragment and drops
		// what follows: ?prefix=team#2 opened the store of prefix team,
		// another tenant's, without a word.
		return bad("'#' is not allowed (in a prefix or password, write it %23)")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("bad query")
	}
	t.Prefix = defaultRedisPrefix
	for k, v := range q {
		if len(v) != 1 {
			return bad("repeated option " + k)
		}
		switch k {
		case "prefix":
			t.Prefix = v[0]
		case "db":
			if u.Scheme != "unix" {
				return bad("db= is for unix: URLs; put the DB in the path")
			}
			n, err := strconv.Atoi(v[0])
			if err != nil || n < 0 || n > 1<<20 {
				return bad("db must be a small non-negative number")
			}
			t.DB = n
		default:
			return bad("unknown option " + k)
		}
	}
	if t.Prefix == "" || strings.ContainsAny(t.Prefix, "{}\x00 ") || len(t.Prefix) > 64 {
		return bad("prefix must be 1 to 64 bytes without braces, spaces or NUL")
	}
	if u.User != nil {
		t.User = u.User.Username()
		t.Password, _ = u.User.Password()
	}
	switch u.Scheme {
	case "redis", "rediss":
		t.Network = "tcp"
		t.TLS = u.Scheme == "rediss"
		if u.Opaque != "" || u.Host == "" {
			return bad("needs a host: redis://HOST[:PORT][/DB]")
		}
		host, port := u.Hostname(), u.Port()
		if !validRedisHost(host) {
			return bad("needs a host name or IP address")
		}
		if port == "" {
			port = "6379"
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return bad("bad port")
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		t.Addr = host + ":" + port
		path := strings.TrimPrefix(u.Path, "/")
		if path != "" {
			n, err := strconv.Atoi(path)
			if err != nil || n < 0 || n > 1<<20 {
				return bad("the path is the DB number")
			}
			t.DB = n
		}
	case "unix":
		t.Network = "unix"
		if u.Host != "" || u.Path == "" {
			return bad("use unix:///absolute/path")
		}
		t.Addr = u.Path
	default:
		return bad("use redis://, rediss:// or unix://")
	}
	if t.Password == "" {
		t.Password = os.Getenv("LIVEDICT_REDIS_PASSWORD")
	}
	return t, ""
}

// String is the URL without its password.
func (t redisTarget) String() string {
	var b strings.Builder
	switch {
	case t.Network == "unix":
		b.WriteString("unix://")
	case t.TLS:
		b.WriteString("rediss://")
	default:
		b.WriteString("redis://")
	}
	if t.User != "" || t.Password != "" {
		b.WriteString(url.User(t.User).String())
		if t.Password != "" {
			b.WriteString(":***")
		}
		b.WriteString("@")
	}
	b.WriteString(t.Addr)
	sep := "?"
	if t.Network != "unix" && t.DB != 0 {
		b.WriteString("/" + strconv.Itoa(t.DB))
	} else if t.DB != 0 {
		b.WriteString("?db=" + strconv.Itoa(t.DB))
		sep = "&"
	}
	if t.Prefix != defaultRedisPrefix {
		b.WriteString(sep + "prefix=" + url.QueryEscape(t.Prefix))
	}
	return b.String()
}

// RedactURL returns a store URL with any password replaced by ***, for
// every place a URL is shown (config, stats, errors, logs). It never
// fails: text that is not a URL with a password comes back as it is, and a
// redis URL that does not parse has everything between "//" and the last
// '@' hidden.
func RedactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw
	}
	slash := strings.IndexAny(rest, "/?")
	if slash >= 0 && slash < at {
		if i := strings.LastIndex(rest[:slash], "@"); i >= 0 {
			// User info, then an '@' in the path or query.
			at = i
		} else if scheme == "sqlite" || scheme == "file" {
			return raw
		} else if _, why := parseRedisTarget(raw); why == "" {
			// A good URL with no user info and an '@' after the
			// authority (?prefix=a@b, unix:///run/a@b.sock): nothing to hide.
			return raw
		}
		// Otherwise the password itself may hold a '/' or '?' (typed
		// unencoded: redis://u:pa/ss@h): the URL does not parse, and
		// everything up to the last '@' is hidden. Before, such an
		// error printed the password.
	}
	userinfo := rest[:at]
	user, _, hasPass := strings.Cut(userinfo, ":")
	if !hasPass {
		return raw
	}
	return scheme + "://" + user + ":***" + rest[at:]
}

func validRedisHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if net.ParseIP(h) != nil {
		return true
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
