package store

// Match reports whether s matches the Redis-style glob pattern: '*' any run
// of bytes, '?' one byte, '[abc]' '[^abc]' '[a-z]' a byte class, and '\x'
// the byte x literally. Matching is bytewise, as in Redis, so it works on
// keys that are not UTF-8. A malformed pattern (an unclosed '[') matches the
// way Redis's stringmatchlen does: the '[' class runs to the end.
func Match(pattern, s string) bool {
	// Iterative matcher with single-star backtracking: linear memory and
	// O(len(p)*len(s)) time, so hostile patterns like "*a*a*a*a*b" cannot
	// blow up.
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			switch pattern[p] {
			case '*':
				for p < len(pattern) && pattern[p] == '*' {
					p++
				}
				if p == len(pattern) {
					return true
				}
				starP, starI = p, i
				continue
			case '?':
				p++
				i++
				continue
			case '[':
				if next, ok := matchClass(pattern, p, s[i]); ok {
					p = next
					i++
					continue
				}
			case '\\':
				if p+1 < len(pattern) {
					if pattern[p+1] == s[i] {
						p += 2
						i++
						continue
					}
				} else if s[i] == '\\' {
					p++
					i++
					continue
				}
			default:
				if pattern[p] == s[i] {
					p++
					i++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starI++
		p, i = starP, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchClass matches byte c against the class starting at pattern[p] ('[')
// and returns the index just past the class.
func matchClass(pattern string, p int, c byte) (int, bool) {
	p++ // past '['
	negate := false
	if p < len(pattern) && pattern[p] == '^' {
		negate = true
		p++
	}
	matched := false
	for p < len(pattern) && pattern[p] != ']' {
		switch {
		case pattern[p] == '\\' && p+1 < len(pattern):
			p++
			if pattern[p] == c {
				matched = true
			}
			p++
		case p+2 < len(pattern) && pattern[p+1] == '-':
			lo, hi := pattern[p], pattern[p+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			if c >= lo && c <= hi {
				matched = true
			}
			p += 3
		default:
			if pattern[p] == c {
				matched = true
			}
			p++
		}
	}
	if p < len(pattern) {
		p++ // past ']'
	}
	if negate {
		matched = !matched
	}
	return p, matched
}

// LiteralPrefix returns the bytes every match of pattern must start with, so
// a backend can narrow a scan to a key range before matching.
func LiteralPrefix(pattern string) string {
	var b []byte
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*', '?', '[':
			return string(b)
		case '\\':
			if i+1 >= len(pattern) {
				return string(append(b, '\\'))
			}
			i++
			b = append(b, pattern[i])
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
