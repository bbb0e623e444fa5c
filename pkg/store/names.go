package store

import (
	"fmt"
	"strings"
)

// MaxKeyBytes is the longest key livedict stores.
const MaxKeyBytes = 4096

// DefaultBucket is the bucket used when none is named.
const DefaultBucket = "main"

// ValidateKey checks a key: 1 to MaxKeyBytes bytes, any bytes but NUL.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > MaxKeyBytes:
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalidKey, len(key), MaxKeyBytes)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w: contains a NUL byte", ErrInvalidKey)
	}
	return nil
}

// ValidateBucket checks a bucket name: 1 to 64 of [A-Za-z0-9._-].
func ValidateBucket(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%w %q: must be 1 to 64 characters", ErrInvalidBucket, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w %q: only letters, digits, '.', '_' and '-' are allowed", ErrInvalidBucket, name)
		}
	}
	return nil
}
