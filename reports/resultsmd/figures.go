package resultsmd

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"

	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/reports"
	"github.com/dapobench/dapobench/reports/figures"
	"github.com/dapobench/dapobench/results"
)

// job draws one figure. run records in skipped why nothing was drawn (a
// curve of one class only) and in note a caveat; an error is bad input.
type job struct {
	base    string // the figure's path without extension
	svg     bool   // whether an SVG was written beside the PNG
	draw    func(j *job) error
	skipped string
	note    string
}

func (j *job) run() error { return j.draw(j) }

// plan is a dataset's figures: the jobs to draw, in parallel, and how to
// write the Markdown around them afterwards, in order.
type plan struct {
	out    string
	jobs   []*job
	render []func(b *strings.Builder)
}

func (p *plan) add(j *job) *job {
	p.jobs = append(p.jobs, j)
	return j
}

func (p *plan) text(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	p.render = append(p.render, func(b *strings.Builder) { b.WriteString(s) })
}

// drawn counts the figures drawn.
func (p *plan) drawn() int {
	n := 0
	for _, j := range p.jobs {
		if j.skipped == "" {
			n++
		}
	}
	return n
}

func (p *plan) write(b *strings.Builder) {
	for _, r := range p.render {
		r(b)
	}
}

// image is the Markdown of a drawn figure: the embedded PNG and a link to
// the SVG; or, when nothing was drawn, why.
func (p *plan) image(j *job, alt string) string {
	if j.skipped != "" {
		return fmt.Sprintf("*%s: not drawn: %s.*", alt, j.skipped)
	}
	s := fmt.Sprintf("![%s](%s)", escapeAlt(alt), link(p.out, j.base+".png"))
	if j.svg {
		s += fmt.Sprintf(" [SVG](%s)", link(p.out, j.base+".svg"))
	}
	return s
}

// plotJob saves a gonum plot as PNG and SVG. A plot with nothing to draw
// (one class only) is skipped with the reason.
func plotJob(base string, size figures.Size, make func() (*plot.Plot, error)) *job {
	return &job{base: base, svg: true, draw: func(j *job) error {
		pl, err := make()
		var u *metrics.UndefinedError
		if errors.As(err, &u) {
			j.skipped = u.Reason
			return nil
		}
		if err != nil {
			return err
		}
		_, err = figures.SavePlot(pl, base, size)
		return err
	}}
}

// planFigures lays out a dataset's figures: bars per metric, defect-type
// bars, ROC and PR curves per category, and per run the confusion
// matrices and anomaly-map overlays.
func planFigures(out, figDir string, g *group, cols []reports.Column) (*plan, error) {
	p := &plan{out: out}
	p.text("### Figures\n\n")
	cats := categories(g)

	p.text("#### Metrics per category\n\n")
	for _, m := range metricKeys(g) {
		m := m
		groups := append(append([]string(nil), cats...), "mean")
		var series []figures.BarSeries
		for i, r := range g.runs {
			s := figures.BarSeries{Label: g.labels[i]}
			for _, c := range cats {
				s.Values = append(s.Values, valueOr(r.Results.Categories[c], m))
			}
			s.Values = append(s.Values, valueOr(r.Results.Mean, m))
			series = append(series, s)
		}
		title := fmt.Sprintf("%s: %s (%%)", g.dataset, reports.MetricTitle(m))
		j := p.add(plotJob(filepath.Join(figDir, "bars-"+slug(m)), figures.BarSize, func() (*plot.Plot, error) {
			return figures.Bars(title, "%", groups, series)
		}))
		alt := reports.MetricTitle(m) + " per category"
		p.render = append(p.render, func(b *strings.Builder) { b.WriteString(p.image(j, alt) + "\n\n") })
	}

	planTypeBars(p, figDir, g, cols)
	if err := planCurves(p, figDir, g, cats); err != nil {
		return nil, err
	}
	taken := names{}
	for _, c := range cats {
		taken.unique("roc-" + c) // keep run folders clear of figure names
	}
	runDirs := make([]string, len(g.runs))
	for i := range g.runs {
		runDirs[i] = filepath.Join(figDir, taken.unique(g.labels[i]))
	}
	if err := planConfusion(p, runDirs, g, cats); err != nil {
		return nil, err
	}
	if err := planOverlays(p, runDirs, g, cats); err != nil {
		return nil, err
	}
	return p, nil
}

// planTypeBars draws one bar chart per defect-type metric, the types of
// each vocabulary group together, novel ones marked; the normal class is
// left out, as in the tables' means.
func planTypeBars(p *plan, figDir string, g *group, cols []reports.Column) {
	var types, labels []string
	for _, grp := range reports.GroupDefectTypes(cols) {
		if grp.Key == reports.NormalGroup {
			continue
		}
		for _, ty := range grp.Types {
			types = append(types, ty)
			switch grp.Key {
			case reports.Novel:
				labels = append(labels, ty+" (novel)")
			case reports.Mixed:
				labels = append(labels, ty+" (seen/novel)")
			default:
				labels = append(labels, ty)
			}
		}
	}
	if len(types) == 0 {
		return
	}
	p.text("#### Defect types (pixel level)\n\n")
	for _, m := range []string{results.PixelAUROC, results.PixelAP, results.PixelF1} {
		var series []figures.BarSeries
		for i, r := range g.runs {
			s := figures.BarSeries{Label: g.labels[i]}
			for _, ty := range types {
				s.Values = append(s.Values, valueOr(r.Results.DefectTypes[ty], m))
			}
			series = append(series, s)
		}
		title := fmt.Sprintf("%s: %s per defect type (%%)", g.dataset, reports.MetricTitle(m))
		j := p.add(plotJob(filepath.Join(figDir, "types-"+slug(m)), figures.BarSize, func() (*plot.Plot, error) {
			return figures.Bars(title, "%", labels, series)
		}))
		alt := reports.MetricTitle(m) + " per defect type"
		p.render = append(p.render, func(b *strings.Builder) { b.WriteString(p.image(j, alt) + "\n\n") })
	}
}

// planCurves draws, per category, the ROC and PR curves of every run that
// stores its image scores.
func planCurves(p *plan, figDir string, g *group, cats []string) error {
	p.text("#### ROC and precision-recall curves (image level)\n\n")
	files := names{}
	for _, c := range cats {
		var series []figures.Series
		var missing []string
		for i, r := range g.runs {
			if r.Results.Categories[c] == nil {
				continue
			}
			s, err := r.Scores(c)
			if errors.Is(err, fs.ErrNotExist) {
				missing = append(missing, g.labels[i])
				continue
			}
			if err != nil {
				return err
			}
			series = append(series, figures.Series{Label: g.labels[i], Scores: s.Values, Labels: s.Labels})
		}
		name := files.unique(c)
		p.text("**%s**\n\n", reports.EscapeCell(c))
		if len(series) == 0 {
			p.text("*No run stores image scores for this category (scores/ is missing).*\n\n")
			continue
		}
		roc := p.add(plotJob(filepath.Join(figDir, "roc-"+name), figures.CurveSize, func() (*plot.Plot, error) {
			return figures.ROCPlot(c+": ROC", series)
		}))
		pr := p.add(plotJob(filepath.Join(figDir, "pr-"+name), figures.CurveSize, func() (*plot.Plot, error) {
			return figures.PRPlot(c+": precision-recall", series)
		}))
		p.render = append(p.render, func(b *strings.Builder) {
			fmt.Fprintf(b, "%s %s\n\n", p.image(roc, "ROC, "+c), p.image(pr, "precision-recall, "+c))
		})
		if len(missing) > 0 {
			p.text("*Without scores/ (not drawn): %s.*\n\n", reports.EscapeCell(strings.Join(missing, ", ")))
		}
	}
	return nil
}

func categories(g *group) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range g.runs {
		for _, c := range r.Results.CategoryNames() {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	sort.Strings(out)
	return out
}

// metricKeys are the category metrics of the runs: the standard seven in
// table order, then the others sorted.
func metricKeys(g *group) []string {
	have := map[string]bool{}
	for _, r := range g.runs {
		for _, e := range r.Results.Categories {
			for k := range e.Metrics {
				have[k] = true
			}
		}
	}
	var out []string
	for _, k := range results.StandardMetrics() {
		if have[k] {
			out = append(out, k)
			delete(have, k)
		}
	}
	return append(out, sortedKeys(have)...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// valueOr is a metric's value, NaN when undefined or absent.
func valueOr(e *results.Entry, metric string) float64 {
	if v, ok := e.Get(metric); ok {
		return v
	}
	return math.NaN()
}

// escapeAlt keeps an image's alt text from closing the link.
func escapeAlt(s string) string {
	return strings.NewReplacer("[", "(", "]", ")", "\n", " ").Replace(s)
}
