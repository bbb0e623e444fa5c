package cmd

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progressBar draws the progress of a long command (import, export) on a
// terminal's stderr, at most ten times a second. A nil *progressBar draws
// nothing, so callers need not check whether stderr is a terminal.
//
// It is hand-written on purpose: the maintained libraries that fit
// (schollz/progressbar, vbauerster/mpb) each add about 0.1 ms of package
// initialisation (a regexp compiled at init) to every livedict process,
// one-shot get and set included, since Go runs the init of every linked
// package whatever the command. See the README.
type progressBar struct {
	w     io.Writer
	verb  string // what is going on: "reading", "exporting"
	unit  string // what n counts: "lines", "keys"
	total int64  // of what done counts; <= 0 when unknown
	last  time.Time
}

// newProgress returns a bar when stderr is a terminal and output is for
// people (not --json), else nil.
func (a *App) newProgress(verb, unit string, total int64) *progressBar {
	if !a.IO.ErrTTY || a.JSON {
		return nil
	}
	return &progressBar{w: a.IO.Err, verb: verb, unit: unit, total: total}
}

// update shows done of total (bytes read, keys written) and n units.
func (p *progressBar) update(done, n int64) {
	if p == nil || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	if p.total <= 0 {
		fmt.Fprintf(p.w, "\r%s… %d %s", p.verb, n, p.unit)
		return
	}
	const width = 30
	filled := int(float64(width) * float64(min(done, p.total)) / float64(p.total))
	fmt.Fprintf(p.w, "\r[%s%s] %3d%% %d %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), 100*min(done, p.total)/p.total, n, p.unit)
}

// done replaces a drawn bar with a summary ("imported 3 keys").
func (p *progressBar) done(verb string, keys int) {
	if p == nil || p.last.IsZero() {
		return
	}
	fmt.Fprintf(p.w, "\r\033[K%s %s\n", verb, plural(int64(keys), "key"))
	p.last = time.Time{}
}

// clear erases a bar that is still drawn.
func (p *progressBar) clear() {
	if p != nil && !p.last.IsZero() {
		fmt.Fprint(p.w, "\r\033[K")
		p.last = time.Time{}
	}
}
