package store

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/livedict/livedict/pkg/ttl"
)

// The Redis backend keeps all of a store's keys under one hash tag {P}, so
// a store lives on one Cluster slot and every transaction may touch all of
// its keys:
//
//	{P}:fence        a counter every commit bumps; every read checks it
//	{P}:layout       "2": the layout below (written by every commit)
//	{P}:buckets      SET of user buckets that may hold entries
//	{P}:m:BUCKET     HASH key -> 8-byte big-endian deadline + 8-byte size
//	{P}:v:N:BUCKET:KEY  STRING: the value, with the deadline as its native
//	                 TTL (PXAT); N is len(BUCKET), so the name is unambiguous
//	{P}:s:N:BUCKET:KEY  STRING without TTL: a shadow copy of the value of an
//	                 entry with a deadline, kept only while someone listens
//	                 for expire events, so the event still carries the value
//	                 after Redis freed the entry
//	{P}:b:!NAME      HASH key -> 8-byte deadline (0) + value: livedict's
//	                 internal buckets, which never expire
//	{P}:pol          HASH bucket -> policy
//	{P}:dl           ZSET of user deadlines: score deadline, member bucket NUL key
//	{P}:changes      pub/sub channel: one message per commit
//	{P}:events       pub/sub channel of the EventBus
//	{P}:free         never exists (see redisCommit)
//
// Transactions are optimistic: every read round trip also reads the
// fence, writes are buffered in the transaction and committed in one
// script that applies them only if the fence has not moved, and bumps it
// (a large commit: MULTI/EXEC under WATCH of the fence). A transaction
// that meets a concurrent commit runs again, until the busy timeout
// (ErrBusy). See redisread.go.
//
// TTLs are Redis's own: a value's STRING key expires at the entry's
// deadline, so Redis frees expired values with no livedict running and
// redis-cli TTL/PTTL show them. The deadline is also kept in the bucket's
// metadata and the deadline index, and every read treats an entry whose
// deadline passed (by the transaction's clock), or whose value Redis has
// already freed, as absent. Reap (the daemon, or any command's lazy reap)
// removes the metadata of expired entries and records their expire
// events, handing over the shadow copy's value when there is one.
//
// Native TTLs need the transaction's clock to be the server's: a store
// opened with any clock other than ttl.System (tests' fake clocks) keeps
// deadlines in the metadata only, and values stay until reaped.

// RedisOptions are the settings only the Redis backend reads.
type RedisOptions struct {
	// ConnectTimeout bounds dialling and the handshake; 0 means 2s.
	ConnectTimeout time.Duration
	// Password, when not empty, overrides the URL's and the environment's.
	Password string
	// TLSConfig is used for rediss:// URLs; nil means verify the server
	// against the system roots.
	TLSConfig *tls.Config
}

// quietRedis keeps the client library from logging to stderr: livedict
// prints only what its commands decide to.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }

type redisStore struct {
	c      *redis.Client
	opts   Options
	target redisTarget
	p      string // "{prefix}:"
	// native: values carry their deadline as a Redis TTL (see above).
	native bool
	// connectTimeout bounds Open's dial and first round trip.
	connectTimeout time.Duration
	connMu         sync.Mutex
	idle           *redisConn // a connection no transaction uses (see takeConn)
	closed         bool
	// lookOpts and look: the client that looks at a commit the server
	// holds (redispause.go), made on first use. Not s.c: the held
	// commits may hold every connection of its pool.
	lookOpts redis.Options
	look     *redis.Client

	// clock measures the server's clock (redisclock.go).
	clock serverClockState

	hintMu sync.Mutex
	// hints counts the transactions running that read whether a watcher
	// listens; listening is the last answer (see Listening).
	hints     int
	listening bool
}

// hint keeps a transaction's answer to "does a watcher listen" for
// Listening, while the transaction runs.
func (s *redisStore) hint(on bool) {
	s.hintMu.Lock()
	s.hints++
	s.listening = on
	s.hintMu.Unlock()
}

func openRedis(raw string, opts Options, ro RedisOptions) (Store, error) {
	t, err := parseRedisURL(raw)
	if err != nil {
		return nil, err
	}
	if ro.Password != "" {
		t.Password = ro.Password
	}
	if ro.ConnectTimeout <= 0 {
		ro.ConnectTimeout = 2 * time.Second
	}
	o := &redis.Options{
		Network:     t.Network,
		Addr:        t.Addr,
		Username:    t.User,
		Password:    t.Password,
		DB:          t.DB,
		Protocol:    3,
		DialTimeout: ro.ConnectTimeout,
		ReadTimeout: -1, // a blocked command is bounded by the context
		// So is a write: a large import's writes wait while a loaded
		// server reads slowly, which is no failure.
		WriteTimeout: -1,
		PoolSize:     4,
		// A transaction waits for a connection of the pool no longer
		// than for another writer: commits a paused server still holds
		// (redispause.go) keep theirs until the pause ends.
		PoolTimeout:     opts.withDefaults().BusyTimeout,
		MinIdleConns:    0,
		MaxRetries:      -1,
		DisableIdentity: true,
		// Off: by default go-redis asks every new connection for
		// maintenance notifications (a Redis Enterprise feature), a round
		// trip that open-source servers answer with an error.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	// Without this go-redis reads replies under a background context, so a
	// server that accepts and never answers hangs every command
	// (redis_errors.txtar).
	o.ContextTimeoutEnabled = true
	if t.TLS {
		host, _, _ := net.SplitHostPort(t.Addr)
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if ro.TLSConfig != nil {
			o.TLSConfig = ro.TLSConfig.Clone()
		}
		if o.TLSConfig.ServerName == "" {
			o.TLSConfig.ServerName = strings.Trim(host, "[]")
		}
	}
	s := &redisStore{lookOpts: *o, opts: opts.withDefaults(), target: t, p: "{" + t.Prefix + "}:", connectTimeout: ro.ConnectTimeout}
	s.c = redis.NewClient(o) // which fills in o's defaults: lookOpts is a copy from before
	s.native = s.opts.Clock == ttl.System
	ctx, cancel := context.WithTimeout(context.Background(), ro.ConnectTimeout)
	defer cancel()
	if err := s.checkServer(ctx); err != nil {
		s.c.Close()
		return nil, err
	}
	return s, nil
}

// redisLayout is the value of {P}:layout in the layout above. A store
// with user buckets and no such value was written in the first Redis
// layout (values inside one hash per bucket) and is refused.
const redisLayout = "2"

// checkServer refuses a server older than 6.2 (GETEX, EXAT, SET PXAT …)
// and a store written in the first Redis layout, and turns connection
// failures into one line naming the address: one round trip, on the
// connection the first transaction then uses.
func (s *redisStore) checkServer(ctx context.Context) (err error) {
	// Generic replies: whatever a server older than needed answers to
	// GET or SCARD must not hide what it answered to HELLO.
	var hello, layout, users, clock *redis.Cmd
	cn := &redisConn{Conn: s.c.Conn()}
	defer func() { s.putConn(cn, err) }()
	_, err = cn.Pipelined(ctx, func(p redis.Pipeliner) error {
		hello = p.Do(ctx, "HELLO", "3")
		layout = p.Do(ctx, "GET", s.layoutKey())
		users = p.Do(ctx, "SCARD", s.bucketsKey())
		clock = p.Do(ctx, "TIME")
		return nil
	})
	if server, ok := parseRedisTime(clock.Val()); ok {
		s.setClock(server, RedisHostNow())
	}
	var reply redis.Error
	if err != nil && err != redis.Nil && !errors.As(err, &reply) {
		return s.wrap(s.noAnswer(err)) // the connection failed
	}
	if err != nil && err != redis.Nil && hello.Err() == nil && hello.Val() == nil {
		// Refused while go-redis set the connection up (a wrong
		// password, a DB index the server does not have): the commands
		// above never ran, so the refusal is the answer.
		return s.wrap(connectRefusal(err))
	}
	if err := hello.Err(); errors.As(err, &reply) && strings.Contains(strings.ToLower(err.Error()), "unknown command") {
		// Redis before 6.0 has no HELLO: say what is needed, not what failed.
		return WithKind(KindStore, fmt.Errorf("redis %s: server older than 6.0 (no HELLO): livedict needs Redis 6.2 or newer", s.target.Addr))
	} else if err != nil {
		return s.wrap(connectRefusal(err))
	}
	m, _ := hello.Val().(map[any]any)
	ver, _ := m["version"].(string)
	cn.id, _ = m["id"].(int64) // for a commit the server holds (redispause.go)
	if !redisVersionOK(ver) {
		return WithKind(KindStore, fmt.Errorf("redis %s: server version %q: livedict needs Redis 6.2 or newer", s.target.Addr, ver))
	}
	for _, c := range []redis.Cmder{layout, users} {
		if err := s.keyRefused(c); err != nil {
			return err
		}
	}
	n, err := users.Int64()
	if err != nil {
		return s.wrap(err)
	}
	l, err := layout.Text()
	if err != nil && err != redis.Nil {
		return s.wrap(err)
	}
	if v, err := strconv.Atoi(l); l != redisLayout && l != "" && (err != nil || v < 2 || strconv.Itoa(v) != l) {
		// No livedict writes another value there (the first layout
		// wrote none): not a newer store but a key written outside.
		return fmt.Errorf("%w: redis %s: key %q holds %q, a layout no livedict writes (written outside livedict?)", ErrCorrupt, s.target.Addr, s.layoutKey(), l)
	}
	if l != redisLayout && l != "" {
		return WithKind(KindStore, fmt.Errorf("redis %s: prefix %q holds a store in layout %q, written by a newer livedict: use that livedict, or export with it and import with this one", s.target.Addr, s.target.Prefix, l))
	}
	if l != redisLayout && n > 0 {
		return WithKind(KindStore, fmt.Errorf("redis %s: prefix %q holds a store in an older livedict layout (values inside one hash per bucket): export it with the livedict that wrote it and import it with this one (see README, Redis)", s.target.Addr, s.target.Prefix))
	}
	return nil
}

// noAnswer says what a timeout while connecting means: the server took
// the connection and did not answer within connect_timeout. On rediss://
// the likeliest cause is a server without TLS on that port, which waits
// for a command while the client waits for its handshake; the bare
// "context deadline exceeded" said neither.
func (s *redisStore) noAnswer(err error) error {
	answers := false
	if !s.target.TLS && (errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
		var line string
		if line, answers = s.greeting(); line != "" {
			// A server at its maxclients says so and closes at once:
			// the client saw only the closed socket ("broken pipe").
			return fmt.Errorf("the server refused the connection: %s", line)
		}
	}
	if answers && errors.Is(err, io.EOF) {
		// A plain Redis that answers a new connection closed this one
		// (CLIENT KILL, its timeout, a proxy): no TLS port.
		return fmt.Errorf("the server closed the connection without an answer (it answers a new one: killed by CLIENT KILL, or its timeout?): %w", err)
	}
	if !s.target.TLS && errors.Is(err, io.EOF) {
		// A TLS port closes on a plain client's first bytes: the bare
		// "EOF" said nothing of where to look.
		return fmt.Errorf("the server closed the connection without an answer (a TLS port? rediss:// speaks TLS): %w", err)
	}
	var ne net.Error
	if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
		return err
	}
	if s.target.TLS {
		return fmt.Errorf("no TLS handshake within connect_timeout (%s): is this port a TLS one? (rediss:// needs the server's tls-port; a plain port never answers): %w", s.connectTimeout, err)
	}
	return fmt.Errorf("no answer within connect_timeout (%s): %w", s.connectTimeout, err)
}

// greeting is the error line a plain server sends on a new connection
// before it closes it ("ERR max number of clients reached"), or "" when
// it sends none within a moment: read only to explain a connection the
// server closed at once. When it sends none, answers reports whether the
// new connection answers a PING as Redis does (+PONG, or -NOAUTH without
// the password): then the closed one was no TLS port's.
func (s *redisStore) greeting() (line string, answers bool) {
	o := s.c.Options()
	conn, err := net.DialTimeout(o.Network, o.Addr, min(s.connectTimeout, time.Second))
	if err != nil {
		return "", false
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	b := make([]byte, 256)
	n, _ := io.ReadAtLeast(conn, b, 1)
	line, _, _ = strings.Cut(string(b[:n]), "\r\n")
	if n == 0 {
		conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := io.WriteString(conn, "PING\r\n"); err == nil {
			n, _ = io.ReadAtLeast(conn, b, 1)
			answers = n > 0 && (b[0] == '+' || b[0] == '-')
		}
		return "", answers
	}
	if !strings.HasPrefix(line, "-") {
		return "", false
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, line[1:]), false
}

// connectRefusal names what a server's refusal during the connection's
// set-up means, in one line: the replies themselves run long (NOAUTH's)
// or say nothing about where to look.
func connectRefusal(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "invalid password"):
		return redisOwnText("authentication failed: wrong user or password")
	case strings.Contains(msg, "NOAUTH"):
		return redisOwnText("authentication required: give the password in the URL, LIVEDICT_REDIS_PASSWORD or redis_password_file")
	case strings.Contains(msg, "DB index is out of range"):
		return redisOwnText("the server has no such database (DB index out of range)")
	}
	return err
}

// redisOwnText is an error whose whole text livedict wrote, with nothing
// of the server's or the client library's in it: wrap does not hide the
// password in it. Replacing a password that happens to be a word of it
// ("wrong") mangled the line ("*** user or password") and told whoever
// read it what the password was.
type redisOwnText string

func (e redisOwnText) Error() string { return string(e) }

func redisVersionOK(ver string) bool {
	parts := strings.SplitN(ver, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > 6 || major == 6 && minor >= 2
}

// wrap turns a client error into a store error naming the server, never
// its password.
func (s *redisStore) wrap(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return WithKind(KindInterrupted, err)
	}
	var ke interface{ ErrorKind() Kind }
	if errors.As(err, &ke) {
		return err
	}
	if errors.Is(err, redis.ErrPoolTimeout) {
		return fmt.Errorf("%w: redis %s: every connection of this process stayed in use for %s (commits the server holds?)", ErrBusy, s.target.Addr, s.opts.busyFor())
	}
	msg := redisScriptSuffix().ReplaceAllString(err.Error(), "")
	if strings.HasPrefix(msg, "WRONGTYPE ") {
		// A key of the store replaced outside livedict (redis-cli, another
		// application on the prefix) by one of another type. Redis's line
		// alone named neither the key nor the cause.
		return fmt.Errorf("%w: redis %s: a key under %s holds another type than livedict keeps there (written outside livedict?): %s",
			ErrCorrupt, s.target.Addr, strings.TrimSuffix(s.p, ":"), msg)
	}
	if strings.HasPrefix(msg, "ERR value is not an integer or out of range") {
		// The one INCR livedict sends is the commit's bump of the fence:
		// a fence set to text outside livedict. Redis's line named
		// neither the key nor the cause.
		return fmt.Errorf("%w: redis %s: key %q does not hold the integer commit counter livedict keeps there (written outside livedict?): redis-cli DEL it and livedict starts it again",
			ErrCorrupt, s.target.Addr, s.fence())
	}
	if strings.HasPrefix(msg, "READONLY ") {
		msg = "the server is a read-only replica: write to its primary (" + msg + ")"
	}
	var own redisOwnText
	if s.target.Password != "" && !errors.As(err, &own) {
		msg = strings.ReplaceAll(msg, s.target.Password, "***")
	}
	if strings.HasPrefix(msg, "OOM ") {
		// At maxmemory with noeviction: nothing was written, and a
		// command that only frees memory is still let through.
		return fmt.Errorf("%w: %w", ErrServerFull, &redisError{msg: "redis " + s.target.Addr + ": " + msg, err: err})
	}
	return WithKind(KindStore, &redisError{msg: "redis " + s.target.Addr + ": " + msg, err: err})
}

// keyRefused returns, for a command the ACL refused on its key, an error
// naming the command and the key: Redis's line says only "one of the keys
// used as arguments", and an operator whose pattern misses part of the
// prefix (~team:* for {team}:…) could not tell which. Nil otherwise.
func (s *redisStore) keyRefused(c redis.Cmder) error {
	err := c.Err()
	if err == nil || !strings.HasPrefix(err.Error(), "NOPERM ") || !strings.Contains(err.Error(), "keys") || len(c.Args()) < 2 {
		return nil
	}
	return s.wrap(fmt.Errorf("NOPERM this user may not run %s %s: livedict needs all its commands on the keys and channels of its prefix",
		strings.ToUpper(fmt.Sprint(c.Args()[0])), fmt.Sprint(c.Args()[1])))
}

// redisScriptSuffix is what Redis 7 appends to the error of a command
// that failed inside a script ("script: SHA, on @user_script:17."):
// livedict's commit script, which says nothing to the user. Compiled on
// first use: a one-shot command on SQLite never needs it.
var redisScriptSuffix = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`\.? script: [0-9a-f]{40}, on @user_script:[0-9]+\.?$`)
})

// redisError is a client error as livedict shows it (the server named,
// never its password), still matching what caused it for errors.Is.
type redisError struct {
	msg string
	err error
}

func (e *redisError) Error() string { return e.msg }
func (e *redisError) Unwrap() error { return e.err }

// Transient reports whether err may pass when the same work is tried
// again later: another process held the store past the busy timeout, or
// its server could not be reached or dropped the connection. A command
// that waits (wait) rides such errors out until its own deadline.
func Transient(err error) bool {
	var ne net.Error
	return errors.Is(err, ErrBusy) || connLost(err) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &ne)
}

// connLost reports whether err says the connection broke (the server
// restarted or dropped it): a transaction that had sent no write can run
// again on a new one.
func connLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}

func (s *redisStore) fence() string             { return s.p + "fence" }
func (s *redisStore) bucketsKey() string        { return s.p + "buckets" }
func (s *redisStore) bucketKey(b string) string { return s.p + "b:" + b }
func (s *redisStore) metaKey(b string) string   { return s.p + "m:" + b }
func (s *redisStore) layoutKey() string         { return s.p + "layout" }

// freeKey never exists: a commit that only frees memory deletes it first
// (see redisCommit).
func (s *redisStore) freeKey() string { return s.p + "free" }

// valueKey and shadowKey name a user entry's value and its shadow copy.
func (s *redisStore) valueKey(b, k string) string { return s.entryKey("v:", b, k) }
func (s *redisStore) shadowKey(b, k string) string {
	return s.entryKey("s:", b, k)
}

func (s *redisStore) entryKey(kind, b, k string) string {
	n := strconv.Itoa(len(b))
	var sb strings.Builder
	sb.Grow(len(s.p) + len(kind) + len(n) + len(b) + len(k) + 2)
	sb.WriteString(s.p)
	sb.WriteString(kind)
	sb.WriteString(n)
	sb.WriteByte(':')
	sb.WriteString(b)
	sb.WriteByte(':')
	sb.WriteString(k)
	return sb.String()
}
func (s *redisStore) policyKey() string      { return s.p + "pol" }
func (s *redisStore) changesChannel() string { return s.p + "changes" }
func (s *redisStore) eventsChannel() string  { return s.p + "events" }

func (s *redisStore) Shared() bool { return true }

func (s *redisStore) Locate() Info {
	return Info{Backend: "redis", Location: s.target.String(), StateDir: redisStateDir(s.target)}
}

// redisStateDir is this machine's folder for a Redis store's local state:
// $XDG_STATE_HOME/livedict/redis/HASH, HASH naming the server, DB and
// prefix (not the user or password), so every local user of one store on
// this host, under one account, shares it. The hooks runtime creates it
// 0700 under the trust rule (hooks.OpenStateDir).
func redisStateDir(t redisTarget) string {
	base := os.Getenv("XDG_STATE_HOME")
	if !filepath.IsAbs(base) { // a relative one is ignored, as XDG says
		// Only when there is no home at all, a folder of this user's
		// own in the shared temp folder (as tmux's /tmp/tmux-UID):
		// .local there was one folder for every such user, and the
		// first one to make it (0700) locked the others out.
		if home := HomeDir(); home != "" {
			base = filepath.Join(home, ".local", "state")
		} else {
			base = filepath.Join(os.TempDir(), "livedict-"+strconv.Itoa(os.Geteuid()), "state")
		}
	}
	sum := sha256.Sum256([]byte(t.Network + "\x00" + t.Addr + "\x00" + strconv.Itoa(t.DB) + "\x00" + t.Prefix))
	return filepath.Join(base, "livedict", "redis", hex.EncodeToString(sum[:8]))
}

func (s *redisStore) Info() (Info, error) {
	info := s.Locate()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.BusyTimeout)
	defer cancel()
	names, err := s.c.SMembers(ctx, s.bucketsKey()).Result()
	if err != nil {
		return Info{}, s.wrap(err)
	}
	keys := []string{s.fence(), s.bucketsKey(), s.policyKey(), s.deadlineKey()}
	for _, n := range names {
		keys = append(keys, s.metaKey(n))
		// Values live in keys of their own: count their bytes from the
		// metadata rather than asking for each key's memory.
		meta, err := s.c.HGetAll(ctx, s.metaKey(n)).Result()
		if err != nil {
			return Info{}, s.wrap(err)
		}
		for k, raw := range meta {
			if e, err := decodeRedisMeta(n, k, raw); err == nil {
				info.SizeBytes += e.Size + int64(len(s.valueKey(n, k)))
			}
		}
	}
	for _, k := range keys {
		n, err := s.c.MemoryUsage(ctx, k).Result()
		if err != nil && strings.HasPrefix(err.Error(), "NOPERM") {
			// A user denied MEMORY (it is in no read category) still
			// gets its stats: the values and their key names, without
			// the server's overhead for the indexes.
			break
		}
		if err != nil && err != redis.Nil {
			return Info{}, s.wrap(err)
		}
		info.SizeBytes += n
	}
	return info, nil
}

func (s *redisStore) Close() error {
	s.connMu.Lock()
	s.closed = true
	if s.idle != nil {
		s.idle.Close()
		s.idle = nil
	}
	if s.look != nil {
		s.look.Close()
	}
	s.connMu.Unlock()
	return s.c.Close()
}

// looker returns the client that looks at a commit the server holds
// (redispause.go), or nil once the store is closed.
func (s *redisStore) looker() *redis.Client {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.look == nil && !s.closed {
		o := s.lookOpts
		s.look = redis.NewClient(&o)
	}
	return s.look
}

func (s *redisStore) Update(ctx context.Context, fn func(Tx) error) error {
	return s.run(ctx, true, fn)
}

func (s *redisStore) View(ctx context.Context, fn func(Tx) error) error {
	return s.run(ctx, false, fn)
}

// redisConn is a transaction's connection and the server's id for it
// (CLIENT ID; 0 while unknown, -1 when the user may not ask), which a
// commit the server holds needs (redispause.go). A go-redis Conn never
// dials again once it has a connection: one Conn, one server client.
type redisConn struct {
	*redis.Conn
	id int64
}

// takeConn returns the store's idle connection, or a new one when another
// transaction of this process holds it. go-redis gives a transaction a
// connection of its own (it may WATCH), and would dial a new one for each
// rather than reuse the pool's: keeping one means a one-shot command's
// transactions run on the connection Open checked.
func (s *redisStore) takeConn() *redisConn {
	s.connMu.Lock()
	cn := s.idle
	s.idle = nil
	s.connMu.Unlock()
	if cn == nil {
		cn = &redisConn{Conn: s.c.Conn()}
	}
	return cn
}

// putConn keeps cn for the next transaction, unless its transaction ended
// with an error that may have left it broken or mid-command.
func (s *redisStore) putConn(cn *redisConn, err error) {
	if err != nil && !errors.Is(err, errRedisRetry) {
		cn.Close()
		return
	}
	s.connMu.Lock()
	if s.idle == nil && !s.closed {
		s.idle, cn = cn, nil
	}
	s.connMu.Unlock()
	if cn != nil {
		cn.Close()
	}
}

// errRedisRetry says the fence moved under a transaction: run it again.
var errRedisRetry = errors.New("redis: transaction conflict")

func (s *redisStore) run(ctx context.Context, write bool, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline := time.Now().Add(s.opts.BusyTimeout)
	backoff := time.Millisecond
	redialed := false
	for {
		var fnErr error
		hinted, sent, abandoned := false, false, false
		// No key is watched here: see redisread.go.
		cn := s.takeConn()
		err := func() error {
			tx := newRedisTx(s, ctx, cn, write)
			tx.deadline = deadline
			fnErr = fn(tx)
			hinted = tx.prefetched // it counted in s.hints
			if tx.retry {
				return errRedisRetry
			}
			if fnErr != nil {
				return fnErr
			}
			// ctx ended while fn ran (a signal to import): nothing of
			// it may be committed, as on the other backends.
			if fnErr = ctx.Err(); fnErr != nil {
				return fnErr
			}
			err := tx.commit()
			sent, abandoned = tx.sent, tx.abandoned
			return err
		}()
		if !abandoned { // else the commit still uses it, and closes it
			s.putConn(cn, err)
		}
		if hinted {
			s.hintMu.Lock()
			s.hints--
			s.hintMu.Unlock()
		}
		if errors.Is(err, errRedisRetry) || errors.Is(err, redis.TxFailedErr) {
			if time.Now().After(deadline) {
				return fmt.Errorf("%w: redis %s: other writers kept committing for %s", ErrBusy, s.target.Addr, s.opts.busyFor())
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			if backoff < 50*time.Millisecond {
				backoff *= 2
			}
			continue
		}
		if !sent && !redialed && connLost(err) && ctx.Err() == nil {
			// A long-running command's kept connection died (the server
			// restarted, or dropped it): nothing was written, so the
			// transaction runs again on a new one, once.
			redialed = true
			continue
		}
		if fnErr != nil {
			return fnErr // the caller's own error, or a read's, already shown as such
		}
		return s.wrap(err)
	}
}

// encodeRedisEntry is the stored form of an entry: its deadline, then its value.
func encodeRedisEntry(e Entry) string {
	b := make([]byte, 8+len(e.Value))
	binary.BigEndian.PutUint64(b, uint64(e.ExpiresAt))
	copy(b[8:], e.Value)
	return string(b)
}

func decodeRedisEntry(bucket, key, raw string) (Entry, error) {
	if len(raw) < 8 {
		return Entry{}, fmt.Errorf("%w: redis entry %q/%q is %d bytes", ErrCorrupt, bucket, key, len(raw))
	}
	v := []byte(raw[8:])
	return Entry{Bucket: bucket, Key: key, Value: v, ExpiresAt: int64(binary.BigEndian.Uint64([]byte(raw[:8]))), Size: int64(len(v))}, nil
}

// encodeRedisMeta is a user entry's metadata: its deadline and its
// value's size.
func encodeRedisMeta(e Entry) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(e.ExpiresAt))
	binary.BigEndian.PutUint64(b[8:], uint64(len(e.Value)))
	return string(b[:])
}

func decodeRedisMeta(bucket, key, raw string) (Entry, error) {
	if len(raw) != 16 {
		// One key's damage, as a missing value is (redistx.go,
		// missingValue): del clears it, and the message says so.
		return Entry{}, fmt.Errorf("%w: the redis metadata of %q in bucket %q is %d bytes, not 16 (written outside livedict?)", ErrDamagedKey, key, bucket, len(raw))
	}
	return Entry{Bucket: bucket, Key: key, ExpiresAt: int64(binary.BigEndian.Uint64([]byte(raw[:8]))), Size: int64(binary.BigEndian.Uint64([]byte(raw[8:])))}, nil
}

func encodeRedisPolicy(p Policy) string {
	return fmt.Sprintf("%d %d %s", p.MaxKeys, p.DefaultTTL, p.OnFull)
}

func decodeRedisPolicy(bucket, raw string) (Policy, error) {
	f := strings.Fields(raw)
	var p Policy
	if len(f) < 2 || len(f) > 3 {
		return p, damagedPolicy(fmt.Errorf("%w: redis policy of %q: %q; %s", ErrCorrupt, bucket, raw, policyRepair(bucket)))
	}
	var err1, err2 error
	p.MaxKeys, err1 = strconv.ParseInt(f[0], 10, 64)
	p.DefaultTTL, err2 = strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return p, damagedPolicy(fmt.Errorf("%w: redis policy of %q: %q; %s", ErrCorrupt, bucket, raw, policyRepair(bucket)))
	}
	if len(f) == 3 {
		p.OnFull = OnFull(f[2])
	}
	if err := p.checkStored(bucket); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// deadlineKey is the ZSET of user deadlines (score deadline, member
// bucket NUL key) that HasExpired and Reap read instead of the buckets.
func (s *redisStore) deadlineKey() string { return s.p + "dl" }
