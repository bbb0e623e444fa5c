package cmd

import (
	"os"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"github.com/muesli/termenv"
)

// useColor decides colour for terminal output: --color/LIVEDICT_COLOR, then
// NO_COLOR (https://no-color.org), then whether stdout is a terminal.
func (a *App) useColor() bool {
	switch a.Config.Color {
	case "always":
		return true
	case "never":
		return false
	}
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return a.IO.OutTTY
}

// table renders rows for a person. The renderer is told the colour profile
// rather than probing the terminal, which would cost time and could read
// from stdin.
func (a *App) table(headers []string, rows [][]string) string {
	r := lipgloss.NewRenderer(a.IO.Out)
	if a.useColor() {
		r.SetColorProfile(termenv.ANSI256)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	r.SetHasDarkBackground(true)
	header := r.NewStyle().Bold(true).Foreground(lipgloss.Color("12")).Padding(0, 1)
	cell := r.NewStyle().Padding(0, 1)
	return table.New().
		Border(lipgloss.RoundedBorder()).
		BorderStyle(r.NewStyle().Foreground(lipgloss.Color("8"))).
		Headers(headers...).
		Rows(rows...).
		StyleFunc(func(row, col int) lipgloss.Style {
			if row == table.HeaderRow {
				return header
			}
			return cell
		}).
		String()
}
