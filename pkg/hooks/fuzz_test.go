package hooks

import (
	"encoding/json"
	"testing"

	"github.com/livedict/livedict/pkg/store"
)

// FuzzParseEvents: any input either parses to a non-empty set whose String
// parses back to itself, or is an error; never a panic.
func FuzzParseEvents(f *testing.F) {
	for _, s := range []string{"set", "all", "set,get", "expire, delete", "", ",", "sett", "all,set"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ev, err := ParseEvents(s)
		if err != nil {
			return
		}
		if ev == 0 || ev&^All != 0 {
			t.Fatalf("ParseEvents(%q) = %b", s, ev)
		}
		back, err := ParseEvents(ev.String())
		if err != nil || back != ev {
			t.Fatalf("round trip of %q: %v, %v", s, back, err)
		}
	})
}

// FuzzParseMessage: datagrams come from any local process; whatever they
// hold is at most a wake-up with a positive deadline.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{"events", "changed 0", "changed 1795642121511", "changed -5", "changed x", "takeover", "", "changed 99999999999999999999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		events, at := ParseMessage(msg)
		if at < 0 || events && at != 0 {
			t.Fatalf("ParseMessage(%q) = %v, %d", msg, events, at)
		}
		if at > 0 {
			if e, back := ParseMessage(ChangedMessage(at)); e || back != at {
				t.Fatalf("ChangedMessage(%d) reads back as %d", at, back)
			}
		}
	})
}

// FuzzDecodeRecord: an outbox entry that is not what livedict wrote (a
// damaged store) is an error, never a panic; one that decodes gives a
// payload that is valid JSON and an environment without the value.
func FuzzDecodeRecord(f *testing.F) {
	good, _ := json.Marshal(&record{HookID: 1, Event: Set, Bucket: "main", Key: []byte("k\xff"), Value: []byte("v"), ExpiresAt: 2000, Time: 1000})
	for _, s := range []string{string(good), "{}", `{"event":"bogus"}`, `{"event":"set,get","key":"a2V5"}`, "null", "[", `{"time":-9223372036854775808,"expires_at":9223372036854775807}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(store.Entry{Key: "0000000000000001", Value: b})
		if err != nil {
			return
		}
		p := r.payload()
		var m map[string]any
		if err := json.Unmarshal(p, &m); err != nil {
			t.Fatalf("payload is not JSON: %v: %q", err, p)
		}
		allowed := map[string]bool{"LIVEDICT_EVENT": true, "LIVEDICT_BUCKET": true, "LIVEDICT_KEY": true, "LIVEDICT_HOOK_ID": true}
		for k, v := range r.env() {
			if !allowed[k] {
				t.Fatalf("unexpected variable %s=%q", k, v)
			}
		}
		if k, ok := r.env()["LIVEDICT_KEY"]; ok && !printable([]byte(k)) {
			t.Fatalf("unprintable key in env: %q", k)
		}
	})
}
