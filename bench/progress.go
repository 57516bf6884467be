package bench

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Progress reports images/s and the time left: a progress bar on a
// terminal, and plain periodic lines elsewhere (CI logs), since the bar
// library writes carriage-return frames regardless.
type Progress struct {
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

// NewProgress starts reporting on w; w may be nil (silent).
func NewProgress(w io.Writer, total int, desc string) *Progress {
	p := &Progress{w: w, desc: desc, total: total, start: time.Now(), every: 10 * time.Second, lastPct: -1}
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
func (p *Progress) Add(n int) {
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

func (p *Progress) line(now time.Time) {
	el := now.Sub(p.start).Seconds()
	rate := float64(p.done) / max(el, 1e-9)
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(p.total-p.done)/rate) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "%s: %d/%d images, %.1f img/s, %s left\n", p.desc, p.done, p.total, rate, eta)
}

// Finish ends the report.
func (p *Progress) Finish() {
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
