package store

import (
	"fmt"
	"slices"

	"github.com/livedict/livedict/pkg/ttl"
)

// maxInternalName is the longest internal bucket name after the '!'.
const maxInternalName = 32

// validateInternal checks an internal bucket name: '!' and 1 to 32 of
// [a-z]. Backends name files and folders after it, so it stays plain.
func validateInternal(name string) error {
	if len(name) < 2 || len(name) > 1+maxInternalName || name[0] != '!' {
		return fmt.Errorf("%w %q: internal names are '!' and 1 to %d lower-case letters", ErrInvalidBucket, name, maxInternalName)
	}
	for i := 1; i < len(name); i++ {
		if c := name[i]; c < 'a' || c > 'z' {
			return fmt.Errorf("%w %q: internal names are '!' and 1 to %d lower-case letters", ErrInvalidBucket, name, maxInternalName)
		}
	}
	return nil
}

// checkInternalName validates bucket if it is an internal name. User
// names are left to the caller, as they always were on SQLite and memory.
func checkInternalName(bucket string) error {
	if IsInternal(bucket) {
		return validateInternal(bucket)
	}
	return nil
}

// checkUserBucket refuses an internal name where only user buckets make
// sense (counts, policies, drops): those would show livedict's own data.
func checkUserBucket(name string) error {
	if IsInternal(name) {
		return fmt.Errorf("%w %q: livedict's own bucket", ErrInvalidBucket, name)
	}
	return nil
}

// checkInternalPut checks an entry bound for an internal bucket. Its key
// must be one every backend can store, and it may not expire: nothing
// reaps internal buckets, so an expired entry would linger forever.
func checkInternalPut(e Entry) error {
	if err := validateInternal(e.Bucket); err != nil {
		return err
	}
	if err := ValidateKey(e.Key); err != nil {
		return err
	}
	if e.ExpiresAt != 0 {
		return fmt.Errorf("bucket %q is livedict's own: its entries cannot expire", e.Bucket)
	}
	return nil
}

// deadlineID is the ID the file and memory backends give a key's
// deadline: FNV-1a 64 of bucket, NUL, key. They have no row numbers, and
// a hash keeps the ID stable across processes and transactions.
func deadlineID(bucket, key string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(bucket); i++ {
		h = (h ^ uint64(bucket[i])) * prime
	}
	h *= prime // ^ 0, the NUL between them
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	return h
}

func compareDue(a, b ttl.Due) int {
	switch {
	case a.At != b.At:
		if a.At < b.At {
			return -1
		}
		return 1
	case a.ID < b.ID:
		return -1
	case a.ID > b.ID:
		return 1
	}
	return 0
}

// deadlinesAfter keeps the deadlines strictly after after and returns the
// first limit of them in (At, ID) order. all is reordered.
func deadlinesAfter(all []ttl.Due, after ttl.Due, limit int) []ttl.Due {
	if limit <= 0 {
		return nil
	}
	kept := all[:0]
	for _, d := range all {
		if compareDue(d, after) > 0 {
			kept = append(kept, d)
		}
	}
	slices.SortFunc(kept, compareDue)
	if len(kept) > limit {
		return slices.Clone(kept[:limit]) // do not pin the whole store's worth
	}
	return kept
}
