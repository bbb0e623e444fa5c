package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEncryptRekeyKilled kills 'bucket rekey' with SIGKILL at varying
// points and checks it is all or nothing: every value stays readable with
// this host's identity, and host B (added to recipients_file for the
// rekey) reads either every value or none.
func TestEncryptRekeyKilled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *procEnv) {
		const n = 3000
		e.mustRun("bucket", "policy", "sec", "--encrypt")
		var lines strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&lines, `{"bucket":"sec","key":"k%05d","value":"secret-%05d"}`+"\n", i, i)
		}
		if _, stderr, code := e.runInput([]byte(lines.String()), "import", "-b", "sec", "-"); code != 0 {
			t.Fatalf("import: exit %d: %s", code, stderr)
		}
		bID := filepath.Join(e.dir, "b", "identity.txt")
		e.mustRun("identity")
		bPub := strings.TrimSpace(mustRunCmd(t, envCommand(e, "LIVEDICT_IDENTITY_FILE="+bID, "identity")))
		recs := filepath.Join(e.dir, "recipients.txt")
		if err := os.WriteFile(recs, []byte(bPub+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		committed := 0
		for round, delay := range []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 60 * time.Millisecond, 150 * time.Millisecond} {
			c := envCommand(e, "LIVEDICT_RECIPIENTS_FILE="+recs, "bucket", "rekey", "sec")
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(delay)
			c.Process.Signal(syscall.SIGKILL)
			c.Wait() // killed, or done before the kill: both are fine
			// This host reads every value, whichever key won.
			out := e.mustRun("export", "-b", "sec", "--decrypt")
			if got := strings.Count(out, "\n"); got != n {
				t.Fatalf("round %d: %d values readable, want %d", round, got, n)
			}
			// Host B reads all or none.
			bOut, _, code := runCmd(t, envCommand(e, "LIVEDICT_IDENTITY_FILE="+bID, "export", "-b", "sec", "--decrypt"))
			switch {
			case code == 0 && strings.Count(bOut, "\n") == n:
				committed++
			case code == 3 && bOut == "":
			default:
				t.Fatalf("round %d: host B: exit %d, %d lines: a partial rekey", round, code, strings.Count(bOut, "\n"))
			}
			if code == 0 { // reset: A alone again
				mustRunCmd(t, e.command("bucket", "rekey", "sec"))
			}
		}
		t.Logf("%d of 4 rounds' rekeys committed before the kill", committed)
	})
}

// envCommand is e.command with one more environment variable.
func envCommand(e *procEnv, kv string, args ...string) *exec.Cmd {
	c := e.command(args...)
	c.Env = append(slices.Clone(c.Env), kv)
	return c
}

// TestEncryptForeignIdentity: an identity file planted by another local
// user (theirs, 0644, or theirs 0600 in our folder) is never used, and no
// value is decrypted with it; our own 0644 identity is refused too.
func TestEncryptForeignIdentity(t *testing.T) {
	e := newProcEnv(t, "sqlite").withOther()
	e.mustRun("bucket", "policy", "sec", "--encrypt")
	e.mustRun("-b", "sec", "set", "k", "secret")
	idPath := filepath.Join(e.dir, "home", ".config", "livedict", "identity.txt")
	for _, mode := range []os.FileMode{0o644, 0o600} {
		if err := os.Chmod(idPath, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(idPath, e.other.uid, e.other.gid); err != nil {
			t.Fatal(err)
		}
		out, stderr, code := e.run("-b", "sec", "get", "k")
		if code != 3 || out != "" || !strings.Contains(stderr, "owned by uid") {
			t.Fatalf("identity of uid %d, mode %o: exit %d, stdout %q, stderr %q", e.other.uid, mode, code, out, stderr)
		}
	}
	os.Chown(idPath, os.Getuid(), os.Getgid())
	os.Chmod(idPath, 0o644)
	if _, stderr, code := e.run("-b", "sec", "get", "k"); code != 3 || !strings.Contains(stderr, "readable by others") {
		t.Fatalf("our 0644 identity: exit %d, %q", code, stderr)
	}
	os.Chmod(idPath, 0o600)
	if out := e.mustRun("-b", "sec", "get", "k"); out != "secret" {
		t.Fatalf("get = %q", out)
	}
}
