package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// No Redis older than 6.2 is installed here, so the version check is held
// to what such servers answer at the protocol level: a stand-in that
// answers HELLO as Redis 6.0 (a RESP3 map with its version) or as Redis 5
// (which has no HELLO) and every other command with +OK. Opening the store
// is exit 3 (KindStore), one line naming the address and the version
// livedict needs.
func TestRedisOldServerRefused(t *testing.T) {
	for name, hello := range map[string]string{
		"6.0": "%2\r\n+server\r\n+redis\r\n+version\r\n+6.0.16\r\n",
		"5.0": "-ERR unknown command `HELLO`, with args beginning with: `3`, \r\n",
	} {
		t.Run(name, func(t *testing.T) {
			addr := oldRedis(t, hello)
			_, err := Open("redis://"+addr, Options{Redis: RedisOptions{ConnectTimeout: time.Minute}})
			if err == nil {
				t.Fatal("opened a store on a Redis " + name)
			}
			msg := err.Error()
			if KindOf(err) != KindStore || !strings.Contains(msg, addr) || !strings.Contains(msg, "needs Redis 6.2 or newer") || strings.Contains(msg, "\n") {
				t.Fatalf("err = %v (kind %v)", err, KindOf(err))
			}
		})
	}
}

// oldRedis serves the RESP protocol on a loopback port until the test
// ends, answering HELLO with hello and anything else with +OK.
func oldRedis(t *testing.T, hello string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					args, err := readCommand(r)
					if err != nil {
						return
					}
					reply := "+OK\r\n"
					if strings.EqualFold(args[0], "HELLO") {
						reply = hello
					}
					if _, err := io.WriteString(c, reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// readCommand reads one command as clients send it: an array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, fmt.Errorf("not an array: %q", line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 {
		return nil, fmt.Errorf("bad array: %q", line)
	}
	args := make([]string, n)
	for i := range args {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
		if err != nil || size < 0 {
			return nil, fmt.Errorf("bad bulk: %q", line)
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:size])
	}
	return args, nil
}

// wrap drops what Redis 7 appends to an error raised inside livedict's
// commit script (its SHA and line say nothing to the user) and never shows
// the password.
func TestRedisWrapMessage(t *testing.T) {
	s := &redisStore{target: redisTarget{Addr: "db.example:6379", Password: "hunter2"}}
	for in, want := range map[string]string{
		"OOM command not allowed when used memory > 'maxmemory'. script: 0123456789abcdef0123456789abcdef01234567, on @user_script:17.": "the server is out of memory: redis db.example:6379: OOM command not allowed when used memory > 'maxmemory'",
		"NOPERM this user may not run INCR x script: 0123456789abcdef0123456789abcdef01234567, on @user_script:4":                       "redis db.example:6379: NOPERM this user may not run INCR x",
		"WRONGPASS invalid username-password pair (hunter2)":                                                                            "redis db.example:6379: WRONGPASS invalid username-password pair (***)",
		"ERR a script: that is not ours": "redis db.example:6379: ERR a script: that is not ours",
	} {
		if got := s.wrap(errors.New(in)).Error(); got != want {
			t.Errorf("wrap(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}
