package seal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"filippo.io/age"
	"golang.org/x/sys/unix"

	"github.com/livedict/livedict/pkg/readfile"
	"github.com/livedict/livedict/pkg/store"
)

// maxKeyFile caps what is read of an identity or recipients file.
const maxKeyFile = 1 << 20

// FileKeys loads this host's identity from IdentityFile and extra
// recipients from RecipientsFile. Opening needs the identity to exist;
// wrapping a new data key makes it on first use.
type FileKeys struct {
	IdentityFile   string
	RecipientsFile string

	mu   sync.Mutex
	ids  []age.Identity
	recs []age.Recipient
}

// Identities returns the identities of IdentityFile; a missing file is an
// error (*IdentityError, ErrNoIdentity): a new identity would open
// nothing.
func (k *FileKeys) Identities() ([]age.Identity, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.load(false)
}

func (k *FileKeys) load(create bool) ([]age.Identity, error) {
	if k.ids != nil {
		return k.ids, nil
	}
	ids, err := LoadIdentity(k.IdentityFile, create)
	if err != nil {
		return nil, err
	}
	k.ids = ids
	return ids, nil
}

// Recipients returns this host's recipient, making the identity on first
// use, and those of RecipientsFile.
func (k *FileKeys) Recipients() ([]age.Recipient, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.recs != nil {
		return k.recs, nil
	}
	ids, err := k.load(true)
	if err != nil {
		return nil, err
	}
	var recs []age.Recipient
	for _, id := range ids {
		if x, ok := id.(*age.X25519Identity); ok {
			recs = append(recs, x.Recipient())
		}
	}
	if k.RecipientsFile != "" {
		more, err := LoadRecipients(k.RecipientsFile)
		if err != nil {
			return nil, err
		}
		recs = append(recs, more...)
	}
	if len(recs) == 0 {
		return nil, &IdentityError{Path: k.IdentityFile, Err: errors.New("holds no X25519 identity")}
	}
	k.recs = recs
	return recs, nil
}

// PublicKey returns the public key of the identity at path, creating it
// on first use.
func PublicKey(path string) (string, error) {
	ids, err := LoadIdentity(path, true)
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		if x, ok := id.(*age.X25519Identity); ok {
			return x.Recipient().String(), nil
		}
	}
	return "", fmt.Errorf("%w: %s holds no X25519 identity", ErrNoIdentity, path)
}

// ErrReadable is an identity file that others can read: chmod 600 is
// what fixes it (a symlink or another user's file is refused too, but
// store.ErrUntrusted alone).
var ErrReadable = errors.New("identity file readable by others")

type readableError struct{ store.TrustError }

func (e *readableError) Unwrap() []error { return []error{store.ErrUntrusted, ErrReadable} }

// ErrPassphrase is an identity file encrypted with a passphrase (age -p).
var ErrPassphrase = errors.New("is encrypted with a passphrase, which livedict does not support (it never prompts)")

// IdentityError is a missing or refused identity file, naming it.
type IdentityError struct {
	Path string
	Err  error
}

func (e *IdentityError) Error() string { return fmt.Sprintf("age identity %s: %v", e.Path, e.Err) }

// Unwrap returns ErrNoIdentity and the cause.
func (e *IdentityError) Unwrap() []error { return []error{ErrNoIdentity, e.Err} }

// LoadIdentity reads the age identity file at path. When it does not
// exist and create is set, a new X25519 identity is made there, mode
// 0600, in a folder made 0700: written to a temporary file and linked
// into place, so processes racing on first use all end up with the one
// that was linked first. The file must belong to us and be readable by
// nobody else.
func LoadIdentity(path string, create bool) ([]age.Identity, error) {
	if path == "" {
		return nil, &IdentityError{Path: "(unset)", Err: errors.New("identity_file is empty")}
	}
	data, err := readPrivate(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err = generate(path); err == nil {
			data, err = readPrivate(path)
		}
	}
	if err != nil {
		return nil, &IdentityError{Path: path, Err: err}
	}
	if encryptedIdentity(data) {
		// age -p output: livedict runs unattended (hooks, the daemon)
		// and never prompts, so it is refused by name rather than as
		// "unknown identity type".
		return nil, &IdentityError{Path: path, Err: ErrPassphrase}
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, &IdentityError{Path: path, Err: err}
	}
	return ids, nil
}

// encryptedIdentity reports whether data is an age-encrypted file (binary
// or armored), as 'age -p' makes of a passphrase-protected identity.
func encryptedIdentity(data []byte) bool {
	data = bytes.TrimLeft(data, " \t\r\n")
	return bytes.HasPrefix(data, []byte("age-encryption.org/")) ||
		bytes.HasPrefix(data, []byte("-----BEGIN AGE ENCRYPTED FILE-----"))
}

// readPrivate reads a file that must be ours and private.
func readPrivate(path string) ([]byte, error) {
	// O_NONBLOCK: a FIFO at path would block open until someone writes
	// to it; opened at once, it is refused as not a regular file.
	fd, err := store.OpenTrusted(path, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: unix.EISDIR}
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, &readableError{store.TrustError{Path: path, Why: "is readable by others (chmod 600 it, and make a new identity if others may have read it)", Mode: uint32(st.Mode().Perm())}}
	}
	return io.ReadAll(io.LimitReader(f, maxKeyFile))
}

func generate(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	if err := store.MkdirTrusted(dir); err != nil {
		return err
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".identity-*.tmp") // 0600, O_EXCL
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = fmt.Fprintf(f, "# livedict age identity, made %s\n# public key: %s\n%s\n",
		"on first use", id.Recipient(), id)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// LoadRecipients reads a recipients file: one age public key a line,
// blank lines and # comments ignored.
func LoadRecipients(path string) ([]age.Recipient, error) {
	data, err := readfile.Owned(path, maxKeyFile)
	if errors.Is(err, readfile.ErrNotOwned) {
		// Whoever wrote a key into it could read every value rekeyed
		// after: a refusal of the trust rule.
		return nil, fmt.Errorf("%w: recipients_file %s: %v", store.ErrUntrusted, path, err)
	}
	if errors.Is(err, readfile.ErrTooLarge) {
		return nil, store.WithKind(store.KindInvalid, fmt.Errorf("recipients_file %s: %w", path, err))
	}
	if err != nil {
		return nil, store.WithKind(store.KindStore, fmt.Errorf("recipients_file: %w", err))
	}
	recs, err := ParseRecipients(data)
	if err != nil {
		return nil, store.WithKind(store.KindInvalid, fmt.Errorf("recipients_file %s: %w", path, err))
	}
	return recs, nil
}

// ParseRecipients parses recipients text: one age X25519 public key
// (age1...) a line; blank lines and lines starting with # are skipped.
func ParseRecipients(data []byte) ([]age.Recipient, error) {
	var recs []age.Recipient
	// A byte-order mark, as some Windows editors write, is not part of
	// the first line.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxKeyFile)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(strings.ToLower(line), "age1") {
			// Said without the line: an identity pasted by mistake
			// (AGE-SECRET-KEY-1...) must not reach stderr or a log,
			// and age's own words for an SSH key ("mixed case") send
			// users looking for a typo.
			return nil, fmt.Errorf("line %d: not an age public key (age1...; 'livedict identity' prints one)", n)
		}
		r, err := age.ParseX25519Recipient(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return recs, nil
}
