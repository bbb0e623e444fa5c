package cmd

import (
	"context"
	"errors"
	"io/fs"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
)

// Exit codes, as documented by `livedict help exit-codes`.
const (
	ExitOK          = 0
	ExitNotFound    = 1
	ExitUsage       = 2
	ExitStore       = 3
	ExitPolicy      = 4
	ExitInterrupted = 130
)

const exitCodesHelp = `Exit codes:

  0    success
  1    not found / condition not met (nothing printed, except ttl and pttl,
       which print -2 for a missing key, as Redis does)
  2    usage or invalid input: bad flag, bad duration, key too long,
       wrong value type
  3    store error: cannot open or create, corrupt, I/O, permission,
       still busy after the timeout
  4    refused by a policy: bucket or store full, value over the limit
  130  interrupted

No internal failure exits 1: a script can read exit 1 as "not there".`

// errNotFound is returned by a command to exit 1 quietly.
var errNotFound = errors.New("not found")

// exitError carries an exit code, a message and an optional hint.
type exitError struct {
	code int
	err  error
	hint string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr reports invalid input (exit 2).
func usageErr(err error, hint string) error {
	return &exitError{code: ExitUsage, err: err, hint: hint}
}

// classify maps any error a command returns to an exit code and a hint.
// Errors that are not recognised are store errors (exit 3): the only thing
// left that can fail is the store, and exit 1 must stay reserved for "not
// found".
func classify(err error) (code int, hint string) {
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code, ee.hint
	case errors.Is(err, errNotFound):
		return ExitNotFound, ""
	case errors.Is(err, context.Canceled):
		return ExitInterrupted, ""
	case errors.Is(err, store.ErrInvalidKey), errors.Is(err, store.ErrInvalidBucket),
		errors.Is(err, ttl.ErrDuration), errors.Is(err, ttl.ErrTime),
		errors.Is(err, store.ErrNotInteger), errors.Is(err, store.ErrNotFloat),
		errors.Is(err, store.ErrOverflow), errors.Is(err, store.ErrNaN),
		errors.Is(err, store.ErrBadURL):
		return ExitUsage, ""
	case errors.Is(err, hooks.ErrUnsafe):
		return ExitPolicy, "make the store and its folder writable only by you (chmod go-w)"
	case errors.Is(err, store.ErrUntrusted):
		return ExitStore, "livedict uses only files you own that nobody else can write: chmod go-w what is yours, remove what is not"
	case errors.Is(err, hooks.ErrEvents):
		return ExitUsage, ""
	case errors.Is(err, store.ErrKeyExists):
		return ExitUsage, "use --replace to overwrite existing keys or --skip-existing to keep them"
	case errors.Is(err, store.ErrBucketFull):
		return ExitPolicy, "raise the limit with 'livedict bucket policy NAME --max-keys N' or use --on-full evict-soonest"
	case errors.Is(err, store.ErrStoreFull), errors.Is(err, store.ErrValueTooLarge):
		return ExitPolicy, ""
	case errors.Is(err, store.ErrBusy):
		return ExitStore, "raise busy_timeout if this store is under heavy load"
	case errors.Is(err, store.ErrCorrupt):
		return ExitStore, "the store was left untouched; restore it from a backup or move it aside"
	case errors.Is(err, fs.ErrPermission):
		return ExitStore, "check the permissions of the store and its folder"
	}
	return ExitStore, ""
}
