package cmd

import (
	"bytes"
	"testing"
	"time"
)

// TestProgressSummary: the summary that replaces a drawn bar counts keys
// with the noun agreeing, and nothing is printed when no bar was drawn.
func TestProgressSummary(t *testing.T) {
	for n, want := range map[int]string{0: "exported 0 keys", 1: "exported 1 key", 3: "exported 3 keys"} {
		var buf bytes.Buffer
		p := &progressBar{w: &buf, last: time.Now()}
		p.done("exported", n)
		if got := buf.String(); got != "\r\033[K"+want+"\n" {
			t.Errorf("done(%d) = %q, want %q", n, got, want)
		}
	}
	var buf bytes.Buffer
	(&progressBar{w: &buf}).done("exported", 2)
	if buf.Len() != 0 {
		t.Errorf("a summary without a bar: %q", buf.String())
	}
}
