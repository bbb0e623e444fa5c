package store

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/livedict/livedict/pkg/store/redistest"
)

// TestRedisFullServerStillDeletes: on a server at its maxmemory with
// noeviction (the policy the README asks for), a write that adds data is
// refused, but one that only removes data (del, bucket drop, reap) still
// commits, as redis-cli DEL would: otherwise livedict could not free the
// memory it filled, and deleting its keys with redis-cli leaves them
// damaged.
func TestRedisFullServerStillDeletes(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no")
	admin := srv.Client()
	ctx := context.Background()
	s, err := Open(srv.URL+"?prefix=oom", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(bucket, key string, v []byte, exp int64) error {
		return s.Update(ctx, func(tx Tx) error {
			return tx.Put(Entry{Bucket: bucket, Key: key, Value: v, ExpiresAt: exp})
		})
	}
	big := []byte(strings.Repeat("x", 64<<10))
	for i := 0; i < 16; i++ {
		if err := put("main", fmt.Sprint("k", i), big, 0); err != nil {
			t.Fatal(err)
		}
		if err := put("other", fmt.Sprint("k", i), big, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Full: the limit just under what the server uses now.
	info, err := admin.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	var mem int64
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			fmt.Sscan(v, &mem)
		}
	}
	if err := admin.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConfigSet(ctx, "maxmemory", fmt.Sprint(mem-(256<<10))).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.ConfigSet(context.Background(), "maxmemory", "0") })

	if err := put("main", "new", []byte("v"), 0); err == nil || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("a write that adds a key to a full server: %v, want OOM", err)
	}
	err = s.Update(ctx, func(tx Tx) error {
		for _, k := range []string{"k0", "k1"} {
			if _, err := tx.Delete("main", k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("delete on a full server: %v", err)
	}
	err = s.Update(ctx, func(tx Tx) error {
		_, err := tx.DropBucket("other")
		return err
	})
	if err != nil {
		t.Fatalf("bucket drop on a full server: %v", err)
	}
	var keys []string
	err = s.View(ctx, func(tx Tx) error {
		return tx.Scan("main", "", false, func(e Entry) error {
			keys = append(keys, e.Key)
			return nil
		})
	})
	if err != nil || len(keys) != 14 {
		t.Fatalf("after the deletes: %d keys, %v", len(keys), err)
	}
}

// TestRedisMaxClientsSaysSo: a server that has its maxclients answers a
// new connection with "-ERR max number of clients reached" and closes
// it; livedict said only "write: broken pipe", which names nothing.
func TestRedisMaxClientsSaysSo(t *testing.T) {
	srv := redistest.StartServer(t, "--save", "", "--appendonly", "no", "--maxclients", "1")
	admin := srv.Client()
	if err := admin.Ping(context.Background()).Err(); err != nil { // holds the one connection
		t.Fatal(err)
	}
	s, err := Open(srv.URL+"?prefix=mc", Options{})
	if err == nil {
		err = s.Update(context.Background(), func(tx Tx) error {
			return tx.Put(Entry{Bucket: "main", Key: "k", Value: []byte("v")})
		})
		s.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "max number of clients reached") || KindOf(err) != KindStore {
		t.Fatalf("open on a server at its maxclients: %v, want its refusal named", err)
	}
}
