package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/livedict/livedict/pkg/sandbox"
)

// childrenCPU is the user+system CPU of every reaped child so far.
func childrenCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfCPU is this process's own user+system CPU so far: what starting
// the helper costs the starter (a fork of a big process is paid there).
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSandboxCPU is the CPU one hook run of /bin/true costs, spawner,
// helper and hook together (RUSAGE_CHILDREN, counted once the spawner is
// reaped), against a bare fork+exec of /bin/true: bare, livedict (livedict
// re-executed as the helper, every package's init, as the hook's init),
// helper (the livedict-sandbox built beside it, as the hook's init) and
// direct (the spawner starts the hook itself, see pkg/sandbox's
// startDirect). It reports cpu-ms per run and, for the sandboxed ones,
// above-bare-ms; wall time (ns/op) is not the figure, the machine is
// shared. Target: ≤ 3 ms above bare.
// starter-cpu-ms is what each run costs this process (the fork, the
// pipes, the supervision): for a big process like the daemon, a fork for
// a new user namespace cost more than the helper (see the spawner in
// pkg/sandbox).
//
//	go test -run '^$' -bench SandboxCPU -benchtime 200x .
func BenchmarkSandboxCPU(b *testing.B) {
	bin, err := livedictPath()
	if err != nil {
		b.Fatal(err)
	}
	work := b.TempDir()
	// livedict as the README builds it, not this test binary: that one
	// links the testing packages and, built with cgo, starts slower.
	ld := filepath.Join(work, "livedict")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", ld, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	bare := -1.0
	perRun := func(b *testing.B, run func()) float64 {
		run() // warm the page cache
		sandbox.CloseSpawners()
		c0, s0 := childrenCPU(b), selfCPU(b)
		for b.Loop() {
			run()
		}
		// The spawner and what it reaped count once it is reaped itself.
		sandbox.CloseSpawners()
		ms := float64(childrenCPU(b)-c0) / float64(time.Millisecond) / float64(b.N)
		self := float64(selfCPU(b)-s0) / float64(time.Millisecond) / float64(b.N)
		b.ReportMetric(ms, "cpu-ms")
		b.ReportMetric(self, "starter-cpu-ms")
		return ms
	}
	b.Run("bare", func(b *testing.B) {
		bare = perRun(b, func() {
			if err := exec.Command("/bin/true").Run(); err != nil {
				b.Fatal(err)
			}
		})
	})
	helper := filepath.Join(filepath.Dir(bin), sandbox.HelperName)
	for _, h := range []struct {
		name, path string
		helperInit bool
	}{
		{"livedict", ld, true},
		{"helper", helper, true},
		{"direct", helper, false},
	} {
		b.Run(h.name, func(b *testing.B) {
			if h.helperInit {
				// Every run through the helper as the hook's init, as
				// before the spawner started hooks itself.
				b.Setenv("LIVEDICT_SANDBOX_NO_DIRECT", "1")
			}
			ms := perRun(b, func() {
				res, err := sandbox.Run(context.Background(), sandbox.Spec{Argv: []string{"/bin/true"}, WorkDir: work, Helper: h.path})
				if err != nil || res.ExitCode != 0 {
					b.Fatalf("%v %+v", err, res)
				}
			})
			if bare >= 0 {
				b.ReportMetric(ms-bare, "above-bare-ms")
			}
		})
	}
}
