package study

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/dapobench/dapobench/internal/atomicfile"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/reports"
	"github.com/dapobench/dapobench/reports/rundir"
	"github.com/dapobench/dapobench/results"
)

// ResultsFile is the study report in the study folder.
const ResultsFile = "RESULTS.md"

// Significance settings of the paired tests (reports/rundir.Compare):
// fixed, so that a report is the same wherever it is written.
const (
	bootstrapSeed      = 1
	bootstrapResamples = 2000
	level              = 0.95
	alpha              = 0.05
)

// WriteReport writes RESULTS.md from the study's finished evaluations;
// cells of evaluations that have not finished say so.
func WriteReport(ctx context.Context, g *Graph) error {
	r, err := newReport(g)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := r.write(ctx, &b); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(g.dir, ResultsFile), []byte(b.String())); err != nil {
		return fmt.Errorf("study: %w", err)
	}
	return nil
}

// report holds a study's finished runs by row, dataset and seed index.
type report struct {
	g        *Graph
	datasets []string                    // evaluated, in the loaders' table order
	runs     map[[2]string][]*rundir.Run // row, dataset → by seed index (nil: not finished)
	missing  map[[2]string]string        // why a cell has no runs
	planned  map[[2]string]bool          // the study evaluates the row on the dataset
	compared map[[2]*rundir.Run]*rundir.Comparison
}

func newReport(g *Graph) (*report, error) {
	r := &report{g: g, runs: map[[2]string][]*rundir.Run{}, missing: map[[2]string]string{}, planned: map[[2]string]bool{},
		compared: map[[2]*rundir.Run]*rundir.Comparison{}}
	evaluated := map[string]bool{}
	for _, j := range g.Jobs {
		e := j.Eval
		if e == nil || e.Loader.Category != "" {
			continue
		}
		key := [2]string{e.Row, e.Loader.Dataset}
		evaluated[e.Loader.Dataset] = true
		r.planned[key] = true
		runs := r.runs[key]
		for len(runs) <= e.SeedIndex {
			runs = append(runs, nil)
		}
		run, err := rundir.Open(g.Path(e.Out))
		switch {
		case err == nil && g.Done(j):
			runs[e.SeedIndex] = run
		case err == nil || errors.Is(err, fs.ErrNotExist) || !g.Done(j):
			r.missing[key] = "not finished yet (dapobench study status)"
		default:
			return nil, err
		}
		r.runs[key] = runs
	}
	for _, d := range loaders.Datasets() {
		if evaluated[d.ID] {
			r.datasets = append(r.datasets, d.ID)
		}
	}
	return r, nil
}

func datasetName(id string) string {
	if d, err := loaders.Lookup(id); err == nil {
		return d.Name
	}
	return id
}

func (r *report) rowsOf(names []string) []ReportRow {
	var out []ReportRow
	for _, row := range r.g.Rows {
		if names == nil || slices.Contains(names, row.Label) || slices.Contains(names, row.Method) {
			out = append(out, row)
		}
	}
	return out
}

func (r *report) datasetsOf(names []string) []string {
	if names == nil {
		return r.datasets
	}
	var out []string
	for _, d := range r.datasets {
		if slices.Contains(names, d) {
			out = append(out, d)
		}
	}
	return out
}

func (r *report) write(ctx context.Context, b *strings.Builder) error {
	g := r.g
	fmt.Fprintf(b, "# %s\n\n", g.Title)
	fmt.Fprintf(b, "Study `%s`: %d methods on %d datasets, %d jobs. Values are percentages; ", g.Name, len(g.Rows), len(r.datasets), len(g.Jobs))
	fmt.Fprintf(b, "with several seeds a cell is the mean ± the sample standard deviation over the seeds ")
	fmt.Fprintf(b, "(n − 1 in the denominator), each seed's value being the unweighted mean over the dataset's categories.\n\n")
	var seeded []string
	for _, row := range g.Rows {
		if len(row.Seeds) > 0 {
			s := make([]string, len(row.Seeds))
			for i, x := range row.Seeds {
				s[i] = strconv.FormatUint(x, 10)
			}
			seeded = append(seeded, fmt.Sprintf("%s (%s)", row.Label, strings.Join(s, ", ")))
		}
	}
	if len(seeded) > 0 {
		fmt.Fprintf(b, "Seeds: %s.\n\n", strings.Join(seeded, "; "))
	}
	for _, t := range g.Tables {
		fmt.Fprintf(b, "## %s\n\n", t.Title)
		var err error
		switch t.Kind {
		case TableDatasets:
			err = r.datasetTables(b, t)
		case TableDefectTypes:
			err = r.defectTypeTables(b, t)
		case TableSignificance:
			err = r.significanceTables(ctx, b, t)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// notes numbers the explanations a table refers to.
type notes struct {
	texts []string
}

func (n *notes) mark(text string) string {
	i := slices.Index(n.texts, text)
	if i < 0 {
		n.texts = append(n.texts, text)
		i = len(n.texts) - 1
	}
	return fmt.Sprintf("<sup>%d</sup>", i+1)
}

func (n *notes) write(b *strings.Builder) {
	for i, t := range n.texts {
		fmt.Fprintf(b, "- <sup>%d</sup> %s\n", i+1, reports.EscapeCell(t))
	}
	if len(n.texts) > 0 {
		b.WriteString("\n")
	}
}

// seedValues are one cell's values, one per seed that has one, and why
// the others have none.
type seedValues struct {
	v    []float64
	note string
}

func (s seedValues) mean() float64 { return stat.Mean(s.v, nil) }

// format prints mean ± std in percent (one decimal); one value prints
// alone.
func (s seedValues) format() string {
	if len(s.v) == 1 {
		return reports.Percent(s.v[0])
	}
	m, sd := stat.MeanStdDev(s.v, nil)
	return reports.Percent(m) + " ± " + reports.Percent(sd)
}

// cellOf collects a cell's values with pick, which returns a seed's value
// or why it has none.
func (r *report) cellOf(row, ds string, pick func(*results.Results) (float64, string)) seedValues {
	key := [2]string{row, ds}
	if !r.planned[key] {
		return seedValues{note: "not evaluated in this study"}
	}
	var out seedValues
	runs := r.runs[key]
	done := 0
	for _, run := range runs {
		if run == nil {
			continue
		}
		done++
		v, why := pick(run.Results)
		if why != "" {
			out.note = why
			continue
		}
		out.v = append(out.v, v)
	}
	if done < len(runs) {
		out.note = r.missing[key]
		if out.v != nil {
			out.note = fmt.Sprintf("%d of %d seeds finished", done, len(runs))
		}
	} else if out.v != nil && len(out.v) < len(runs) {
		out.note = fmt.Sprintf("%d of %d seeds have a value: %s", len(out.v), len(runs), out.note)
	} else if out.v != nil {
		out.note = ""
	}
	return out
}

func meanMetric(metric string) func(*results.Results) (float64, string) {
	return func(res *results.Results) (float64, string) {
		if v, ok := res.Mean.Get(metric); ok {
			return v, ""
		}
		if res.Mean != nil && res.Mean.Undefined[metric] != "" {
			return 0, res.Mean.Undefined[metric]
		}
		return 0, "not reported by this scheme"
	}
}

// matrix writes one methods × datasets table with a mean column; the best
// printed mean of each column is bold.
func (r *report) matrix(b *strings.Builder, title string, rows []ReportRow, datasets []string, pick func(*results.Results) (float64, string)) error {
	fmt.Fprintf(b, "### %s\n\n", title)
	header := []string{"method"}
	for _, d := range datasets {
		header = append(header, reports.EscapeCell(datasetName(d)))
	}
	header = append(header, "mean")
	cells := make([][]seedValues, len(rows))
	for i, row := range rows {
		for _, d := range datasets {
			cells[i] = append(cells[i], r.cellOf(row.Label, d, pick))
		}
		var means []float64
		for _, c := range cells[i] {
			if len(c.v) > 0 && c.note == "" {
				means = append(means, c.mean())
			}
		}
		mean := seedValues{note: "the mean needs a complete value on every dataset"}
		if len(means) == len(datasets) {
			mean = seedValues{v: []float64{stat.Mean(means, nil)}}
		}
		cells[i] = append(cells[i], mean)
	}
	var n notes
	out := make([][]string, len(rows))
	for i, row := range rows {
		out[i] = []string{reports.EscapeCell(row.Label)}
	}
	for c := range len(datasets) + 1 {
		best, count := math.Inf(-1), 0
		for i := range rows {
			if v := cells[i][c]; len(v.v) > 0 {
				count++
				best = max(best, printed(v.mean()))
			}
		}
		for i := range rows {
			v := cells[i][c]
			s := reports.Missing
			if len(v.v) > 0 {
				s = v.format()
				if count > 1 && printed(v.mean()) == best {
					s = "**" + s + "**"
				}
			}
			if v.note != "" {
				s += n.mark(v.note)
			}
			out[i] = append(out[i], s)
		}
	}
	if err := reports.MarkdownTable(b, header, out, 1); err != nil {
		return err
	}
	n.write(b)
	return nil
}

func printed(v float64) float64 {
	p, _ := strconv.ParseFloat(reports.Percent(v), 64)
	return p
}

func (r *report) datasetTables(b *strings.Builder, t TableSpec) error {
	rows, datasets := r.rowsOf(t.Methods), r.datasetsOf(t.Datasets)
	for _, m := range t.Metrics {
		if err := r.matrix(b, reports.MetricTitle(m)+" (%)", rows, datasets, meanMetric(m)); err != nil {
			return err
		}
	}
	return nil
}

// groupMean is the mean of a metric over the defect types of one
// vocabulary group (seen or novel) of a run, the normal class left out.
func groupMean(metric, group string) func(*results.Results) (float64, string) {
	return func(res *results.Results) (float64, string) {
		var vs []float64
		types := 0
		for ty, e := range res.DefectTypes {
			if reports.IsNormalClass(ty) || e.Notes[reports.VocabularyNote] != group {
				continue
			}
			types++
			if v, ok := e.Get(metric); ok {
				vs = append(vs, v)
			}
		}
		switch {
		case types == 0 && len(res.DefectTypes) == 0:
			return 0, "this scheme does not segment defect types"
		case types == 0:
			return 0, "no " + group + " defect type in this dataset"
		case len(vs) == 0:
			return 0, "undefined for every " + group + " defect type"
		}
		return stat.Mean(vs, nil), ""
	}
}

func (r *report) defectTypeTables(b *strings.Builder, t TableSpec) error {
	rows, datasets := r.rowsOf(t.Methods), r.datasetsOf(t.Datasets)
	// Only rows that segment defect types somewhere.
	var typed []ReportRow
	var untyped []string
	for _, row := range rows {
		has := false
		for _, d := range datasets {
			for _, run := range r.runs[[2]string{row.Label, d}] {
				if run != nil && len(run.Results.DefectTypes) > 0 {
					has = true
				}
			}
		}
		if has {
			typed = append(typed, row)
		} else {
			untyped = append(untyped, row.Label)
		}
	}
	if len(typed) == 0 {
		b.WriteString("No method of this study segments defect types (or none has finished).\n\n")
		return nil
	}
	fmt.Fprintf(b, "Pixel-level metrics of multi-type segmentation, averaged over the defect types the scheme's training vocabulary has seen and over the novel ones (the normal class left out); each type's value is its mean over the categories containing it.")
	if len(untyped) > 0 {
		fmt.Fprintf(b, " Not shown (no defect types): %s.", strings.Join(untyped, ", "))
	}
	b.WriteString("\n\n")
	for _, m := range t.Metrics {
		for _, grp := range []string{reports.Seen, reports.Novel} {
			title := fmt.Sprintf("%s, %s defect types (%%)", reports.MetricTitle(m), grp)
			if err := r.matrix(b, title, typed, datasets, groupMean(m, grp)); err != nil {
				return err
			}
		}
	}
	return nil
}

// pairTest is one method run against one reference run.
type pairTest struct {
	diff, lo, hi float64 // B − A and its bootstrap interval
	ok           bool
	delongSig    int // categories whose DeLong p < alpha (image AUROC)
	delongN      int
	note         string
}

func (r *report) significanceTables(ctx context.Context, b *strings.Builder, t TableSpec) error {
	ref := r.g.Reference
	rows, datasets := r.rowsOf(t.Methods), r.datasetsOf(t.Datasets)
	var others []ReportRow
	for _, row := range rows {
		if row.Label != ref {
			others = append(others, row)
		}
	}
	if len(others) == 0 || ref == "" {
		b.WriteString("The study has no method besides the reference.\n\n")
		return nil
	}
	fmt.Fprintf(b, "Each method against %s, on the same images: the difference method − %s of the mean over categories, in percentage points. ", ref, ref)
	fmt.Fprintf(b, "Runs are paired by seed (a method with one run is paired with every run of the other). ")
	fmt.Fprintf(b, "Per pair, a paired bootstrap resamples the images within each category and label (%d resamples, seed %d, %g%% interval; `dapobench compare` runs the same tests); ", bootstrapResamples, bootstrapSeed, 100*level)
	fmt.Fprintf(b, "**\\*** marks a difference whose interval excludes 0 in every pair. ")
	fmt.Fprintf(b, "Over two or more pairs, a paired t-test of the per-pair differences (Student's t with n − 1 degrees of freedom) gives p; **†** marks p < %g.\n\n", alpha)
	type detail struct {
		row, ds, metric string
		tests           []pairTest
		p               float64
		hasP            bool
	}
	var details []detail
	for _, m := range t.Metrics {
		fmt.Fprintf(b, "### %s: difference to %s (percentage points)\n\n", reports.MetricTitle(m), ref)
		header := []string{"method"}
		for _, d := range datasets {
			header = append(header, reports.EscapeCell(datasetName(d)))
		}
		var n notes
		var out [][]string
		for _, row := range others {
			line := []string{reports.EscapeCell(row.Label)}
			for _, d := range datasets {
				tests, note, err := r.pairTests(ctx, ref, row.Label, d, m)
				if err != nil {
					return err
				}
				var diffs []float64
				all := len(tests) > 0
				for _, pt := range tests {
					if pt.ok {
						diffs = append(diffs, pt.diff)
						all = all && (pt.lo > 0 || pt.hi < 0)
					} else {
						all = false
						note = pt.note
					}
				}
				cell := reports.Missing
				var p float64
				hasP := false
				if len(diffs) > 0 {
					cell = signedPoints(stat.Mean(diffs, nil))
					if len(diffs) > 1 {
						cell += " ± " + points(stat.StdDev(diffs, nil))
						p, hasP = pairedT(diffs)
					}
					if all {
						cell += " \\*"
					}
					if hasP && p < alpha {
						cell += " †"
					}
					details = append(details, detail{row.Label, d, m, tests, p, hasP})
				}
				if note != "" {
					cell += n.mark(note)
				}
				line = append(line, cell)
			}
			out = append(out, line)
		}
		if err := reports.MarkdownTable(b, header, out, 1); err != nil {
			return err
		}
		n.write(b)
	}
	if len(details) == 0 {
		return nil
	}
	fmt.Fprintf(b, "### Tests per pair\n\n")
	header := []string{"method", "dataset", "metric", "difference [interval] per pair", "t-test p", "DeLong p < " + strconv.FormatFloat(alpha, 'g', -1, 64)}
	var out [][]string
	for _, d := range details {
		var per []string
		sig, total := 0, 0
		for _, pt := range d.tests {
			if !pt.ok {
				per = append(per, reports.Missing)
				continue
			}
			per = append(per, fmt.Sprintf("%s [%s, %s]", signedPoints(pt.diff), signedPoints(pt.lo), signedPoints(pt.hi)))
			sig += pt.delongSig
			total += pt.delongN
		}
		p := reports.Missing
		if d.hasP {
			p = strconv.FormatFloat(d.p, 'f', 3, 64)
		}
		dl := reports.Missing
		if d.metric == results.ImageAUROC && total > 0 {
			dl = fmt.Sprintf("%d of %d categories", sig, total)
		}
		out = append(out, []string{reports.EscapeCell(d.row), reports.EscapeCell(datasetName(d.ds)), reports.MetricTitle(d.metric),
			strings.Join(per, "; "), p, dl})
	}
	return reports.MarkdownTable(b, header, out, 3)
}

// pairTests runs rundir.Compare on each pair of runs of the reference (A)
// and a method (B) on a dataset.
func (r *report) pairTests(ctx context.Context, ref, row, ds, metric string) ([]pairTest, string, error) {
	a, bb := r.runs[[2]string{ref, ds}], r.runs[[2]string{row, ds}]
	switch {
	case !r.planned[[2]string{ref, ds}]:
		return nil, ref + " is not evaluated on this dataset", nil
	case !r.planned[[2]string{row, ds}]:
		return nil, "not evaluated in this study", nil
	}
	var pairs [][2]*rundir.Run
	switch {
	case len(a) == 1:
		for _, x := range bb {
			pairs = append(pairs, [2]*rundir.Run{a[0], x})
		}
	case len(bb) == 1:
		for _, x := range a {
			pairs = append(pairs, [2]*rundir.Run{x, bb[0]})
		}
	default:
		for i := range min(len(a), len(bb)) {
			pairs = append(pairs, [2]*rundir.Run{a[i], bb[i]})
		}
	}
	var out []pairTest
	for _, p := range pairs {
		if p[0] == nil || p[1] == nil {
			return nil, "not finished yet (dapobench study status)", nil
		}
		c := r.compared[p]
		if c == nil {
			var err error
			c, err = rundir.Compare(ctx, p[0], p[1], rundir.CompareOptions{Seed: bootstrapSeed, Resamples: bootstrapResamples, Level: level})
			if err != nil {
				return nil, "", fmt.Errorf("study: report: %s against %s on %s: %w", row, ref, ds, err)
			}
			r.compared[p] = c
		}
		pt := pairTest{note: "undefined"}
		for _, cr := range c.Rows {
			if cr.Metric != metric {
				continue
			}
			if cr.Category == "" {
				if cr.Bootstrap != nil && cr.Diff.OK() {
					pt.ok = true
					pt.diff, pt.lo, pt.hi = cr.Diff.V, cr.Bootstrap.DiffLo, cr.Bootstrap.DiffHi
				} else if cr.Note != "" {
					pt.note = cr.Note
				} else if !cr.Diff.OK() {
					pt.note = cr.Diff.Reason
				}
				continue
			}
			if cr.DeLong != nil && cr.DeLong.P.OK() {
				pt.delongN++
				if cr.DeLong.P.V < alpha {
					pt.delongSig++
				}
			}
		}
		out = append(out, pt)
	}
	return out, "", nil
}

// pairedT is the two-sided p-value of a paired t-test that the mean
// difference is 0; false when it is undefined (fewer than two pairs, or
// no spread).
func pairedT(d []float64) (float64, bool) {
	n := float64(len(d))
	if len(d) < 2 {
		return 0, false
	}
	m, sd := stat.MeanStdDev(d, nil)
	if sd == 0 || math.IsNaN(sd) {
		return 0, false
	}
	t := m / (sd / math.Sqrt(n))
	dist := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: n - 1}
	return 2 * dist.Survival(math.Abs(t)), true
}

// points prints a difference of fractions in percentage points.
func points(v float64) string { return reports.Percent(v) }

func signedPoints(v float64) string {
	s := reports.Percent(v)
	if !strings.HasPrefix(s, "-") && s != "0.0" {
		s = "+" + s
	}
	return strings.Replace(s, "-", "−", 1)
}
