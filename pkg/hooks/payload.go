package hooks

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/livedict/livedict/pkg/ttl"
)

// PayloadVersion is the "version" field of the event JSON; it changes only
// if a field changes meaning or goes away.
const PayloadVersion = 1

// payload is the JSON object a hook reads on stdin.
type payload struct {
	Version        int     `json:"version"`
	Event          string  `json:"event"`
	Bucket         string  `json:"bucket"`
	Key            *string `json:"key,omitempty"`
	KeyB64         *string `json:"key_b64,omitempty"`
	Value          *string `json:"value,omitempty"`
	ValueB64       *string `json:"value_b64,omitempty"`
	ValueTruncated bool    `json:"value_truncated"`
	TTLMs          int64   `json:"ttl_ms"`
	ExpiresAt      *string `json:"expires_at"`
	Time           string  `json:"time"`
	HookID         int64   `json:"hook_id"`
}

// formatTime is the event JSON's time format: RFC 3339 in UTC, to the
// millisecond, as livedict keeps times.
func formatTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// bytesFields sets the plain field for UTF-8 data and the _b64 one
// otherwise, so no byte is ever replaced.
func bytesFields(b []byte, plain, b64 **string) {
	var s string
	if utf8.Valid(b) {
		s = string(b)
		*plain = &s
		return
	}
	s = base64.StdEncoding.EncodeToString(b)
	*b64 = &s
}

// Payload builds the event JSON for one run of hook id on r.
func (r *record) payload() []byte {
	p := payload{
		Version: PayloadVersion, Event: r.Event.String(), Bucket: r.Bucket,
		ValueTruncated: r.Truncated, TTLMs: -1, Time: formatTime(r.Time), HookID: r.HookID,
	}
	bytesFields(r.Key, &p.Key, &p.KeyB64)
	bytesFields(r.Value, &p.Value, &p.ValueB64)
	if r.ExpiresAt != 0 {
		p.TTLMs = max(0, r.ExpiresAt-r.Time)
		// As list --json shows it: a deadline past 9999 (a store
		// written before deadlines were limited) as the last time
		// RFC 3339 can write, never a year no parser reads.
		at := ttl.FormatDeadline(r.ExpiresAt)
		p.ExpiresAt = &at
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic(err) // only strings and numbers
	}
	return append(b, '\n')
}

// env is the event part of a hook's environment. Values never go there: a
// value may be large or secret, and environments leak (ps, /proc).
func (r *record) env() map[string]string {
	m := map[string]string{
		"LIVEDICT_EVENT":   r.Event.String(),
		"LIVEDICT_BUCKET":  r.Bucket,
		"LIVEDICT_HOOK_ID": strconv.FormatInt(r.HookID, 10),
	}
	if printable(r.Key) {
		m["LIVEDICT_KEY"] = string(r.Key)
	}
	return m
}

// EventVar reports whether name is one of the variables livedict sets for
// each run to describe its event (LIVEDICT_EVENT, LIVEDICT_BUCKET,
// LIVEDICT_KEY, LIVEDICT_HOOK_ID, LIVEDICT_EVENTS): --env cannot pass
// them through.
func EventVar(name string) bool {
	switch name {
	case "LIVEDICT_EVENT", "LIVEDICT_BUCKET", "LIVEDICT_KEY", "LIVEDICT_HOOK_ID", "LIVEDICT_EVENTS":
		return true
	}
	return false
}

// printable reports whether a key can go into the environment as is:
// valid UTF-8 without control characters, without the bidirectional
// controls that make text read other than it is (U+061C, U+200E/F,
// U+202A-E, U+2066-9: "Trojan Source"), and without the line and
// paragraph separators U+2028/9, which break a line as a newline does.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range string(b) {
		switch {
		case unicode.IsControl(c), unicode.In(c, unicode.Bidi_Control), c == '\u2028', c == '\u2029':
			return false
		}
	}
	return true
}
