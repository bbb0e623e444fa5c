package store

import (
	"crypto/sha256"
	"encoding/hex"
)

// The file store names every key's file (and every bucket's folder) by an
// encoding of the key. The encoding has to survive every filesystem livedict
// may run on, so it is deliberately plain:
//
//   - bytes [a-z0-9_-] stand for themselves;
//   - every other byte is '%' and two UPPERCASE hex digits.
//
// Literals are always lower case and escapes always upper case, so two
// distinct keys can never produce names that differ only in letter case (a
// case-insensitive filesystem such as the macOS default would otherwise merge
// "A" and "a"). '.', '/' and NUL are always escaped, so a name is never "."
// or "..", never starts with '.' (the store's own files all do) and never
// leaves its folder.
//
// An encoded name longer than fileKeyMaxLiteral is replaced by '~' and the
// lower-case hex SHA-256 of the key, which keeps names far below NAME_MAX
// (255) for keys of up to 4096 bytes. '~' is never produced by the literal
// form (it is escaped as %7E), so the two forms cannot collide. The record
// file stores the full key, which resolves hashed names and detects a hash
// collision.

// fileKeyMaxLiteral is the longest name the literal form may produce.
const fileKeyMaxLiteral = 200

// fileKeyHashPrefix starts a hashed name.
const fileKeyHashPrefix = '~'

const fileKeyHexUpper = "0123456789ABCDEF"

// fileKeyLiteral reports whether b stands for itself in an encoded name.
func fileKeyLiteral(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '-'
}

// fileKeyEncode returns the file name for key (or bucket name). key must be
// non-empty; the result is then a non-empty, filesystem-safe name.
func fileKeyEncode(key string) string {
	n := 0
	for i := 0; i < len(key); i++ {
		if fileKeyLiteral(key[i]) {
			n++
		} else {
			n += 3
		}
		if n > fileKeyMaxLiteral {
			return fileKeyHashed(key)
		}
	}
	if n == len(key) {
		return key // the common case: nothing to escape, no allocation
	}
	buf := make([]byte, 0, n)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if fileKeyLiteral(c) {
			buf = append(buf, c)
		} else {
			buf = append(buf, '%', fileKeyHexUpper[c>>4], fileKeyHexUpper[c&15])
		}
	}
	return string(buf)
}

// fileKeyHashed is the name used for keys too long to spell out.
func fileKeyHashed(key string) string {
	sum := sha256.Sum256([]byte(key))
	return string(fileKeyHashPrefix) + hex.EncodeToString(sum[:])
}

// fileKeyIsHashed reports whether name has the hashed form, whose key can
// only be learnt by reading the record.
func fileKeyIsHashed(name string) bool {
	if len(name) != 1+2*sha256.Size || name[0] != fileKeyHashPrefix {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// fileKeyDecode returns the key a literal name stands for. ok is false for
// hashed names and for anything fileKeyEncode would not have produced
// (lower-case escapes, escaped literals, over-long names, stray bytes), so
// every accepted name maps back to exactly one key and vice versa.
func fileKeyDecode(name string) (key string, ok bool) {
	if name == "" || len(name) > fileKeyMaxLiteral {
		return "", false
	}
	buf := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case fileKeyLiteral(c):
			buf = append(buf, c)
		case c == '%':
			if i+2 >= len(name) {
				return "", false
			}
			hi, ok1 := fileKeyUnhex(name[i+1])
			lo, ok2 := fileKeyUnhex(name[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			b := hi<<4 | lo
			if fileKeyLiteral(b) {
				return "", false // a literal byte is never escaped
			}
			buf = append(buf, b)
			i += 2
		default:
			return "", false
		}
	}
	return string(buf), true
}

// fileKeyUnhex decodes one upper-case hex digit.
func fileKeyUnhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
