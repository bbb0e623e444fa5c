// Command lockfloor is the floor of `livedict lock NAME -- CMD` on its own
// stack, for scripts/bench.sh: what any lease in a livedict SQLite store
// must do, and nothing else. It opens the store, takes the lease in one
// write transaction (the bucket's fencing counter and the lease key),
// runs CMD with a bare fork and exec, waits for it and releases the lease
// in a second write transaction. It links every library livedict's
// design names (cobra, viper, lipgloss, shlex, modernc.org/sqlite; see
// libs.go), so it pays their start-up as livedict does; built with
// -tags bare it links modernc.org/sqlite alone: the floor of a lease in
// a pure-Go SQLite store from a Go process at all.
//
// It keeps its counter and lease apart from livedict's (internal bucket
// "!lockfloor", the lease key in bucket "lockfloor"), so it can run on
// the store the lock benchmark uses.
//
//	lockfloor STORE_FILE NAME CMD [ARGS...]   exits with CMD's status
package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	_ "modernc.org/sqlite"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: lockfloor STORE_FILE NAME CMD [ARGS...]")
		os.Exit(2)
	}
	name, argv := []byte(os.Args[2]), os.Args[3:]
	db, err := sql.Open("sqlite", "file:"+os.Args[1]+"?_pragma=busy_timeout(10000)&_pragma=synchronous(OFF)")
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		fail(err)
	}
	var token int64
	write(c, func() error {
		var v []byte
		err := c.QueryRowContext(ctx, "SELECT value FROM entries WHERE bucket = 'lockfloor' AND key = ?", name).Scan(&v)
		if err == nil {
			fmt.Fprintln(os.Stderr, "lockfloor: held")
			os.Exit(1)
		}
		if err != sql.ErrNoRows {
			return err
		}
		err = c.QueryRowContext(ctx, "SELECT value FROM internal WHERE bucket = '!lockfloor' AND key = X'6d61696e'").Scan(&v)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		token, _ = strconv.ParseInt(string(v), 10, 64)
		token++
		if _, err := c.ExecContext(ctx, "INSERT OR REPLACE INTO internal VALUES ('!lockfloor', X'6d61696e', ?)", []byte(strconv.FormatInt(token, 10))); err != nil {
			return err
		}
		_, err = c.ExecContext(ctx, "INSERT INTO entries VALUES ('lockfloor', ?, ?, ?)", name, []byte(strconv.FormatInt(token, 10)), time.Now().Add(30*time.Second).UnixMilli())
		return err
	})
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fail(err)
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   append(os.Environ(), "LIVEDICT_LOCK_TOKEN="+strconv.FormatInt(token, 10)),
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		fail(err)
	}
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
	write(c, func() error {
		_, err := c.ExecContext(ctx, "DELETE FROM entries WHERE bucket = 'lockfloor' AND key = ?", name)
		return err
	})
	c.Close()
	db.Close()
	os.Exit(ws.ExitStatus())
}

// write runs fn in a write transaction, as livedict's are (BEGIN IMMEDIATE).
func write(c *sql.Conn, fn func() error) {
	ctx := context.Background()
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		fail(err)
	}
	if err := fn(); err != nil {
		c.ExecContext(ctx, "ROLLBACK")
		fail(err)
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "lockfloor:", err)
	os.Exit(2)
}
