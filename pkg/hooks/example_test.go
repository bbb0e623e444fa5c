package hooks_test

import (
	"context"
	"fmt"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
)

// ExampleSession writes through the Go API so that hooks see the write:
// the event is committed with the change, and Close makes sure someone
// delivers it.
func ExampleSession() {
	s, err := store.Open("memory:", store.Options{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	ctx := context.Background()
	// A hook on set events, as 'livedict hook add --on set' makes.
	err = s.Update(ctx, func(tx store.Tx) error {
		_, err := hooks.Add(tx, hooks.Hook{Events: hooks.Set, Argv: []string{"/bin/true"}}, nil)
		return err
	})
	if err != nil {
		panic(err)
	}

	sess := &hooks.Session{Store: s} // Spawn nil: no dispatcher of our own
	err = sess.Update(ctx, func(tx *hooks.Tx) error {
		_, err := store.Set(tx, store.Limits{}, store.SetArgs{Bucket: "main", Key: "token", Value: []byte("abc")})
		return err
	})
	if err != nil {
		panic(err)
	}
	sess.Close()

	s.View(ctx, func(tx store.Tx) error {
		pending, _, err := hooks.Counts(tx)
		fmt.Println("events waiting:", pending)
		return err
	})
	// Output: events waiting: 1
}
