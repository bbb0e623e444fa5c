package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/store/redistest"
)

// cutAfter starts a TCP proxy to the server of storeURL and returns the
// store's URL through it. The proxy forwards both ways until the client
// has sent marker; then it closes the client's side, so the client hears
// no reply, while the server, which got everything, runs it. This is a
// connection lost between a commit and its reply (a CLIENT KILL, a
// restart, a proxy's failover).
func cutAfter(t *testing.T, storeURL string, marker []byte) string {
	t.Helper()
	tg, err := parseRedisURL(storeURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range open {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial(tg.Network, tg.Addr)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			open = append(open, c, s)
			mu.Unlock()
			var cut sync.Once
			cutDone := make(chan struct{})
			go func() { // server to client; after the cut the replies are read and dropped
				buf := make([]byte, 64<<10)
				for {
					n, err := s.Read(buf)
					select {
					case <-cutDone:
					default:
						c.Write(buf[:n])
					}
					if err != nil {
						return
					}
				}
			}()
			go func() { // client to server, until marker
				buf := make([]byte, 64<<10)
				var tail []byte
				for {
					n, err := c.Read(buf)
					if n > 0 {
						tail = append(tail, buf[:n]...)
						if bytes.Contains(tail, marker) {
							// Cut before the server can answer.
							cut.Do(func() { close(cutDone) })
							s.Write(buf[:n])
							c.Close()
							return
						}
						s.Write(buf[:n])
						if len(tail) > len(marker) {
							tail = tail[len(tail)-len(marker):]
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	u := url.URL{Scheme: "redis", Host: ln.Addr().String(), Path: "/" + strconv.Itoa(tg.DB), RawQuery: "prefix=" + url.QueryEscape(tg.Prefix)}
	if tg.User != "" || tg.Password != "" {
		u.User = url.UserPassword(tg.User, tg.Password)
	}
	return u.String()
}

// A commit whose connection is lost after it was sent may have been
// applied: the command says so (ErrUncertain: "the write may or may not
// have been applied"), for a commit script (set) and for a MULTI/EXEC
// (import). Before, both failed with a bare "EOF" though the server had
// written the data, and a script that took the failure at its word and
// ran the import again hit "key exists".
func TestRedisCommitReplyLostIsUncertain(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		marker string
		n      int
	}{
		{"script", "$7\r\nevalsha\r\n", 1},                // as go-redis spells it
		{"exec", "*1\r\n$4\r\nEXEC\r\n", redisScriptArgs}, // past redisScriptArgs: MULTI/EXEC
	} {
		t.Run(c.name, func(t *testing.T) {
			direct := redistest.URL(t)
			ds, err := Open(direct, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ds.Close()
			// The server knows the commit script: EVALSHA runs it, no NOSCRIPT.
			if err := ds.Update(ctx, func(tx Tx) error { return tx.Put(Entry{Bucket: "b", Key: "warm", Value: []byte("1")}) }); err != nil {
				t.Fatal(err)
			}
			s, err := Open(cutAfter(t, direct, []byte(c.marker)), Options{BusyTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Update(ctx, func(tx Tx) error {
				for i := 0; i < c.n; i++ {
					if err := tx.Put(Entry{Bucket: "b", Key: fmt.Sprintf("k%06d", i), Value: []byte("v")}); err != nil {
						return err
					}
				}
				return nil
			})
			if !errors.Is(err, ErrUncertain) || KindOf(err) != KindStore {
				t.Fatalf("commit whose reply was lost: %v (kind %v), want ErrUncertain", err, KindOf(err))
			}
			// It was in fact applied: the error must not have said otherwise.
			var ok bool
			deadline := time.Now().Add(10 * time.Second)
			for !ok && time.Now().Before(deadline) {
				if err := ds.View(ctx, func(tx Tx) error {
					var err error
					_, ok, err = tx.Get("b", fmt.Sprintf("k%06d", c.n-1))
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if !ok {
					time.Sleep(50 * time.Millisecond)
				}
			}
			if !ok {
				t.Fatal("the server never ran the commit the proxy passed on")
			}
		})
	}
}
