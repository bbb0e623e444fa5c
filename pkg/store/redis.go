package store

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis backend keeps all of a store's keys under one hash tag {P}, so
// a store lives on one Cluster slot and every transaction may touch all of
// its keys:
//
//	{P}:fence        a counter every commit bumps; transactions WATCH it
//	{P}:buckets      SET of user buckets that may hold entries
//	{P}:b:BUCKET     HASH key -> 8-byte big-endian deadline + value
//	{P}:pol          HASH bucket -> policy
//	{P}:dl           ZSET of user deadlines: score deadline, member bucket NUL key
//	{P}:changes      pub/sub channel: one message per commit
//	{P}:events       pub/sub channel of the EventBus
//
// Transactions are optimistic: reads run under WATCH of the fence, writes
// are buffered in the transaction and committed in one MULTI/EXEC that
// bumps the fence. A commit that meets a concurrent one is aborted by the
// server and the transaction runs again, until the busy timeout
// (ErrBusy). A View ends with an empty MULTI/EXEC so that its reads too
// are checked against the fence: what it saw was one committed state.
//
// Deadlines are kept in the entries and enforced by every read (as the
// other backends do), so a read never sees an expired value with no daemon.

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
		Network:         t.Network,
		Addr:            t.Addr,
		Username:        t.User,
		Password:        t.Password,
		DB:              t.DB,
		Protocol:        3,
		DialTimeout:     ro.ConnectTimeout,
		ReadTimeout:     -1, // a blocked command is bounded by the context
		WriteTimeout:    ro.ConnectTimeout,
		PoolSize:        4,
		MinIdleConns:    0,
		MaxRetries:      -1,
		DisableIdentity: true,
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
	s := &redisStore{c: redis.NewClient(o), opts: opts.withDefaults(), target: t, p: "{" + t.Prefix + "}:"}
	ctx, cancel := context.WithTimeout(context.Background(), ro.ConnectTimeout)
	defer cancel()
	if err := s.checkServer(ctx); err != nil {
		s.c.Close()
		return nil, err
	}
	return s, nil
}

// checkServer refuses a server older than 6.2 (GETEX, EXAT, ZRANGE BYLEX
// …) and turns connection failures into one line naming the address.
func (s *redisStore) checkServer(ctx context.Context) error {
	v, err := s.c.Do(ctx, "HELLO", "3").Result()
	var reply redis.Error
	if errors.As(err, &reply) && strings.Contains(strings.ToLower(err.Error()), "unknown command") {
		// Redis before 6.0 has no HELLO: say what is needed, not what failed.
		return WithKind(KindStore, fmt.Errorf("redis %s: server older than 6.0 (no HELLO): livedict needs Redis 6.2 or newer", s.target.Addr))
	}
	if err != nil {
		return s.wrap(err)
	}
	m, _ := v.(map[any]any)
	ver, _ := m["version"].(string)
	if !redisVersionOK(ver) {
		return WithKind(KindStore, fmt.Errorf("redis %s: server version %q: livedict needs Redis 6.2 or newer", s.target.Addr, ver))
	}
	return nil
}

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
	msg := err.Error()
	if s.target.Password != "" {
		msg = strings.ReplaceAll(msg, s.target.Password, "***")
	}
	return WithKind(KindStore, fmt.Errorf("redis %s: %s", s.target.Addr, msg))
}

func (s *redisStore) fence() string             { return s.p + "fence" }
func (s *redisStore) bucketsKey() string        { return s.p + "buckets" }
func (s *redisStore) bucketKey(b string) string { return s.p + "b:" + b }
func (s *redisStore) policyKey() string         { return s.p + "pol" }
func (s *redisStore) changesChannel() string    { return s.p + "changes" }
func (s *redisStore) eventsChannel() string     { return s.p + "events" }

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
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		base = filepath.Join(home, ".local", "state")
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
		keys = append(keys, s.bucketKey(n))
	}
	for _, k := range keys {
		n, err := s.c.MemoryUsage(ctx, k).Result()
		if err != nil && err != redis.Nil {
			return Info{}, s.wrap(err)
		}
		info.SizeBytes += n
	}
	return info, nil
}

func (s *redisStore) Close() error { return s.c.Close() }

func (s *redisStore) Update(ctx context.Context, fn func(Tx) error) error {
	return s.run(ctx, true, fn)
}

func (s *redisStore) View(ctx context.Context, fn func(Tx) error) error {
	return s.run(ctx, false, fn)
}

// errRedisRetry says the fence moved under a transaction: run it again.
var errRedisRetry = errors.New("redis: transaction conflict")

func (s *redisStore) run(ctx context.Context, write bool, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline := time.Now().Add(s.opts.BusyTimeout)
	backoff := time.Millisecond
	for {
		var fnErr error
		err := s.c.Watch(ctx, func(rtx *redis.Tx) error {
			tx := newRedisTx(s, ctx, rtx, write)
			if fnErr = fn(tx); fnErr != nil {
				return fnErr
			}
			return tx.commit()
		}, s.fence())
		if fnErr != nil {
			return fnErr // the caller's own error, or a read's, already shown as such
		}
		if errors.Is(err, redis.TxFailedErr) || errors.Is(err, errRedisRetry) {
			if time.Now().After(deadline) {
				return fmt.Errorf("%w: redis %s: other writers kept committing for %s", ErrBusy, s.target.Addr, s.opts.BusyTimeout)
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

func encodeRedisPolicy(p Policy) string {
	return fmt.Sprintf("%d %d %s", p.MaxKeys, p.DefaultTTL, p.OnFull)
}

func decodeRedisPolicy(bucket, raw string) (Policy, error) {
	f := strings.Fields(raw)
	var p Policy
	if len(f) < 2 || len(f) > 3 {
		return p, fmt.Errorf("%w: redis policy of %q: %q", ErrCorrupt, bucket, raw)
	}
	var err1, err2 error
	p.MaxKeys, err1 = strconv.ParseInt(f[0], 10, 64)
	p.DefaultTTL, err2 = strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return p, fmt.Errorf("%w: redis policy of %q: %q", ErrCorrupt, bucket, raw)
	}
	if len(f) == 3 {
		p.OnFull = OnFull(f[2])
	}
	return p, nil
}

// deadlineKey is the ZSET of user deadlines (score deadline, member
// bucket NUL key) that HasExpired and Reap read instead of the buckets.
func (s *redisStore) deadlineKey() string { return s.p + "dl" }
