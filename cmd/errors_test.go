package cmd

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
)

// sentinels are the exported errors of the packages commands call, each
// with the exit code it must give. TestSentinelsAreListed keeps the list
// complete.
var sentinels = map[string]struct {
	err  error
	code int
}{
	"store.ErrInvalidKey":      {store.ErrInvalidKey, ExitUsage},
	"store.ErrInvalidBucket":   {store.ErrInvalidBucket, ExitUsage},
	"store.ErrNotInteger":      {store.ErrNotInteger, ExitUsage},
	"store.ErrNotFloat":        {store.ErrNotFloat, ExitUsage},
	"store.ErrOverflow":        {store.ErrOverflow, ExitUsage},
	"store.ErrNaN":             {store.ErrNaN, ExitUsage},
	"store.ErrKeyExists":       {store.ErrKeyExists, ExitUsage},
	"store.ErrBadURL":          {store.ErrBadURL, ExitUsage},
	"store.ErrBucketFull":      {store.ErrBucketFull, ExitPolicy},
	"store.ErrNothingToEvict":  {store.ErrNothingToEvict, ExitPolicy},
	"store.ErrLeaseNotEvicted": {store.ErrLeaseNotEvicted, ExitPolicy},
	"store.ErrStoreFull":       {store.ErrStoreFull, ExitPolicy},
	"store.ErrValueTooLarge":   {store.ErrValueTooLarge, ExitPolicy},
	"store.ErrBusy":            {store.ErrBusy, ExitStore},
	"store.ErrUncertain":       {store.ErrUncertain, ExitStore},
	"store.ErrWritesPaused":    {store.ErrWritesPaused, ExitStore},
	"store.ErrServerFull":      {store.ErrServerFull, ExitStore},
	"store.ErrUntrusted":       {store.ErrUntrusted, ExitStore},
	"store.ErrCorrupt":         {store.ErrCorrupt, ExitStore},
	"store.ErrDamagedKey":      {store.ErrDamagedKey, ExitStore},
	"store.ErrStoreReplaced":   {store.ErrStoreReplaced, ExitStore},
	"store.ErrNotStore":        {store.ErrNotStore, ExitStore},
	"store.ErrNewerStore":      {store.ErrNewerStore, ExitStore},
	"ttl.ErrDuration":          {ttl.ErrDuration, ExitUsage},
	"ttl.ErrTime":              {ttl.ErrTime, ExitUsage},
	"hooks.ErrEvents":          {hooks.ErrEvents, ExitUsage},
	"hooks.ErrNotText":         {hooks.ErrNotText, ExitUsage},
	"hooks.ErrNoHook":          {hooks.ErrNoHook, ExitNotFound},
	"hooks.ErrHookKey":         {hooks.ErrHookKey, ExitPolicy},
	"hooks.ErrLinked":          {hooks.ErrLinked, ExitPolicy},
	// A backend that breaks the deadline contract: a store failure.
	"ttl.ErrSource": {storeErr(ttl.ErrSource), ExitStore},
	// Never returned to a command as is: CheckSafe's callers give it
	// its kind (policy), TryLock's callers handle it.
	"hooks.ErrUnsafe": {store.WithKind(store.KindPolicy, hooks.ErrUnsafe), ExitPolicy},
	"hooks.ErrLocked": {store.WithKind(store.KindStore, hooks.ErrLocked), ExitStore},
	// Internal to Scan; never leaves the store.
	"store.ErrStopScan": {store.WithKind(store.KindStore, store.ErrStopScan), ExitStore},
}

// A new exported error in a package commands call must say what kind it
// is (and be listed above): classify never guesses.
func TestSentinelsAreListed(t *testing.T) {
	for pkg, dir := range map[string]string{"store": "../pkg/store", "ttl": "../pkg/ttl", "hooks": "../pkg/hooks"} {
		fset := token.NewFileSet()
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, decl := range f.Decls {
				g, ok := decl.(*ast.GenDecl)
				if !ok || g.Tok != token.VAR {
					continue
				}
				for _, spec := range g.Specs {
					for _, id := range spec.(*ast.ValueSpec).Names {
						if id.IsExported() && strings.HasPrefix(id.Name, "Err") {
							if _, ok := sentinels[pkg+"."+id.Name]; !ok {
								t.Errorf("%s.%s (%s) has no exit code in this test: give it a store.Kind and list it", pkg, id.Name, name)
							}
						}
					}
				}
			}
		}
	}
}

func TestClassifySentinels(t *testing.T) {
	for name, c := range sentinels {
		for _, err := range []error{c.err, fmt.Errorf("context: %w", c.err)} {
			code, hint := classify(err)
			if code != c.code || hint == unclassifiedHint {
				t.Errorf("%s: classify(%v) = %d %q, want %d", name, err, code, hint, c.code)
			}
		}
	}
}

func TestClassifyKinds(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		code int
		hint string
	}{
		{"not found", errNotFound, ExitNotFound, ""},
		{"usage", usageErr(errors.New("bad flag"), "try this"), ExitUsage, "try this"},
		{"interrupted", context.Canceled, ExitInterrupted, ""},
		{"a store's own failure", storeErr(&fs.PathError{Op: "open", Path: "x", Err: syscall.EIO}), ExitStore, ""},
		{"permission", storeErr(&fs.PathError{Op: "open", Path: "x", Err: fs.ErrPermission}), ExitStore, "check the permissions of the store and its folder"},
		{"busy", fmt.Errorf("%w: held", store.ErrBusy), ExitStore, "raise busy_timeout if this store is under heavy load"},
		{"output", &store.Error{Kind: store.KindOutput, Err: syscall.EPIPE}, ExitStore, ""},
		{"output, wrapped", fmt.Errorf("writing output: %w", &store.Error{Kind: store.KindOutput, Err: syscall.ENOSPC}), ExitStore, ""},
		{"disk full", storeErr(fmt.Errorf("/x/s.db: %w", syscall.ENOSPC)), ExitStore, "free space on the filesystem that holds the store: every write needs a little room for its journal, deletes too (a full store can be moved or removed whole)"},
		{"unsafe", store.WithKind(store.KindPolicy, fmt.Errorf("%w: /x is writable by every user", hooks.ErrUnsafe)), ExitPolicy, "keep stores with hooks in a folder of your own that only you can write (chmod go-w it), not in a shared one such as /tmp"},
		// The kind given where an error is made wins over a later guess.
		{"kind kept", storeErr(fmt.Errorf("x: %w", store.ErrInvalidKey)), ExitUsage, ""},
	} {
		if code, hint := classify(c.err); code != c.code || hint != c.hint {
			t.Errorf("%s: classify = %d %q, want %d %q", c.name, code, hint, c.code, c.hint)
		}
	}
}

// An error without a kind is a bug in livedict: it must not pass for an
// ordinary store error.
func TestClassifyUnknownKindIsReported(t *testing.T) {
	for _, err := range []error{errors.New("made without a kind"), fmt.Errorf("x: %w", syscall.EIO)} {
		if code, hint := classify(err); code != ExitStore || hint != unclassifiedHint {
			t.Errorf("classify(%v) = %d %q, want %d with the bug hint", err, code, hint, ExitStore)
		}
	}
	// Every kind has an exit code.
	for k := store.KindUnknown + 1; k <= store.KindInterrupted; k++ {
		if _, ok := exitCodes[k]; !ok {
			t.Errorf("kind %v has no exit code", k)
		}
	}
}

// A failed stdout write is an output error (exit 3) through any command,
// and its message says so.
func TestClassifyFailedStdoutWrite(t *testing.T) {
	w := &checkedWriter{w: failingWriter{}}
	_, err := w.Write([]byte("x"))
	if store.KindOf(err) != store.KindOutput {
		t.Fatalf("kind of a failed write: %v", store.KindOf(err))
	}
	if code, hint := classify(err); code != ExitStore || hint != "" {
		t.Fatalf("classify = %d %q", code, hint)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, syscall.EPIPE }
