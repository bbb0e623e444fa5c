package store

import (
	"context"

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

// Subscribe streams the events channel.
func (s *redisStore) Subscribe(ctx context.Context) (<-chan []byte, error) {
	sub, err := s.subscribe(ctx, s.eventsChannel())
	if err != nil {
		return nil, err
	}
	out := make(chan []byte, 64)
	go func() {
		defer close(out)
		defer sub.Close()
		in := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- []byte(m.Payload):
				case <-ctx.Done():
					return
				}
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
