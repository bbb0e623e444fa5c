package sandbox

import (
	"context"
	"testing"
)

// BenchmarkRun measures one sandboxed run of /bin/true, start to reaped:
// the cost every hook delivery pays, which bounds how many hooks per second
// a daemon can start.
func BenchmarkRun(b *testing.B) {
	work := b.TempDir()
	for _, net := range []bool{false, true} {
		name := "default"
		if net {
			name = "no-network"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				res, err := Run(context.Background(), Spec{Argv: []string{"/bin/true"}, WorkDir: work, NoNetwork: net})
				if err != nil || res.ExitCode != 0 {
					b.Fatalf("%v %+v", err, res)
				}
			}
		})
	}
}
