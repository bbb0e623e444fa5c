package store

import (
	"context"
	"errors"
	"strconv"

	"github.com/livedict/livedict/pkg/ttl"
)

// Kind says what sort of failure an error is, and so which exit code the
// command line gives it. An error gets its kind where it is made (a
// sentinel below, or WithKind), never by guessing from its text.
type Kind uint8

// Error kinds.
const (
	// KindUnknown: the error carries no kind. Reaching a user with it is
	// a bug in livedict.
	KindUnknown Kind = iota
	// KindNotFound: the key is missing or the condition was not met
	// (exit 1, quietly).
	KindNotFound
	// KindInvalid: invalid input (exit 2).
	KindInvalid
	// KindPolicy: refused by a policy, a limit or an unsafe store (exit 4).
	KindPolicy
	// KindStore: the store failed: cannot open, corrupt, busy past the
	// timeout, I/O, permission (exit 3).
	KindStore
	// KindOutput: the result could not be written (a closed pipe, a full
	// disk): the command's work is done or rolled back, its output is
	// lost (exit 3).
	KindOutput
	// KindInterrupted: a signal or a cancelled context ended the command
	// (exit 130).
	KindInterrupted
)

var kindNames = [...]string{"unknown", "not found", "invalid input", "refused by policy", "store error", "output error", "interrupted"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is an error of a known Kind.
type Error struct {
	Kind Kind
	Err  error
}

// NewError returns a new error of kind k, for a sentinel of another
// package.
func NewError(k Kind, msg string) *Error { return &Error{Kind: k, Err: errors.New(msg)} }

func (e *Error) Error() string { return e.Err.Error() }

// ErrorKind returns e's kind. Errors of other packages (the command
// line's own) take part in KindOf by having this method too.
func (e *Error) ErrorKind() Kind { return e.Kind }

// Unwrap returns the error e gives a kind to.
func (e *Error) Unwrap() error { return e.Err }

// WithKind gives err the kind k, unless err is nil or already has a kind
// (the kind given where an error is made is the one that counts).
func WithKind(k Kind, err error) error {
	if err == nil || KindOf(err) != KindUnknown {
		return err
	}
	return &Error{Kind: k, Err: err}
}

// KindOf returns the kind of the first error of err's chain that has one.
// The standard library's and package ttl's errors, which cannot carry a
// kind of this package, are known by value: a cancelled context is
// KindInterrupted, a bad duration or time KindInvalid.
func KindOf(err error) Kind {
	var e interface{ ErrorKind() Kind }
	switch {
	case err == nil:
		return KindUnknown
	case errors.As(err, &e):
		return e.ErrorKind()
	case errors.Is(err, context.Canceled):
		return KindInterrupted
	case errors.Is(err, ttl.ErrDuration), errors.Is(err, ttl.ErrTime):
		return KindInvalid
	}
	return KindUnknown
}

// Sentinel errors. Each has its Kind, which decides the exit code; match
// one with errors.Is.
var (
	// ErrInvalidKey: a key that is empty, over MaxKeyBytes or holds a NUL.
	ErrInvalidKey = NewError(KindInvalid, "invalid key")
	// ErrInvalidBucket: a bucket name outside [A-Za-z0-9._-]{1,64}.
	ErrInvalidBucket = NewError(KindInvalid, "invalid bucket name")
	// ErrNotInteger: the value is not a decimal int64 (Redis wording).
	ErrNotInteger = NewError(KindInvalid, "value is not an integer or out of range")
	// ErrNotFloat: the value is not a float (Redis wording).
	ErrNotFloat = NewError(KindInvalid, "value is not a valid float")
	// ErrOverflow: arithmetic would leave int64 (Redis wording).
	ErrOverflow = NewError(KindInvalid, "increment or decrement would overflow")
	// ErrNaN: float arithmetic would produce NaN or infinity (Redis wording).
	ErrNaN = NewError(KindInvalid, "increment would produce NaN or Infinity")
	// ErrBucketFull: the bucket is at MaxKeys and its policy rejects.
	ErrBucketFull = NewError(KindPolicy, "bucket is full")
	// ErrNothingToEvict: the bucket evicts the soonest-expiring key when
	// full, but none has a TTL; it comes wrapped with ErrBucketFull.
	ErrNothingToEvict = NewError(KindPolicy, "no key has a TTL to evict")
	// ErrLeaseNotEvicted: the key evict-soonest would evict is a held
	// lease (see Pinned).
	ErrLeaseNotEvicted = NewError(KindPolicy, "is a held lease, which is never evicted")
	// ErrStoreFull: the store is at the configured max_total_keys.
	ErrStoreFull = NewError(KindPolicy, "store is full")
	// ErrValueTooLarge: a value over the configured max_value_bytes.
	ErrValueTooLarge = NewError(KindPolicy, "value too large")
	// ErrUntrusted is wrapped by every refusal of the trust rule.
	ErrUntrusted = NewError(KindStore, "not trusted")
	// ErrBusy: another process held the store past the busy timeout.
	ErrBusy = NewError(KindStore, "store is busy")
	// ErrWritesPaused: a Redis server held a commit past the busy timeout
	// in CLIENT PAUSE WRITE; it comes wrapped with ErrBusy, and nothing
	// was written.
	ErrWritesPaused = NewError(KindStore, "the server is pausing writes (CLIENT PAUSE)")
	// ErrServerFull: a Redis server at its maxmemory (with noeviction)
	// refused a write that adds data; nothing was written.
	ErrServerFull = NewError(KindStore, "the server is out of memory")
	// ErrUncertain: a write was sent and its outcome cannot be known (a
	// Redis server held it past the busy timeout, and livedict could not
	// check).
	ErrUncertain = NewError(KindStore, "the write may or may not have been applied")
	// ErrCorrupt: the store's data is damaged; livedict leaves it untouched.
	ErrCorrupt = NewError(KindStore, "store is corrupt")
	// ErrDamagedKey: one key's data was changed outside livedict (a Redis
	// value deleted, evicted or replaced); del still clears the key.
	ErrDamagedKey = NewError(KindStore, "key is damaged")
	// ErrNotStore: the path exists but is not a livedict store.
	ErrNotStore = NewError(KindStore, "not a livedict store")
	// ErrStoreReplaced: the store's path no longer names the file a
	// long-running process opened (see Replaced).
	ErrStoreReplaced = NewError(KindStore, "store deleted or replaced")
	// ErrNewerStore: the store was written by a newer livedict.
	ErrNewerStore = NewError(KindStore, "store was written by a newer livedict")
	// ErrKeyExists: an import met a live key without --replace or --skip-existing.
	ErrKeyExists = NewError(KindInvalid, "key exists")
	// ErrBadURL: a store URL livedict does not understand.
	ErrBadURL = NewError(KindInvalid, "invalid store URL")
)

// FullError is how a write refused by a full bucket comes (it wraps
// ErrBucketFull): it names the bucket, so a hint can give the command that
// raises its limit.
type FullError struct {
	Bucket string
	err    error
}

func (e *FullError) Error() string { return e.err.Error() }
func (e *FullError) Unwrap() error { return e.err }
