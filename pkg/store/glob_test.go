package store

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "anything", true},
		{"h?llo", "hello", true},
		{"h?llo", "hllo", false},
		{"h*llo", "hllo", true},
		{"h*llo", "heeeeello", true},
		{"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[b-a]llo", "hbllo", true}, // reversed ranges work, as in Redis
		{"h[a-b]llo", "hcllo", false},
		{`h\*llo`, "h*llo", true},
		{`h\*llo`, "hello", false},
		{`[\]]`, "]", true},
		{`a\`, `a\`, true},
		{"user:*", "user:", true},
		{"user:*", "use", false},
		{"*a*a*a*a*a*a*a*a*b", strings.Repeat("a", 200), false},
		{"\xff*", "\xff\x00", true},
		{"[abc", "a", true}, // unclosed class runs to the end, as in Redis
		{"", "x", false},
	}
	for _, c := range cases {
		if got := Match(c.pattern, c.s); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
		if strings.Count(c.pattern, "*") > 4 {
			continue // exponential for the oracle
		}
		if got := redisMatch(c.pattern, c.s); got != c.want {
			t.Errorf("oracle Match(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestLiteralPrefix(t *testing.T) {
	for p, want := range map[string]string{"user:*": "user:", `a\*b*`: "a*b", "abc": "abc", "?x": "", "a[bc]": "a", `x\`: `x\`} {
		if got := LiteralPrefix(p); got != want {
			t.Errorf("LiteralPrefix(%q) = %q, want %q", p, got, want)
		}
	}
}

// redisMatch is a direct, recursive transcription of Redis's
// stringmatchlen, used as the oracle for the iterative Match.
func redisMatch(p, s string) bool {
	for len(p) > 0 && len(s) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for len(s) > 0 {
				if redisMatch(p[1:], s) {
					return true
				}
				s = s[1:]
			}
			return false
		case '?':
			s = s[1:]
		case '[':
			p = p[1:]
			not := len(p) > 0 && p[0] == '^'
			if not {
				p = p[1:]
			}
			match := false
			for {
				if len(p) >= 2 && p[0] == '\\' {
					p = p[1:]
					if p[0] == s[0] {
						match = true
					}
				} else if len(p) == 0 {
					break
				} else if p[0] == ']' {
					break
				} else if len(p) >= 3 && p[1] == '-' {
					lo, hi := p[0], p[2]
					if lo > hi {
						lo, hi = hi, lo
					}
					if s[0] >= lo && s[0] <= hi {
						match = true
					}
					p = p[2:]
				} else if p[0] == s[0] {
					match = true
				}
				p = p[1:]
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			s = s[1:]
			if len(p) == 0 {
				return len(s) == 0
			}
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if p[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		p = p[1:]
		if len(s) == 0 {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			break
		}
	}
	return len(p) == 0 && len(s) == 0
}

// FuzzMatch holds Match to the Redis oracle and checks LiteralPrefix is a
// true prefix of everything that matches.
func FuzzMatch(f *testing.F) {
	for _, c := range [][2]string{{"h*llo", "hello"}, {"[a-z]*", "x"}, {`\*`, "*"}, {"[^", "a"}, {"*?*", "ab"}, {"a[", "a"}} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, p, s string) {
		if s == "" || len(p) > 64 || len(s) > 64 || strings.Count(p, "*") > 6 {
			return // keys are never empty; keep the exponential oracle fast
		}
		got := Match(p, s)
		if want := redisMatch(p, s); got != want {
			t.Fatalf("Match(%q, %q) = %v, Redis says %v", p, s, got, want)
		}
		if got && !strings.HasPrefix(s, LiteralPrefix(p)) {
			t.Fatalf("%q matches %q but LiteralPrefix is %q", s, p, LiteralPrefix(p))
		}
	})
}
