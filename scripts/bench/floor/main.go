// Command floor is the start-up floor of livedict's own stack, for
// scripts/bench.sh: a Go program that links every library livedict's
// design names (cobra, viper, lipgloss, shlex, modernc.org/sqlite), so it
// pays their package initialisation and binary size, then opens a
// livedict SQLite store and runs the one SELECT `livedict get` needs, and
// nothing else. `livedict get` cannot be much faster than this; how much
// slower it is, is livedict's own start-up cost.
//
//	floor STORE_FILE BUCKET KEY    prints the value, exit 1 if not there
package main

import (
	"database/sql"
	"fmt"
	"os"
	"time"

	_ "github.com/charmbracelet/lipgloss"
	_ "github.com/google/shlex"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "modernc.org/sqlite"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: floor STORE_FILE BUCKET KEY")
		os.Exit(2)
	}
	db, err := sql.Open("sqlite", "file:"+os.Args[1])
	if err != nil {
		fail(err)
	}
	var v []byte
	err = db.QueryRow("SELECT value FROM entries WHERE bucket = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)",
		os.Args[2], []byte(os.Args[3]), time.Now().UnixMilli()).Scan(&v)
	if err == sql.ErrNoRows {
		os.Exit(1)
	}
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(v)
	db.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "floor:", err)
	os.Exit(2)
}
