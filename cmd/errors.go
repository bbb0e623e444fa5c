package cmd

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/readfile"
	"github.com/livedict/livedict/pkg/seal"
	"github.com/livedict/livedict/pkg/store"
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
  1    not found / condition not met (nothing printed, except as Redis
       answers: ttl and pttl print -2 for a missing key, set --nx --get
       the old value, mget the values it found)
  2    usage or invalid input: bad flag, bad duration, key too long,
       wrong value type
  3    store error: cannot open or create, corrupt, I/O, permission,
       still busy after the timeout
  4    refused by a policy: bucket or store full, value over the limit
  130  interrupted

No internal failure exits 1: a script can read exit 1 as "not there".`

// errNotFound is returned by a command to exit 1 quietly.
var errNotFound error = store.NewError(store.KindNotFound, "not found")

// exitError carries a kind, a message and an optional hint.
type exitError struct {
	kind store.Kind
	err  error
	hint string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ErrorKind makes store.KindOf see the kind.
func (e *exitError) ErrorKind() store.Kind { return e.kind }

// usageErr reports invalid input (exit 2).
func usageErr(err error, hint string) error {
	return &exitError{kind: store.KindInvalid, err: err, hint: hint}
}

// storeErr gives an error that came out of the store without a kind the
// kind store error: what the store did not name is its own failure (I/O,
// permission, the database library).
func storeErr(err error) error { return store.WithKind(store.KindStore, err) }

// exitCodes maps each error kind to its exit code.
var exitCodes = map[store.Kind]int{
	store.KindNotFound:    ExitNotFound,
	store.KindInvalid:     ExitUsage,
	store.KindPolicy:      ExitPolicy,
	store.KindStore:       ExitStore,
	store.KindOutput:      ExitStore,
	store.KindInterrupted: ExitInterrupted,
}

// unclassifiedHint is shown for an error without a kind: a bug, which must
// not pass for an ordinary store error.
const unclassifiedHint = "livedict gave this error no kind; please report it as a bug"

// classify maps any error a command returns to an exit code and a hint.
// The code comes from the error's kind, given where the error was made
// (see store.Kind); the hint from what the error is.
func classify(err error) (code int, hint string) {
	code, ok := exitCodes[store.KindOf(err)]
	if !ok {
		return ExitStore, unclassifiedHint
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return code, ee.hint
	}
	return code, hintFor(err)
}

// hintFor returns the hint for an error that carries none of its own.
func hintFor(err error) string {
	var ie *seal.IdentityError
	policy := "livedict bucket policy NAME" // the full bucket's, when the error names it
	if fe := (*store.FullError)(nil); errors.As(err, &fe) {
		policy = "livedict bucket policy " + shellQuote(fe.Bucket)
	}
	raise := "raise the limit with '" + policy + " --max-keys N'"
	switch {
	case errors.As(err, &ie) && errors.Is(err, fs.ErrNotExist):
		return "livedict looks for this host's age identity at identity_file (" + ie.Path + "); copy it there or set identity_file"
	case errors.As(err, &ie) && errors.Is(err, seal.ErrReadable):
		return "the identity must be yours and private (chmod 600 " + ie.Path + ")"
	case errors.As(err, &ie) && errors.Is(err, store.ErrUntrusted):
		return "identity_file must name a regular file of yours, not a symlink or a device: set it to the file itself"
	case errors.As(err, &ie) && errors.Is(err, seal.ErrPassphrase):
		return "decrypt it once (age -d -o FILE " + ie.Path + "), chmod 600 FILE and set identity_file to it"
	case errors.As(err, &ie):
		return "identity_file must hold an age identity (a line AGE-SECRET-KEY-1...), as 'livedict identity' makes where there is none"
	case errors.Is(err, seal.ErrOpen):
		return "this host's identity is not among the bucket's recipients, or the value is damaged: 'livedict identity' prints this host's key; a host that can read the bucket adds it to recipients_file and runs 'livedict bucket rekey'"
	case errors.Is(err, hooks.ErrLinked):
		return "keep one hard link to the store and make its other names symlinks (ln -sf STORE NAME)"
	case errors.Is(err, hooks.ErrUnsafe):
		// Not "chmod go-w the store's folder" alone: for a store in
		// /tmp that told a user to change the folder everyone shares.
		return "keep stores with hooks in a folder of your own that only you can write (chmod go-w it), not in a shared one such as /tmp"
	case errors.Is(err, readfile.ErrNotPrivate): // before ErrUntrusted, which wraps it
		// chmod go-w, the trust rule's fix, leaves a 0644 secret readable.
		return "a password file must be a regular file that only you can read (chmod 600 it)"
	case errors.Is(err, store.ErrUntrusted):
		return "livedict uses only files you own that nobody else can write: chmod go-w what is yours, remove what is not"
	case errors.Is(err, store.ErrKeyExists):
		return "use --replace to overwrite existing keys or --skip-existing to keep them"
	case errors.Is(err, store.ErrNothingToEvict): // evict-soonest is already on
		return raise + ", or give keys a TTL (--ttl, or the bucket's --default-ttl) so one can be evicted"
	case errors.Is(err, store.ErrLeaseNotEvicted):
		return raise + ", or keep locks in a bucket of their own (lock -b B)"
	case errors.Is(err, store.ErrBucketFull):
		return raise + " or let it evict ('" + policy + " --on-full evict-soonest')"
	case errors.Is(err, store.ErrUncertain):
		return "read the key to see whether the write was applied before you write it again"
	case errors.Is(err, store.ErrServerFull):
		return "free memory on the Redis server or raise its maxmemory; del, bucket drop and reap still work (a delete that records a hook event needs room for it)"
	case errors.Is(err, store.ErrWritesPaused): // before ErrBusy, which wraps it
		return "a Redis failover or an operator paused writes; raise busy_timeout to wait longer for a pause to end"
	case errors.Is(err, store.ErrBusy):
		return "raise busy_timeout if this store is under heavy load"
	case errors.Is(err, store.ErrDamagedKey):
		return "'livedict del KEY' clears the key; set it again afterwards"
	case errors.As(err, new(*store.DamagedPolicyError)):
		return "" // the error says how to set the policy anew
	case errors.Is(err, store.ErrCorrupt):
		return "the store was left untouched; restore it from a backup or move it aside"
	case (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) && store.KindOf(err) != store.KindOutput:
		return "free space on the filesystem that holds the store: every write needs a little room for its journal, deletes too (a full store can be moved or removed whole)"
	case errors.Is(err, fs.ErrPermission):
		return "check the permissions of the store and its folder"
	}
	return ""
}

// warn prints one warning line on stderr (none with --quiet): the
// counterpart of printError for what does not fail the command.
func (a *App) warn(msg string) {
	if !a.Quiet {
		fmt.Fprintf(a.IO.Err, "livedict: warning: %s\n", terminalSafe(oneLine(msg), true))
	}
}
