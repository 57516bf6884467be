// Package resultsmd writes RESULTS.md: for every dataset among a set of
// runs, the paper-style tables of reports side by side, and the figures of
// reports/figures embedded with relative links, so that the folder can be
// moved or committed as a whole.
package resultsmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/dapobench/dapobench/internal/atomicfile"
	"github.com/dapobench/dapobench/internal/parallel"
	"github.com/dapobench/dapobench/reports"
	"github.com/dapobench/dapobench/reports/rundir"
)

// FileName is the report's name inside its folder.
const FileName = "RESULTS.md"

// FiguresDir is the folder, inside the report's folder, that holds the
// figures. A report overwrites the files it draws and leaves any others
// (from an earlier report over other runs) alone, since it cannot know
// they are its own.
const FiguresDir = "figures"

// Options configure Write.
type Options struct {
	// Title is the report's first heading; "" means "Results".
	Title string
	// Progress receives one line per dataset; nil is silent.
	Progress io.Writer
	// Workers draw figures in parallel; 0 means GOMAXPROCS.
	Workers int
}

// group is the runs of one dataset, in the order given, with the label of
// each column.
type group struct {
	dataset string
	runs    []*rundir.Run
	labels  []string
}

// Write writes out/RESULTS.md and its figures under out/figures for runs,
// grouped by dataset in order of first appearance; within a dataset each
// run is a column, in the order given. RESULTS.md is written last and
// atomically, so an interrupted report leaves the previous one readable.
func Write(ctx context.Context, out string, runs []*rundir.Run, opt Options) error {
	if len(runs) == 0 {
		return fmt.Errorf("resultsmd: no runs")
	}
	seen := map[string]string{}
	for _, r := range runs {
		// A run is its results file: several lone results files may share
		// one folder.
		abs, err := filepath.Abs(r.Path)
		if err != nil {
			return fmt.Errorf("resultsmd: %w", err)
		}
		if prev, ok := seen[abs]; ok {
			return fmt.Errorf("resultsmd: run %s is given twice (also as %s)", r.Path, prev)
		}
		seen[abs] = r.Dir
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.Title == "" {
		opt.Title = "Results"
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("resultsmd: %w", err)
	}
	groups := groupRuns(runs)
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", opt.Title)
	b.WriteString(preamble)
	if len(groups) > 1 {
		for _, g := range groups {
			fmt.Fprintf(&b, "- [%s](#%s) (%d %s)\n", g.dataset, anchor(g.dataset), len(g.runs), plural(len(g.runs), "run", "runs"))
		}
		b.WriteString("\n")
	}
	dirs := names{}
	for _, g := range groups {
		if err := ctx.Err(); err != nil {
			return err
		}
		figDir := filepath.Join(out, FiguresDir, dirs.unique(g.dataset))
		if err := os.MkdirAll(figDir, 0o755); err != nil {
			return fmt.Errorf("resultsmd: %w", err)
		}
		s, err := writeDataset(ctx, out, figDir, g, opt)
		if err != nil {
			return fmt.Errorf("resultsmd: %s: %w", g.dataset, err)
		}
		b.WriteString(s)
	}
	return atomicfile.WriteFile(filepath.Join(out, FileName), []byte(b.String()))
}

const preamble = `Values are percentages with one decimal; the best value of each row is in
bold. A dash (–) marks a value that is undefined or absent; the numbered note
under its table gives the reason. Means are unweighted over categories, as in
the papers. Figures link to an SVG version for print. A column marked
(untrained) ran with seeded initial values of its scheme's learned tensors,
one marked (trained) with imported or trained ones; schemes without learned
tensors carry no mark.

`

// groupRuns groups runs by dataset and labels the columns: the scheme or
// variant name, with the run's folder added where two runs of a dataset
// share a name.
func groupRuns(runs []*rundir.Run) []*group {
	var out []*group
	by := map[string]*group{}
	for _, r := range runs {
		g := by[r.Results.Dataset]
		if g == nil {
			g = &group{dataset: r.Results.Dataset}
			by[g.dataset] = g
			out = append(out, g)
		}
		g.runs = append(g.runs, r)
	}
	for _, g := range out {
		count := map[string]int{}
		for _, r := range g.runs {
			count[r.Label()]++
		}
		used := map[string]int{}
		for _, r := range g.runs {
			l := r.Label()
			if count[l] > 1 {
				l = fmt.Sprintf("%s (%s)", l, r.Name())
			}
			used[l]++
			if used[l] > 1 {
				l = fmt.Sprintf("%s #%d", l, used[l])
			}
			g.labels = append(g.labels, l)
		}
	}
	return out
}

// writeDataset returns one dataset's section: its runs, tables and
// figures.
func writeDataset(ctx context.Context, out, figDir string, g *group, opt Options) (string, error) {
	cols := make([]reports.Column, len(g.runs))
	for i, r := range g.runs {
		cols[i] = reports.Column{Label: reports.MarkedLabel(g.labels[i], r.Results), Results: r.Results}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", g.dataset)
	runsTable(&b, out, g)
	if err := reports.WriteTables(&b, cols, reports.TableOptions{Heading: 3}); err != nil {
		return "", err
	}
	if err := reports.WriteDefectTypeTables(&b, cols, reports.TableOptions{Heading: 3}); err != nil {
		return "", err
	}
	plan, err := planFigures(out, figDir, g, cols)
	if err != nil {
		return "", err
	}
	if err := parallel.For(ctx, len(plan.jobs), opt.Workers, func(ctx context.Context, i int) error {
		return plan.jobs[i].run()
	}); err != nil {
		return "", err
	}
	plan.write(&b)
	if opt.Progress != nil {
		fmt.Fprintf(opt.Progress, "report: %s: %d %s, %d figures\n", g.dataset, len(g.runs), plural(len(g.runs), "run", "runs"), plan.drawn())
	}
	return b.String(), nil
}

// runsTable lists the runs of a dataset: label, scheme, model, settings and
// a link to each results file.
func runsTable(b *strings.Builder, out string, g *group) {
	b.WriteString("| run | model | settings | results |\n|:---|:---|:---|:---|\n")
	for i, r := range g.runs {
		var set []string
		for _, k := range sortedKeys(r.Results.Settings) {
			set = append(set, k+": "+r.Results.Settings[k])
		}
		fmt.Fprintf(b, "| %s | %s | %s | [%s](%s) |\n", reports.EscapeCell(reports.MarkedLabel(g.labels[i], r.Results)), reports.EscapeCell(r.Results.Model),
			reports.EscapeCell(strings.Join(set, "; ")), reports.EscapeCell(filepath.Base(r.Path)), link(out, r.Path))
	}
	b.WriteString("\n")
}

// anchor is GitHub's heading anchor for a dataset name.
func anchor(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
