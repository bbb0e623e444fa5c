// Command redisfloor is the start-up floor of livedict's stack on a Redis
// store, for scripts/bench.sh: a Go program that links every library
// livedict's design names (cobra, viper, lipgloss, shlex, modernc.org/sqlite)
// and go-redis, connects as livedict does (RESP3, no client identity, no
// maintenance notifications) and runs one GET, nothing else. `livedict get`
// on a Redis store cannot be much faster than this.
//
//	redisfloor ADDR KEY    prints the value, exit 1 if not there
package main

import (
	"context"
	"fmt"
	"os"

	_ "github.com/charmbracelet/lipgloss"
	_ "github.com/google/shlex"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "modernc.org/sqlite"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: redisfloor ADDR KEY")
		os.Exit(2)
	}
	c := redis.NewClient(&redis.Options{
		Addr: os.Args[1], Protocol: 3, DisableIdentity: true, MaxRetries: -1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	v, err := c.Get(context.Background(), os.Args[2]).Bytes()
	if err == redis.Nil {
		os.Exit(1)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisfloor:", err)
		os.Exit(2)
	}
	os.Stdout.Write(v)
	c.Close()
}
