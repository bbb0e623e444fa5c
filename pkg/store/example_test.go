package store_test

import (
	"context"
	"fmt"
	"time"

	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
)

// Example stores a value with a TTL and reads it back as it expires, using a
// fake clock so the example runs instantly.
func Example() {
	clock := ttl.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s, err := store.Open("memory:", store.Options{Clock: clock})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	ctx := context.Background()

	err = s.Update(ctx, func(tx store.Tx) error {
		_, err := store.Set(tx, store.Limits{}, store.SetArgs{
			Bucket: "main", Key: "token", Value: []byte("abc"),
			ExpiresAt: tx.Now() + (90 * time.Second).Milliseconds(),
		})
		return err
	})
	if err != nil {
		panic(err)
	}

	show := func() {
		s.View(ctx, func(tx store.Tx) error {
			e, ok, err := tx.Get("main", "token")
			if !ok {
				fmt.Println("token: missing")
				return err
			}
			left, err := store.RemainingMs(tx, "main", "token")
			fmt.Printf("token: %s, %ds left\n", e.Value, ttl.RemainingSeconds(left))
			return err
		})
	}
	show()
	clock.Advance(90 * time.Second)
	show()
	// Output:
	// token: abc, 90s left
	// token: missing
}
