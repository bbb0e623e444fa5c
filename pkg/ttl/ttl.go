// Package ttl owns time as livedict sees it: the duration and absolute-time
// syntax users type, deadlines kept as Unix milliseconds, and the Clock that
// every time-dependent decision reads so tests can move time instead of
// sleeping.
package ttl

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxDuration is the longest TTL livedict accepts. It keeps deadlines far
// from int64 overflow and catches typos such as an extra zero in a script.
const MaxDuration = 100 * 365 * 24 * time.Hour

// Clock tells the current time. Production code uses System; tests use a
// *Fake and move it.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// System is the real wall clock.
var System Clock = systemClock{}

// Fake is a Clock that only moves when told to. It is safe for concurrent use.
type Fake struct {
	mu  sync.Mutex
	now time.Time
}

// NewFake returns a Fake clock set to t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now returns the fake current time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the fake clock forward by d.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// Set moves the fake clock to t.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}

// NowMs returns c's current time as Unix milliseconds.
func NowMs(c Clock) int64 { return c.Now().UnixMilli() }

var units = []struct {
	suffix string
	d      time.Duration
}{
	// Longest suffix first so "ms" is not read as "m" followed by garbage.
	{"ms", time.Millisecond},
	{"s", time.Second},
	{"m", time.Minute},
	{"h", time.Hour},
	{"d", 24 * time.Hour},
	{"w", 7 * 24 * time.Hour},
}

// ErrDuration is wrapped by every error ParseDuration returns.
var ErrDuration = errors.New("invalid duration")

// ParseDuration reads a duration as users write it: a bare integer meaning
// seconds ("90"), or one or more number+unit parts ("1500ms", "5m", "1h30m",
// "1d", "2w"). A part may have a decimal fraction ("1.5s", "0.5h", "1.5d")
// as long as the result is a whole number of milliseconds, the precision
// livedict keeps expiry to; a bare number stays whole seconds, as Redis's
// EXPIRE takes them. A leading '-' is allowed so that `expire KEY -1` can
// delete a key as Redis does; callers that need a positive TTL check for
// it. The magnitude is limited to MaxDuration: a longer positive duration
// is refused, a longer negative one (any number that fits in 64 bits, as
// Redis takes it) is -MaxDuration, since every time that far back means
// the same thing, "already expired".
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("%w %q: %s", ErrDuration, orig, why)
	}
	if s == "" {
		return bad("empty")
	}
	if strings.ContainsAny(s, " \t\n\r\v\f") {
		return bad("contains white space")
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return bad("no number")
	}
	if allDigits(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err == nil && n > int64(MaxDuration/time.Second) && neg {
			return -MaxDuration, nil
		}
		if err != nil && neg {
			return bad("out of range") // as Redis's EXPIRE says
		}
		if err != nil || n > int64(MaxDuration/time.Second) {
			return bad("longer than 100 years")
		}
		d := time.Duration(n) * time.Second
		if neg {
			d = -d
		}
		return d, nil
	}
	var totalMs int64
	over := false // the total passed MaxDuration: only the syntax is read on
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return bad("expected a number, e.g. 90s, 5m, 1h30m, 1.5d")
		}
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil && neg {
			return bad("out of range")
		}
		if err != nil {
			return bad("longer than 100 years")
		}
		s = s[i:]
		frac, dot := "", strings.HasPrefix(s, ".")
		if dot {
			j := 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j == 1 {
				return bad("expected digits after the decimal point, e.g. 1.5s")
			}
			frac, s = strings.TrimRight(s[1:j], "0"), s[j:]
		}
		// The unit is the whole run of letters: "5min" read as 5m
		// followed by "in" said "expected a number".
		j := 0
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
			j++
		}
		word := s[:j]
		var unitMs int64
		for _, u := range units {
			if word == u.suffix {
				unitMs = u.d.Milliseconds()
				s = s[j:]
				break
			}
		}
		if unitMs == 0 {
			switch {
			case word != "":
				return bad(fmt.Sprintf("unknown unit %q; use ms, s, m, h, d or w", word))
			case dot:
				return bad("a number with a fraction needs a unit: ms, s, m, h, d or w (1.5s)")
			}
			return bad("unknown unit; use ms, s, m, h, d or w")
		}
		if n > MaxDuration.Milliseconds()/unitMs {
			over = true
		}
		partMs := n * unitMs
		if frac != "" {
			// Exact integer arithmetic: 0.1s is 100ms, not 99.999…
			if len(frac) > 9 {
				return bad("finer than a millisecond")
			}
			f, _ := strconv.ParseInt(frac, 10, 64)
			scale := int64(math.Pow10(len(frac)))
			if f*unitMs%scale != 0 {
				return bad("finer than a millisecond")
			}
			partMs += f * unitMs / scale
		}
		if !over {
			totalMs += partMs
			over = totalMs > MaxDuration.Milliseconds()
		}
	}
	if over && neg {
		return -MaxDuration, nil
	}
	if over {
		return bad("longer than 100 years")
	}
	total := time.Duration(totalMs) * time.Millisecond
	if neg {
		total = -total
	}
	return total, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// ErrTime is wrapped by every error ParseTime returns.
var ErrTime = errors.New("invalid time")

// ParseTime reads an absolute time: RFC 3339 ("2026-01-02T15:04:05Z", with
// optional fractional seconds; "t" and "z" in lower case or a space for
// the "T", as RFC 3339 allows and `date --rfc-3339` prints) or
// "@UNIXSECONDS" (optionally fractional: "@1700000000.250").
func ParseTime(s string) (time.Time, error) {
	if strings.HasPrefix(s, "@") {
		num := s[1:]
		sec, frac, _ := strings.Cut(num, ".")
		if !allDigits(strings.TrimPrefix(sec, "-")) || (frac != "" && !allDigits(frac)) || strings.HasSuffix(num, ".") {
			return time.Time{}, fmt.Errorf("%w %q: expected @UNIXSECONDS", ErrTime, s)
		}
		n, err := strconv.ParseInt(sec, 10, 64)
		if err != nil || n > math.MaxInt64/1000-1 || n < math.MinInt64/1000+1 {
			return time.Time{}, fmt.Errorf("%w %q: out of range", ErrTime, s)
		}
		ms := int64(0)
		if frac != "" {
			f := (frac + "000")[:3]
			ms, _ = strconv.ParseInt(f, 10, 64)
		}
		// The sign is the whole number's: "@-0.5" is half a second
		// before the epoch, and n, being -0, has lost it.
		if strings.HasPrefix(sec, "-") {
			ms = -ms
		}
		return time.UnixMilli(n*1000 + ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, rfc3339Upper(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("%w %q: expected RFC 3339 (2006-01-02T15:04:05Z) or @UNIXSECONDS", ErrTime, s)
	}
	return t, nil
}

// rfc3339Upper returns s with the separator of date and time (a "t" or a
// space) and a final "z" as Go's RFC 3339 layout wants them: "T", "Z".
func rfc3339Upper(s string) string {
	if len(s) <= 10 || (s[10] != 't' && s[10] != ' ') && !strings.HasSuffix(s, "z") {
		return s
	}
	b := []byte(s)
	if b[10] == 't' || b[10] == ' ' {
		b[10] = 'T'
	}
	if b[len(b)-1] == 'z' {
		b[len(b)-1] = 'Z'
	}
	return string(b)
}

// Until is how long from nowMs until atMs, for a timer. It saturates
// instead of overflowing: time.Duration counts nanoseconds and ends about
// 292 years out, and a deadline further away than that (written by an
// older livedict, or by hand) must mean "sleep a long time", never a
// negative wait that makes a timer fire at once, again and again.
func Until(nowMs, atMs int64) time.Duration {
	const maxMs = int64(math.MaxInt64 / int64(time.Millisecond))
	switch d := atMs - nowMs; {
	case atMs < nowMs && d > 0: // atMs - nowMs wrapped around
		return math.MinInt64
	case atMs > nowMs && d < 0:
		return math.MaxInt64
	case d > maxMs:
		return math.MaxInt64
	case d < -maxMs:
		return math.MinInt64
	default:
		return time.Duration(d) * time.Millisecond
	}
}

// FormatDeadline renders a deadline in Unix ms as RFC 3339 in UTC, to the
// millisecond. RFC 3339 has four-digit years, so a deadline past
// 9999-12-31 (possible only in stores written before imports were limited
// to 100 years) is shown as the last millisecond of 9999 rather than as an
// invalid year; callers print the exact remaining time beside it.
func FormatDeadline(ms int64) string {
	const last = 253402300799999 // 9999-12-31T23:59:59.999Z
	return time.UnixMilli(min(max(ms, 0), last)).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// RemainingSeconds converts remaining milliseconds to seconds rounded to the
// nearest second, as Redis's TTL does.
func RemainingSeconds(ms int64) int64 { return (ms + 500) / 1000 }

// FormatDuration renders a duration in milliseconds exactly, in the syntax
// ParseDuration reads ("1h30m", "1s500ms"): for a setting a user may copy
// back, such as a bucket's default TTL, where FormatMs would drop the
// milliseconds.
func FormatDuration(ms int64) string {
	s := FormatMs(ms)
	if rest := ms % 1000; ms >= 1000 && rest != 0 {
		s += strconv.FormatInt(rest, 10) + "ms"
	}
	return s
}

// FormatMs renders a duration in milliseconds compactly for people
// ("1h30m", "45s", "250ms"), leaving out the milliseconds of a duration of
// a second or more (a remaining time, an uptime).
func FormatMs(ms int64) string {
	if ms < 1000 {
		return strconv.FormatInt(ms, 10) + "ms"
	}
	// Integer milliseconds: a time.Duration would overflow past 292 years.
	var b strings.Builder
	for _, u := range []struct {
		s  string
		ms int64
	}{{"d", 86_400_000}, {"h", 3_600_000}, {"m", 60_000}, {"s", 1000}} {
		if ms >= u.ms {
			fmt.Fprintf(&b, "%d%s", ms/u.ms, u.s)
			ms %= u.ms
		}
	}
	return b.String()
}
