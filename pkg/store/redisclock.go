package store

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/livedict/livedict/pkg/ttl"
)

// A Redis store keeps time by the server's clock, as Redis's own SET EX
// does: its native TTLs expire by that clock, so deadlines computed from a
// host's clock that runs behind the server's were already past there (a
// set --ttl 10s on a host 30 s behind was freed at once, and get found
// nothing), and every host judged what is live, whose lock lease has
// lapsed and whose delivery claim is stale by a different clock. Each
// store measures the server's clock once, in the round trip that opens it
// (TIME beside HELLO), and from then on tells time as the host's clock
// plus that offset; a process that runs on (the daemon, a lock holder)
// measures again every redisClockResync, in the background, so a host
// clock that NTP steps is followed.

// RedisHostNow is the host's clock that a Redis store measures the
// server's against; tests set a skewed one to stand for a host whose clock
// is off.
var RedisHostNow = time.Now

// redisClockResync is how old an offset may get before it is measured
// again.
const redisClockResync = 30 * time.Second

// redisClock is the server's clock, as s tells it.
type redisClock struct{ s *redisStore }

func (c redisClock) Now() time.Time { return c.s.serverNow() }

// serverClockState is a store's measure of the server's clock.
type serverClockState struct {
	mu       sync.Mutex
	offset   time.Duration // server minus host
	measured time.Time     // when it was measured, for its age (monotonic)
	busy     bool          // a measure is under way
}

// Clock is the clock the store's deadlines are on: the server's for a
// store with native TTLs, otherwise the one it was opened with.
func (s *redisStore) Clock() ttl.Clock {
	if !s.native {
		return s.opts.Clock
	}
	return redisClock{s}
}

// serverNow is the server's time now, by the last offset measured; an
// offset older than redisClockResync is measured again in the background.
func (s *redisStore) serverNow() time.Time {
	now := RedisHostNow()
	c := &s.clock
	c.mu.Lock()
	off := c.offset
	stale := !c.busy && time.Since(c.measured) >= redisClockResync
	if stale {
		c.busy = true
	}
	c.mu.Unlock()
	if stale {
		go s.measureClock()
	}
	return now.Add(off)
}

// measureClock asks the server its time; on failure the last offset
// stands until the next try.
func (s *redisStore) measureClock() {
	ctx, cancel := context.WithTimeout(context.Background(), s.connectTimeout)
	defer cancel()
	server, err := s.c.Time(ctx).Result()
	at := RedisHostNow()
	s.clock.mu.Lock()
	defer s.clock.mu.Unlock()
	s.clock.busy = false
	s.clock.measured = time.Now() // on failure too: not again at every call
	if err == nil {
		s.clock.offset = server.Sub(at)
	}
}

// setClock records the server's time as answered at host time at (the
// reply's arrival: the offset errs by the reply's one-way latency, not by
// a dial or handshake in the same round trip).
func (s *redisStore) setClock(server, at time.Time) {
	s.clock.mu.Lock()
	s.clock.offset, s.clock.measured = server.Sub(at), time.Now()
	s.clock.mu.Unlock()
}

// parseRedisTime reads a TIME reply (seconds and microseconds, as
// strings), asked as a generic command: a server that answers it with
// anything else must not fail the round trip that opens the store, whose
// other replies say what is wrong with it.
func parseRedisTime(v any) (time.Time, bool) {
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return time.Time{}, false
	}
	sec, ok1 := a[0].(string)
	usec, ok2 := a[1].(string)
	if !ok1 || !ok2 {
		return time.Time{}, false
	}
	s, err1 := strconv.ParseInt(sec, 10, 64)
	u, err2 := strconv.ParseInt(usec, 10, 64)
	if err1 != nil || err2 != nil || u < 0 || u >= 1e6 {
		return time.Time{}, false
	}
	return time.Unix(s, u*1000), true
}
