// Package progress reports long work: a progress bar on a terminal, and
// plain periodic lines elsewhere (CI logs, files), since the bar library
// writes carriage-return frames regardless. Runs and training use it alike.
package progress

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Reporter reports images/s and the time left of one piece of work.
type Reporter struct {
	w       io.Writer
	bar     *progressbar.ProgressBar
	desc    string
	total   int
	done    int
	start   time.Time
	last    time.Time
	every   time.Duration
	lastPct int
}

// New starts reporting on w; w may be nil (silent).
func New(w io.Writer, total int, desc string) *Reporter {
	p := &Reporter{w: w, desc: desc, total: total, start: time.Now(), every: 10 * time.Second, lastPct: -1}
	p.last = p.start
	if w == nil {
		return p
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) && os.Getenv("CI") == "" {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("img"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

// Add records n more images.
func (p *Reporter) Add(n int) {
	p.done += n
	if p.w == nil {
		return
	}
	if p.bar != nil {
		p.bar.Add(n)
		return
	}
	now := time.Now()
	pct := 100 * p.done / max(1, p.total)
	if now.Sub(p.last) >= p.every || pct/25 > p.lastPct/25 {
		p.line(now)
		p.last, p.lastPct = now, pct
	}
}

func (p *Reporter) line(now time.Time) {
	fmt.Fprintf(p.w, "%s: %d/%d images, %s\n", p.desc, p.done, p.total, p.rate(now))
}

// rate is the images/s so far and the time left at that rate.
func (p *Reporter) rate(now time.Time) string {
	el := now.Sub(p.start).Seconds()
	rate := float64(p.done) / max(el, 1e-9)
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(p.total-p.done)/rate) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("%.2f img/s, %s left", rate, eta)
}

// Describe changes the description: the bar's label, or the prefix of the
// next plain line.
func (p *Reporter) Describe(desc string) {
	p.desc = desc
	if p.bar != nil {
		p.bar.Describe(desc)
	}
}

// Println writes a line of its own (an epoch summary, say), with the rate
// so far, above the bar.
func (p *Reporter) Println(line string) {
	if p.w == nil {
		return
	}
	if p.bar != nil {
		p.bar.Clear()
	}
	fmt.Fprintf(p.w, "%s, %s\n", line, p.rate(time.Now()))
}

// Finish ends the report.
func (p *Reporter) Finish() {
	if p.w == nil {
		return
	}
	if p.bar != nil {
		p.bar.Finish()
		return
	}
	if p.lastPct < 100 {
		p.line(time.Now())
	}
}
