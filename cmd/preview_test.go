package cmd

import (
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"
)

// TestPreview: list's value column is at most 40 terminal columns, never
// cuts an escape in two, and ends in "…" only when something was cut.
func TestPreview(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{strings.Repeat("a", 40), strings.Repeat("a", 40)},
		{strings.Repeat("a", 41), strings.Repeat("a", 39) + "…"},
		{strings.Repeat("a", 38) + "\x1b[31m", strings.Repeat("a", 38) + "…"},
		{"a\nb", `a\nb`},
		{strings.Repeat("漢", 30), strings.Repeat("漢", 19) + "…"},
		{"\xff", "(binary)"},
	} {
		got := preview([]byte(c.in))
		if got != c.want {
			t.Errorf("preview(%q) = %q, want %q", c.in, got, c.want)
		}
		if w := lipgloss.Width(got); w > 40 {
			t.Errorf("preview(%q) is %d columns wide", c.in, w)
		}
	}
}
