package ttl

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"1500ms": 1500 * time.Millisecond,
		"90s":    90 * time.Second,
		"5m":     5 * time.Minute,
		"2h":     2 * time.Hour,
		"1d":     24 * time.Hour,
		"1w":     7 * 24 * time.Hour,
		"1h30m":  90 * time.Minute,
		"1m1ms":  time.Minute + time.Millisecond,
		"90":     90 * time.Second,
		"0":      0,
		"-1":     -time.Second,
		"-5m":    -5 * time.Minute,
		"+7":     7 * time.Second,
		"36500d": 36500 * 24 * time.Hour,
		// Further back than 100 years is as expired as 100 years back
		// (Redis's EXPIRE takes any negative 64-bit number).
		"-36500d":      -MaxDuration,
		"-3153600001":  -MaxDuration,
		"-36501d":      -MaxDuration,
		"-9999999999w": -MaxDuration,
		"-36500d1ms":   -MaxDuration,
	}
	for in, want := range good {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	bad := []string{"", "-", "s", "5", "5x", "1.5", "5 m", "m5", "1h30", "99999999999999999999", "36501d", "5300w", "9223372036854775807ms1d", "1e3s", "٣s",
		"-99999999999999999999", "-99999999999999999999s", "-36501x", "-36501d5x", "-9999999999w1.5ms"}
	bad[3] = "5S"
	for _, in := range bad {
		if d, err := ParseDuration(in); err == nil || !errors.Is(err, ErrDuration) {
			t.Errorf("ParseDuration(%q) = %v, %v; want an error", in, d, err)
		}
	}
}

// TestParseDurationSpace: " 5m" (a variable quoted with its padding) said
// "expected a number", though a number was there.
func TestParseDurationSpace(t *testing.T) {
	for _, in := range []string{" 5m", "5m ", "5 m", "1h\t30m", "\n5"} {
		_, err := ParseDuration(in)
		if err == nil || !strings.HasSuffix(err.Error(), ": contains white space") {
			t.Errorf("ParseDuration(%q) = %v; want it to say it contains white space", in, err)
		}
	}
}

// TestParseDurationOutOfRange: a negative number too long for 64 bits was
// "longer than 100 years", which a negative TTL never is.
func TestParseDurationOutOfRange(t *testing.T) {
	for _, in := range []string{"-99999999999999999999", "-99999999999999999999s", "-1h99999999999999999999m"} {
		_, err := ParseDuration(in)
		if err == nil || !strings.HasSuffix(err.Error(), ": out of range") {
			t.Errorf("ParseDuration(%q) = %v; want out of range", in, err)
		}
	}
}

func TestParseTime(t *testing.T) {
	good := map[string]int64{
		"@1700000000":               1700000000000,
		"@1700000000.25":            1700000000250,
		"@0":                        0,
		"2026-01-02T03:04:05Z":      1767323045000,
		"2026-01-02T03:04:05.5Z":    1767323045500,
		"2026-01-02T04:04:05+01:00": 1767323045000,
		// The sign belongs to the fraction too: @-0.5 is before the
		// epoch, not half a second after it.
		"@-0.5":  -500,
		"@-1.25": -1250,
		// RFC 3339 allows "t", "z" and a space for the "T"; `date
		// --rfc-3339=seconds` prints the space.
		"2026-01-02t03:04:05z":      1767323045000,
		"2026-01-02 03:04:05Z":      1767323045000,
		"2026-01-02 04:04:05+01:00": 1767323045000,
		"2026-01-02t03:04:05.5z":    1767323045500,
	}
	for in, want := range good {
		got, err := ParseTime(in)
		if err != nil || got.UnixMilli() != want {
			t.Errorf("ParseTime(%q) = %v (%d), %v; want %d", in, got, got.UnixMilli(), err, want)
		}
	}
	for _, in := range []string{"", "@", "@x", "@1.", "@1.2.3", "2026-01-02", "2026-01-02x03:04:05Z", "2026-01-02  03:04:05Z", "2026-01-02T03:04:05", "yesterday", "@99999999999999999999"} {
		if _, err := ParseTime(in); !errors.Is(err, ErrTime) {
			t.Errorf("ParseTime(%q) err = %v; want ErrTime", in, err)
		}
	}
}

func TestRemainingSecondsRoundsLikeRedis(t *testing.T) {
	for ms, want := range map[int64]int64{0: 0, 499: 0, 500: 1, 1499: 1, 1500: 2, 90000: 90} {
		if got := RemainingSeconds(ms); got != want {
			t.Errorf("RemainingSeconds(%d) = %d, want %d", ms, got, want)
		}
	}
}

func TestFakeClock(t *testing.T) {
	f := NewFake(time.Unix(100, 0))
	f.Advance(1500 * time.Millisecond)
	if NowMs(f) != 101500 {
		t.Fatalf("fake clock at %d", NowMs(f))
	}
}

func TestFormatMs(t *testing.T) {
	for ms, want := range map[int64]string{250: "250ms", 45000: "45s", 5400000: "1h30m", 90061000: "1d1h1m1s"} {
		if got := FormatMs(ms); got != want {
			t.Errorf("FormatMs(%d) = %q, want %q", ms, got, want)
		}
	}
}

// TestFormatDurationRoundTrips: what FormatDuration prints (a bucket's
// default TTL) reads back as the same duration, milliseconds included.
func TestFormatDurationRoundTrips(t *testing.T) {
	for ms, want := range map[int64]string{1: "1ms", 250: "250ms", 1500: "1s500ms", 3600500: "1h500ms", 5400000: "1h30m", 90061001: "1d1h1m1s1ms", MaxDuration.Milliseconds(): "36500d"} {
		got := FormatDuration(ms)
		if got != want {
			t.Errorf("FormatDuration(%d) = %q, want %q", ms, got, want)
		}
		if d, err := ParseDuration(got); err != nil || d.Milliseconds() != ms {
			t.Errorf("ParseDuration(%q) = %v, %v; want %dms", got, d, err, ms)
		}
	}
}

// FuzzParseDuration: never panics, never returns more than MaxDuration, and
// an accepted duration written back in ms parses to the same value.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"1500ms", "90", "1h30m", "-5m", "1d", "2w", "", "ms", "9999999999w", "1.5s", "0.5h", "1.0001ms"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if !errors.Is(err, ErrDuration) || d != 0 {
				t.Fatalf("error %v with duration %v", err, d)
			}
			return
		}
		if d > MaxDuration || d < -MaxDuration {
			t.Fatalf("%q parsed to %v, beyond the limit", s, d)
		}
		if strings.ContainsAny(s, " eE") {
			t.Fatalf("%q accepted", s)
		}
		if d%time.Millisecond != 0 {
			t.Fatalf("%q parsed to %v, finer than a millisecond", s, d)
		}
		// Whole milliseconds survive being written back in ms.
		if d%time.Millisecond == 0 {
			back, err := ParseDuration(strconv.FormatInt(d.Milliseconds(), 10) + "ms")
			if err != nil || back != d {
				t.Fatalf("%q → %v → %dms → %v, %v", s, d, d.Milliseconds(), back, err)
			}
		}
		// And so does what bucket policy shows (FormatDuration).
		if d > 0 {
			back, err := ParseDuration(FormatDuration(d.Milliseconds()))
			if err != nil || back != d {
				t.Fatalf("%q → %v → %q → %v, %v", s, d, FormatDuration(d.Milliseconds()), back, err)
			}
		}
	})
}

// FuzzParseTime: never panics; accepted @-times round-trip through ms.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"@1700000000", "@1.5", "2026-01-02T03:04:05Z", "@-1", "@-0.5", "@", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTime(s)
		if err != nil {
			if !errors.Is(err, ErrTime) {
				t.Fatalf("error %v does not wrap ErrTime", err)
			}
			return
		}
		// A negative @-time is before the epoch, fraction included.
		if strings.HasPrefix(s, "@-") && tm.UnixMilli() > 0 {
			t.Fatalf("%q parsed to %d ms, after the epoch", s, tm.UnixMilli())
		}
	})
}

// TestParseDurationFractions: Redis-style users write 1.5s and 0.5h; a
// fraction is read exactly, to the millisecond, and anything finer, or a
// fraction without a unit, says what is wrong instead of "unknown unit".
func TestParseDurationFractions(t *testing.T) {
	good := map[string]time.Duration{
		"1.5s":     1500 * time.Millisecond,
		"0.5h":     30 * time.Minute,
		"1.5d":     36 * time.Hour,
		"0.1s":     100 * time.Millisecond,
		"1.25m":    75 * time.Second,
		"1.0ms":    time.Millisecond,
		"1h0.5m":   time.Hour + 30*time.Second,
		"-1.5s":    -1500 * time.Millisecond,
		"0.5w":     84 * time.Hour,
		"1.500s":   1500 * time.Millisecond,
		"36499.5d": 36499*24*time.Hour + 12*time.Hour,
	}
	for in, want := range good {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	bad := map[string]string{
		"1.5ms":    "finer than a millisecond",
		"0.0001s":  "finer than a millisecond",
		"1.5":      "needs a unit",
		"1.s":      "digits after the decimal point",
		".5s":      "expected a number",
		"1.5x":     `unknown unit "x"`,
		"36500.5d": "longer than 100 years",
		"1h30":     "unknown unit",
	}
	for in, why := range bad {
		if d, err := ParseDuration(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseDuration(%q) = %v, %v; want an error saying %q", in, d, err, why)
		}
	}
}

// TestUntilSaturates: a deadline centuries away is a long wait, never a
// negative one. The daemon computed time.Duration(next-now)*time.Millisecond,
// which wraps past 292 years and made its timer fire at once, forever.
func TestUntilSaturates(t *testing.T) {
	now := int64(1_767_225_600_000)
	year := int64(365 * 24 * 3600 * 1000)
	cases := []struct {
		at   int64
		want time.Duration
	}{
		{now + 1500, 1500 * time.Millisecond},
		{now - 1500, -1500 * time.Millisecond},
		{now + 300*year, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64},
		{now + 100*year, time.Duration(100*year) * time.Millisecond},
	}
	for _, c := range cases {
		if got := Until(now, c.at); got != c.want {
			t.Errorf("Until(now, now%+d) = %v, want %v", c.at-now, got, c.want)
		}
	}
	if got := Until(math.MaxInt64, math.MinInt64); got != math.MinInt64 {
		t.Errorf("Until(max, min) = %v, want the most negative duration", got)
	}
}

// TestFormatDeadlineValidYear: RFC 3339 years have four digits.
func TestFormatDeadlineValidYear(t *testing.T) {
	for ms, want := range map[int64]string{
		1767225600000:   "2026-01-01T00:00:00.000Z",
		math.MaxInt64:   "9999-12-31T23:59:59.999Z",
		253402300800000: "9999-12-31T23:59:59.999Z",
	} {
		got := FormatDeadline(ms)
		if got != want {
			t.Errorf("FormatDeadline(%d) = %q, want %q", ms, got, want)
		}
		if _, err := time.Parse(time.RFC3339Nano, got); err != nil {
			t.Errorf("FormatDeadline(%d) = %q is not RFC 3339: %v", ms, got, err)
		}
	}
}

// TestParseDurationUnitWords: "5min" (or 10sec, 2hr, 3days) said "expected
// a number", since its m was read as minutes and "in" was left; it names
// the unit it does not know instead.
func TestParseDurationUnitWords(t *testing.T) {
	for in, word := range map[string]string{"5min": `"min"`, "10sec": `"sec"`, "2hr": `"hr"`, "3days": `"days"`, "1h30mins": `"mins"`, "1.5hours": `"hours"`, "5mo": `"mo"`} {
		_, err := ParseDuration(in)
		if err == nil || !strings.Contains(err.Error(), "unknown unit "+word+"; use ms, s, m, h, d or w") {
			t.Errorf("ParseDuration(%q) = %v; want it to name the unknown unit %s", in, err, word)
		}
	}
	for _, in := range []string{"500ms", "1h30m", "1w2d", "90s"} {
		if _, err := ParseDuration(in); err != nil {
			t.Errorf("ParseDuration(%q) = %v", in, err)
		}
	}
}
