// Package sandbox owns running one hook command safely: a clean environment,
// pipes for stdin/stdout/stderr with a capped output tail, no inherited
// descriptors, its own process group killed on timeout and on exit, resource
// limits and, where the kernel allows, no_new_privs, Landlock, a seccomp
// deny-list and user, PID and network namespaces.
//
// The restrictions that must be applied inside the new process before the
// hook starts (rlimits, no_new_privs, Landlock, seccomp, closing stray
// descriptors) are applied by livedict's own binary re-executed in a hidden
// helper mode. Every program that calls Run must therefore call
// MaybeRunChild first thing in main (and test binaries in TestMain): in a
// normal process it returns at once, in the helper it never returns.
package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Defaults used when a Spec or Limits field is zero.
const (
	// DefaultTimeout is the hook timeout from SPEC.md.
	DefaultTimeout = 5 * time.Second
	// DefaultGrace is how long a hook has between SIGTERM and SIGKILL.
	DefaultGrace = time.Second
	// DefaultOutputCap is how much of a hook's output (its tail) is kept.
	DefaultOutputCap = 64 << 10
	// DefaultDataBytes caps RLIMIT_DATA (heap and other private writable
	// memory). RLIMIT_AS is deliberately not used: it breaks Go programs.
	DefaultDataBytes = 1 << 30
	// DefaultFileBytes caps RLIMIT_FSIZE, the largest file a hook may write.
	DefaultFileBytes = 1 << 30
	// DefaultOpenFiles caps RLIMIT_NOFILE.
	DefaultOpenFiles = 256
	// DefaultProcesses caps RLIMIT_NPROC where it can work (see Limits).
	DefaultProcesses = 256
)

// HelperName is the file name of the separate sandbox helper binary
// (pkg/sandbox/livedict-sandbox), looked for beside the livedict
// executable. It starts in a fraction of livedict's time because it links
// none of livedict's heavy packages; without it livedict re-executes
// itself, which works the same, only slower.
const HelperName = "livedict-sandbox"

// hookPath is the fixed PATH a hook gets: it must not depend on the PATH of
// whoever happened to start livedict.
const hookPath = "/usr/local/bin:/usr/bin:/bin"

// Layer names, in the order Run and Probe report them.
const (
	layerEnvironment  = "environment"
	layerDescriptors  = "descriptors"
	layerProcessGroup = "process-group"
	layerRlimits      = "rlimits"
	layerProcessLimit = "process-limit"
	layerNoNewPrivs   = "no_new_privs"
	layerLandlock     = "landlock"
	layerSeccomp      = "seccomp"
	layerUserNS       = "user-namespace"
	layerPIDNS        = "pid-namespace"
	layerNetNS        = "network-namespace"
	layerNetwork      = "network"
)

// layerOrder lists every layer; a function rather than a package-level
// slice so that importing the package costs nothing at start-up.
func layerOrder() []string {
	return []string{
		layerEnvironment, layerDescriptors, layerProcessGroup, layerRlimits,
		layerProcessLimit, layerNoNewPrivs, layerLandlock, layerSeccomp,
		layerUserNS, layerPIDNS, layerNetNS, layerNetwork,
	}
}

var (
	// ErrNoNetwork is returned when Spec.NoNetwork is set but no network
	// namespace could be created: the hook is not run rather than run with
	// network access.
	ErrNoNetwork = errors.New("--no-network needs a network namespace, which this kernel refused")
	// ErrUnsupported is returned by Run on systems without the sandbox.
	ErrUnsupported = errors.New("hook sandbox is only implemented on Linux")
	// ErrHelper is returned when the re-executed helper did not set up the
	// sandbox, typically because main does not call MaybeRunChild.
	ErrHelper = errors.New("sandbox helper did not start (does main call sandbox.MaybeRunChild?)")
)

// Spec describes one hook run.
type Spec struct {
	// Argv is the hook command and its arguments. Argv[0] is looked up in
	// the hook's PATH unless it contains a slash; a relative path is taken
	// from WorkDir.
	Argv []string
	// Env holds extra variables (the --env names, already resolved). They
	// override PATH, LANG and TZ but not HOME and TMPDIR, which must stay
	// the private work dir: it is the only place a hook may write.
	Env map[string]string
	// Stdin is written to the hook's stdin, which is then closed.
	Stdin []byte
	// Timeout is how long the hook may run (DefaultTimeout if zero).
	Timeout time.Duration
	// Grace is the time between SIGTERM and SIGKILL (DefaultGrace if zero).
	Grace time.Duration
	// OutputCap is how many bytes of combined stdout+stderr are kept, the
	// last ones (DefaultOutputCap if zero).
	OutputCap int
	// WorkDir is the hook's private, writable directory and its working
	// directory, HOME and TMPDIR. It is created (0700) if missing.
	WorkDir string
	// WriteDirs are existing directories the hook may also write to.
	WriteDirs []string
	// NoNetwork runs the hook in a new network namespace. Run fails with
	// ErrNoNetwork rather than run the hook without one.
	NoNetwork bool
	// Limits overrides the default resource limits.
	Limits Limits
	// Helper is the livedict binary to re-execute as the sandbox helper;
	// empty means os.Executable(). Its main must call MaybeRunChild.
	Helper string

	// noNamespaces makes starting with namespaces fail as on a kernel that
	// refuses them, so tests can check the fallback and fail-closed paths.
	noNamespaces bool
	// helperInit makes the spawner start the helper as the hook's init,
	// as where it cannot start the hook itself (see startDirect).
	helperInit bool
}

// Limits sets the hook's resource limits. Zero means the default; a
// negative value leaves that limit as livedict inherited it.
type Limits struct {
	// CPU is RLIMIT_CPU, rounded up to whole seconds; the default is the
	// timeout plus one second, so a hook that spins is killed even if the
	// timer were missed. The hard limit is one second more (SIGXCPU, then
	// SIGKILL).
	CPU time.Duration
	// DataBytes is RLIMIT_DATA.
	DataBytes int64
	// FileBytes is RLIMIT_FSIZE.
	FileBytes int64
	// OpenFiles is RLIMIT_NOFILE.
	OpenFiles int64
	// Processes is RLIMIT_NPROC. The kernel counts it per real uid over the
	// whole machine and ignores it for uid 0, so it is only set inside a
	// user namespace and for a non-root user, where it counts just the
	// hook's own processes.
	Processes int64
}

// Result is what happened to one hook run.
type Result struct {
	// ExitCode is the hook's exit status, or -1 if a signal killed it.
	ExitCode int
	// Signal names the signal that killed the hook ("SIGKILL"), if any.
	Signal string
	// TimedOut reports that the hook was still running at its timeout.
	TimedOut bool
	// Duration is the time from start to the hook's exit.
	Duration time.Duration
	// Output is the tail of the combined stdout and stderr, at most
	// OutputCap bytes.
	Output []byte
	// Truncated reports that earlier output was cut to fit OutputCap.
	Truncated bool
	// CutBytes is how many bytes were cut from the front of Output.
	CutBytes int64
	// Layers says which protections this run had, and why any was off.
	Layers []Layer
}

// Layer is one protection of the sandbox: whether it is on, and why it is
// off (or what it does when on).
type Layer struct {
	Name string `json:"name"`
	On   bool   `json:"on"`
	Why  string `json:"why"`
}

// String formats a layer as "name: on (why)", as `hook sandbox` prints it.
func (l Layer) String() string {
	state := "off"
	if l.On {
		state = "on"
	}
	if l.Why == "" {
		return l.Name + ": " + state
	}
	return l.Name + ": " + state + " (" + l.Why + ")"
}

// normalize fills defaults and checks the spec; the returned copy has
// absolute directories. probe skips the checks on Argv.
func (s Spec) normalize(probe bool) (Spec, error) {
	if !probe && (len(s.Argv) == 0 || s.Argv[0] == "") {
		return s, errors.New("sandbox: empty hook command")
	}
	for _, a := range s.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return s, errors.New("sandbox: hook argument contains a NUL byte")
		}
	}
	for k, v := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.IndexByte(v, 0) >= 0 {
			return s, fmt.Errorf("sandbox: invalid environment variable %q", k)
		}
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	if s.Grace <= 0 {
		s.Grace = DefaultGrace
	}
	if s.OutputCap <= 0 {
		s.OutputCap = DefaultOutputCap
	}
	if s.WorkDir == "" {
		return s, errors.New("sandbox: no work dir")
	}
	wd, err := filepath.Abs(s.WorkDir)
	if err != nil {
		return s, fmt.Errorf("sandbox: work dir: %w", err)
	}
	if err := os.MkdirAll(wd, 0o700); err != nil {
		return s, fmt.Errorf("sandbox: work dir: %w", err)
	}
	s.WorkDir = wd
	dirs := make([]string, 0, len(s.WriteDirs))
	for _, d := range s.WriteDirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return s, fmt.Errorf("sandbox: --write %s: %w", d, err)
		}
		// Checked here, not just in the helper, so that a typo is reported
		// as a usage problem before anything runs.
		fi, err := os.Stat(abs)
		if err != nil {
			return s, fmt.Errorf("sandbox: --write %w", err)
		}
		if !fi.IsDir() {
			return s, fmt.Errorf("sandbox: --write %s: not a directory", d)
		}
		dirs = append(dirs, abs)
	}
	s.WriteDirs = dirs
	return s, nil
}

// environment builds the hook's complete environment: nothing is inherited
// except LANG and TZ, so secrets in livedict's own environment never reach
// a hook unless named with --env.
func (s Spec) environment() []string {
	env := map[string]string{"PATH": hookPath, "LANG": "C.UTF-8"}
	if v := os.Getenv("LANG"); v != "" {
		env["LANG"] = v
	}
	if v, ok := os.LookupEnv("TZ"); ok {
		env["TZ"] = v
	} else {
		env["TZ"] = defaultTZ() // fixed, as SPEC says, whatever the caller has
	}
	for k, v := range s.Env {
		env[k] = v
	}
	env["HOME"] = s.WorkDir
	env["TMPDIR"] = s.WorkDir
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// defaultTZ is a hook's TZ when livedict's caller has none: the system's
// zone, which is what the caller's own programs use then (glibc, musl and
// Go read ":/etc/localtime" as that file), or UTC when there is none.
func defaultTZ() string {
	if _, err := os.Stat("/etc/localtime"); err == nil {
		return ":/etc/localtime"
	}
	return "UTC"
}

// lookPath resolves the hook's command the way a shell would with the
// hook's own PATH (not livedict's), so what runs does not depend on the
// caller's PATH.
func lookPath(name, pathList, dir string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := isExecutable(p); err != nil {
			return "", fmt.Errorf("sandbox: hook command %s: %w", name, err)
		}
		return p, nil
	}
	for _, d := range filepath.SplitList(pathList) {
		// A relative PATH entry would resolve against the work dir, which
		// the hook itself can write: never look there.
		if !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, name)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("sandbox: hook command %s: not found in PATH %s", name, pathList)
}

func isExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// tailBuffer keeps the last limit bytes written to it. Write never fails
// and never blocks, so the goroutine draining the hook's pipe keeps reading
// (and discarding) past the cap and the hook is never stalled on a full pipe.
type tailBuffer struct {
	limit int
	buf   []byte
	total int64
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.total += int64(len(p))
	if len(p) >= t.limit {
		t.buf = append(t.buf[:0], p[len(p)-t.limit:]...)
		return len(p), nil
	}
	t.buf = append(t.buf, p...)
	// Trimming only when twice the limit is reached keeps the copying
	// amortised constant per byte.
	if len(t.buf) >= 2*t.limit {
		n := copy(t.buf, t.buf[len(t.buf)-t.limit:])
		t.buf = t.buf[:n]
	}
	return len(p), nil
}

// tail returns the kept bytes and how many were cut before them.
func (t *tailBuffer) tail() ([]byte, int64) {
	b := t.buf
	if len(b) > t.limit {
		b = b[len(b)-t.limit:]
	}
	out := append([]byte(nil), b...)
	return out, t.total - int64(len(out))
}

// mergeLayers returns one entry per layer in the fixed order, taking each
// from the first list that has it.
func mergeLayers(lists ...[]Layer) []Layer {
	out := make([]Layer, 0, len(layerOrder()))
	for _, name := range layerOrder() {
		found := false
		for _, list := range lists {
			for _, l := range list {
				if l.Name == name {
					out = append(out, l)
					found = true
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			out = append(out, Layer{Name: name, Why: "not applied: the helper did not report it"})
		}
	}
	return out
}

func on(name, why string) Layer  { return Layer{Name: name, On: true, Why: why} }
func off(name, why string) Layer { return Layer{Name: name, Why: why} }

// byteSize formats a limit for the layer descriptions.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
