package hooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/livedict/livedict/pkg/store"
	"golang.org/x/sys/unix"
)

// On a store that several hosts share, whoever can write to the server can
// write a hook definition, and every host's daemon would run it. So there
// each definition carries an HMAC-SHA256 of itself under a key that lives
// on the hosts (hook_key_file), and a deliverer runs only what its own key
// verifies. Hosts meant to run each other's hooks share the key file.

// HookKeySize is the length of a hook key in bytes.
const HookKeySize = 32

// ErrHookKey is wrapped by LoadHookKey's refusals of a key file (exit 4).
var ErrHookKey = store.NewError(store.KindPolicy, "hook key refused")

// LoadHookKey reads the hook key at path, creating it (64 hex digits, mode
// 0600, in a folder of ours made 0700) when it is missing. A key file that
// is a symlink, not ours, or readable or writable by others is refused: a
// key someone else can read lets them sign hooks that run as us. Many
// processes creating it at once end up with the same key.
func LoadHookKey(path string) ([]byte, error) {
	if path == "" {
		// No home to put the default in: "" would be a file in ".",
		// the working directory, wherever the command runs.
		return nil, store.WithKind(store.KindStore, errors.New("hook key: hook_key_file is empty: there is no home directory for its default (set HOME or LIVEDICT_HOOK_KEY_FILE)"))
	}
	key, err := ReadHookKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, keyErr(err)
	}
	if err := store.MkdirTrusted(dir); err != nil {
		return nil, keyErr(err)
	}
	key = make([]byte, HookKeySize)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, err
	}
	// Written under a private name, then linked into place: link never
	// replaces a file, so the first creator's key wins and nobody reads
	// a half-written one.
	tmp, err := os.CreateTemp(dir, ".hook.key.*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(key) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return ReadHookKey(path)
}

// keyErr is the error of a key file or folder that could not be opened or
// made: a refusal by the trust rule is ErrHookKey (exit 4); anything else
// (no descriptor left, a full or read-only disk, a file where a folder
// goes) is the machine's, a store error (exit 3).
func keyErr(err error) error {
	if errors.Is(err, store.ErrUntrusted) {
		return fmt.Errorf("%w: %v", ErrHookKey, err)
	}
	return store.WithKind(store.KindStore, fmt.Errorf("hook key: %w", err))
}

// ReadHookKey reads the hook key at path as LoadHookKey does, but never
// creates it: a missing key is fs.ErrNotExist.
func ReadHookKey(path string) ([]byte, error) {
	fd, err := store.OpenTrusted(path, unix.O_RDONLY|unix.O_NONBLOCK)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, keyErr(err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is mode %04o: others may read it (chmod 600 %s)", ErrHookKey, path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != HookKeySize {
		return nil, fmt.Errorf("%w: %s does not hold %d hex digits", ErrHookKey, path, 2*HookKeySize)
	}
	return key, nil
}

// signature is the hex HMAC-SHA256 of h's definition (every field but Sig)
// under key.
func signature(h Hook, key []byte) string {
	h.Sig = ""
	b, _ := json.Marshal(h) // a Hook always marshals
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// sign sets h.Sig under key; a nil key leaves h unsigned.
func sign(h *Hook, key []byte) {
	h.Sig = ""
	if key != nil {
		h.Sig = signature(*h, key)
	}
}

// Verified reports whether key signed h as it is now.
func (h Hook) Verified(key []byte) bool {
	if key == nil || h.Sig == "" {
		return false
	}
	want := signature(h, key)
	return hmac.Equal([]byte(want), []byte(h.Sig))
}
