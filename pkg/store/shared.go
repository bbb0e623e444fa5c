package store

import "context"

// Sharer is implemented by stores that processes on several hosts open at
// once (Redis). On such a store nothing local to one machine (a lock file,
// a socket, a process table) reaches every user, so the hook runtime claims
// work in the store itself and trusts only definitions it can verify.
type Sharer interface {
	Shared() bool
}

// IsShared reports whether s (or the store it wraps) is shared between
// hosts.
func IsShared(s Store) bool {
	sh, ok := Base(s).(Sharer)
	return ok && sh.Shared()
}

// Base is the store under every wrapper of s (a wrapper, such as
// encryption's, has an Unwrap method), where the interfaces below live.
func Base(s Store) Store {
	for {
		u, ok := s.(interface{ Unwrap() Store })
		if !ok {
			return s
		}
		s = u.Unwrap()
	}
}

// FeedOf returns s's change feed, if its store has one.
func FeedOf(s Store) (ChangeFeed, bool) {
	cf, ok := Base(s).(ChangeFeed)
	return cf, ok
}

// BusOf returns s's event bus, if its store has one.
func BusOf(s Store) (EventBus, bool) {
	b, ok := Base(s).(EventBus)
	return b, ok
}

// Replaced reports, as an error wrapping ErrStoreReplaced, that s's path
// no longer names what this process opened (a SQLite file deleted, or
// another put in its place); nil when it does, when s has not opened
// anything yet, or when its kind of store cannot be replaced that way.
// A process that keeps a store open for long (the daemon) asks now and
// then: it would otherwise serve a file nobody else sees.
func Replaced(s Store) error {
	if r, ok := Base(s).(interface{ Replaced() error }); ok {
		return r.Replaced()
	}
	return nil
}

// ChangeFeed is implemented by stores that can tell a waiting process that
// another process, on any host, has committed a write. Without it, waiters
// rely on local notifications and a slow poll.
type ChangeFeed interface {
	// Changes returns a channel that receives a value after writes commit
	// (several writes may be coalesced into one value); it is closed when
	// ctx ends or the feed breaks. Changes returns only once the feed is
	// live, so a write committed after it returns is never missed.
	Changes(ctx context.Context) (<-chan struct{}, error)
}

// EventBus is implemented by stores that carry live events (what `watch`
// streams) between processes on every host that shares the store. Events
// are fire-and-forget, as with Redis pub/sub: a subscriber that is not
// listening misses them.
type EventBus interface {
	// Listening reports whether any subscriber may be listening, so that
	// writers skip encoding events nobody reads.
	Listening(ctx context.Context) (bool, error)
	// Publish sends msg to every current subscriber.
	Publish(ctx context.Context, msg []byte) error
	// Subscribe returns a channel of published messages; it is closed when
	// ctx ends or the subscription breaks. It returns once subscribed.
	Subscribe(ctx context.Context) (<-chan []byte, error)
}
