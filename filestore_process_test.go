package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A multi-key commit on a file store whose bucket folder the user made
// read-only (chmod a-w: root ignores the mode, so this runs as the second
// account). It used to fail after its commit point: exit 3, yet every
// later command, reads of other buckets too, failed replaying its journal,
// and once the folder was writable again the write its command had
// reported as failed landed. Now it is refused with nothing written, the
// store keeps working, and a record made read-only in a writable folder
// is replaced as a single set replaces it.
func TestFileStoreReadOnlyBucketFolder(t *testing.T) {
	e := newProcEnv(t, "sqlite").withOther()
	store := "file:" + filepath.Join(e.otherHome, "fs")
	run := func(args ...string) (string, string, int) {
		return runCmd(t, e.asOther(append([]string{"livedict", "--store", store}, args...)...))
	}
	mustRunCmd(t, e.asOther("livedict", "--store", store, "set", "a", "old"))
	bucket := filepath.Join(e.otherHome, "fs", "b", "main")
	if err := os.Chmod(bucket, 0o500); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := run("mset", "a", "new", "c", "new")
	if code != 3 || strings.Count(stderr, "error:") != 1 || !strings.Contains(stderr, "nothing was written") {
		t.Errorf("mset into a read-only folder: exit %d, %q; want 3, one error saying nothing was written", code, stderr)
	}
	if _, stderr, code := run("-b", "other", "set", "z", "1"); code != 0 {
		t.Errorf("set in another bucket after it: exit %d, %q", code, stderr)
	}
	if out, stderr, code := run("get", "a"); code != 0 || out != "old" {
		t.Errorf("get a after it: %q, exit %d, %q; want old", out, code, stderr)
	}
	if err := os.Chmod(bucket, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, _, code := run("get", "c"); code != 1 {
		t.Errorf("get c once the folder is writable: %q, exit %d; want exit 1 (the failed mset never lands)", out, code)
	}
	if out, _, _ := run("get", "a"); out != "old" {
		t.Errorf("get a once the folder is writable: %q, want old", out)
	}

	if err := os.Chmod(filepath.Join(bucket, "a"), 0o400); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := run("mset", "a", "new", "c", "new"); code != 0 {
		t.Errorf("mset over a read-only record: exit %d, %q; want 0, as set", code, stderr)
	}
	if out, _, _ := run("get", "a"); out != "new" {
		t.Errorf("get a: %q, want new", out)
	}
}
