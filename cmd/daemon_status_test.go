package cmd

import (
	"strings"
	"testing"
	"time"
)

// A daemon started "in the future" (the wall clock stepped back since)
// has been up for no time, never a negative one.
func TestDaemonUptimeNeverNegative(t *testing.T) {
	ds := daemonInfo{started: time.Now().Add(time.Hour).UnixMilli()}
	if got := ds.uptime(); strings.HasPrefix(got, "-") {
		t.Fatalf("uptime after the clock stepped back an hour: %q", got)
	}
	if got := (daemonInfo{started: time.Now().Add(-90 * time.Minute).UnixMilli()}).uptime(); got != "1h30m" {
		t.Fatalf("uptime of 90 minutes: %q", got)
	}
}
