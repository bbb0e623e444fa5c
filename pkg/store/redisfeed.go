package store

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// Changes subscribes to the store's commit channel; every commit publishes
// to it in its MULTI/EXEC.
func (s *redisStore) Changes(ctx context.Context) (<-chan struct{}, error) {
	sub, err := s.subscribe(ctx, s.changesChannel())
	if err != nil {
		return nil, err
	}
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		defer sub.Close()
		in := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- struct{}{}:
				default: // coalesced with one not yet read
				}
			}
		}
	}()
	return out, nil
}

// subscribe returns once the server has confirmed the subscription.
func (s *redisStore) subscribe(ctx context.Context, channel string) (*redis.PubSub, error) {
	sub := s.c.Subscribe(ctx, channel)
	if _, err := sub.Receive(ctx); err != nil {
		sub.Close()
		return nil, s.wrap(err)
	}
	return sub, nil
}

// Listening asks the server how many subscribe to the events channel;
// called while a transaction of this store runs, it answers what that
// transaction's first round trip read, sparing a connection and a round
// trip.
func (s *redisStore) Listening(ctx context.Context) (bool, error) {
	s.hintMu.Lock()
	if s.hints > 0 {
		on := s.listening
		s.hintMu.Unlock()
		return on, nil
	}
	s.hintMu.Unlock()
	m, err := s.c.PubSubNumSub(ctx, s.eventsChannel()).Result()
	if err != nil {
		return false, s.wrap(err)
	}
	return m[s.eventsChannel()] > 0, nil
}

// Publish sends msg to the events channel, giving up at the busy timeout:
// a server in CLIENT PAUSE WRITE holds PUBLISH as it holds writes, and a
// command whose commit was answered must not then wait out the pause for
// its watch events (a watcher that misses one is one that was not
// running; the server drops the held PUBLISH with the connection).
func (s *redisStore) Publish(ctx context.Context, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.BusyTimeout)
	defer cancel()
	return s.wrap(s.c.Publish(ctx, s.eventsChannel(), msg).Err())
}

// subscribeCheck is how long a subscription may hear nothing before it
// pings the server; it is taken for broken when two such periods pass
// without an answer (go-redis's own channel checks every 3s).
const subscribeCheck = 5 * time.Second

// Subscribe streams the events channel, until ctx ends or the subscription
// breaks: the connection dropped (a server restart, CLIENT KILL, a
// failover) or the server stopped answering pings. go-redis would
// subscribe again on a new connection, silently, and a watcher would go on
// as if it had heard every event meanwhile; so the channel closes instead,
// as redis-cli SUBSCRIBE ends, and the watcher says what happened.
func (s *redisStore) Subscribe(ctx context.Context) (<-chan []byte, error) {
	sub, err := s.subscribe(ctx, s.eventsChannel())
	if err != nil {
		return nil, err
	}
	out := make(chan []byte, 64)
	go func() {
		defer close(out)
		defer sub.Close()
		heard := time.Now()
		for {
			m, err := sub.ReceiveTimeout(ctx, subscribeCheck)
			var ne net.Error
			switch {
			case ctx.Err() != nil:
				return
			case errors.As(err, &ne) && ne.Timeout():
				// Quiet: ask, and give up when the last question
				// went unanswered too.
				if time.Since(heard) > 2*subscribeCheck || sub.Ping(ctx) != nil {
					return
				}
				continue
			case err != nil:
				return
			}
			heard = time.Now()
			msg, ok := m.(*redis.Message)
			if !ok {
				continue // a pong, or the subscription's confirmation
			}
			select {
			case out <- []byte(msg.Payload):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

var (
	_ Sharer     = (*redisStore)(nil)
	_ ChangeFeed = (*redisStore)(nil)
	_ EventBus   = (*redisStore)(nil)
	_ Locator    = (*redisStore)(nil)
)
