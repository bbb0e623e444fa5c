package cmd

import (
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
)

// writeValue prints an entry's value the way get does: the exact bytes
// when piped; on a terminal, text only, escaped, ending in a newline; with
// --json, an object with the value and its TTL.
func (a *App) writeValue(e store.Entry, now int64) error { return a.writeValueTo(a.IO.Out, e, now) }

// writeValueTo is writeValue writing to w (see updatePrinting).
func (a *App) writeValueTo(w io.Writer, e store.Entry, now int64) error {
	if a.JSON {
		o := keyFields(e.Bucket, e.Key)
		o = bytesField(o, "value", e.Value)
		ttlMs, expiresAt := ttlFields(e, now)
		return jsonLineTo(w, append(o, field{"ttl_ms", ttlMs}, field{"expires_at", expiresAt}))
	}
	if !a.IO.OutTTY {
		_, err := w.Write(e.Value)
		return err
	}
	if err := a.checkPrintable(e.Value); err != nil {
		return err
	}
	s := terminalSafe(string(e.Value), true)
	if len(s) == 0 || s[len(s)-1] != '\n' {
		s += "\n"
	}
	_, err := w.Write([]byte(s))
	return err
}

// checkPrintable fails, inside a transaction, when writeValue would refuse
// the value, so getdel, getex and set --get change nothing when their
// output cannot be shown.
func (a *App) checkPrintable(v []byte) error {
	if a.IO.OutTTY && !a.JSON && !utf8.Valid(v) {
		return errBinaryToTTY
	}
	return nil
}

// ttlFields gives an entry's remaining ms (-1: none) and its deadline as
// RFC 3339 in UTC with milliseconds (nil: none), for JSON output.
func ttlFields(e store.Entry, now int64) (int64, any) {
	if e.ExpiresAt == 0 {
		return -1, nil
	}
	return e.ExpiresAt - now, formatDeadline(e.ExpiresAt)
}

func formatDeadline(ms int64) string { return ttl.FormatDeadline(ms) }

// plural writes a count with its noun: "1 key", "2 keys", "0 keys".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
