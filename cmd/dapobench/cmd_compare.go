package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/reports"
	"github.com/dapobench/dapobench/reports/rundir"
)

func cmdCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("compare", stderr)
	seed := fs.Uint64("seed", 1, "seed of the bootstrap resamples (results are reproducible for a seed)")
	resamples := fs.Int("resamples", 2000, "bootstrap resamples")
	level := fs.Float64("level", 0.95, "confidence level of the bootstrap interval")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: dapobench compare RUN_A RUN_B [--seed N] [--resamples N] [--level P]")
		fmt.Fprintln(stderr, "\nPer category and mean, B − A of every metric; for image AUROC, AP and F1-max a paired")
		fmt.Fprintln(stderr, "bootstrap interval, and for image AUROC DeLong's test, from the runs' image scores.")
		fs.PrintDefaults()
	}
	dirs, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(dirs) != 2 {
		return fmt.Errorf("%w: compare: want two run directories, have %d", errUsage, len(dirs))
	}
	if *resamples < 2 {
		return fmt.Errorf("%w: compare: --resamples %d: want at least 2", errUsage, *resamples)
	}
	if !(*level > 0 && *level < 1) {
		return fmt.Errorf("%w: compare: --level %v: want a number between 0 and 1", errUsage, *level)
	}
	a, err := rundir.Open(dirs[0])
	if err != nil {
		return err
	}
	b, err := rundir.Open(dirs[1])
	if err != nil {
		return err
	}
	c, err := rundir.Compare(ctx, a, b, rundir.CompareOptions{Seed: *seed, Resamples: *resamples, Level: *level})
	if err != nil {
		return err
	}
	for _, w := range c.Warnings {
		fmt.Fprintln(stderr, "dapobench compare: warning:", w)
	}
	return printComparison(stdout, c)
}

// printComparison writes the comparison as a Markdown table, values in
// percentage points, with a legend and the notes of rows without a test.
func printComparison(w io.Writer, c *rundir.Comparison) error {
	fmt.Fprintf(w, "%s: A = %s (%s), B = %s (%s)\n\n", c.A.Results.Dataset, c.A.Label(), c.A.Dir, c.B.Label(), c.B.Dir)
	ci := fmt.Sprintf("%g%% CI of Δ", 100*c.Options.Level)
	header := []string{"category", "metric", "A", "B", "Δ", ci, "p (bootstrap)", "p (DeLong)"}
	var rows [][]string
	var notes []string
	for _, r := range c.Rows {
		cat := r.Category
		if cat == "" {
			cat = "*mean*"
		}
		row := []string{reports.EscapeCell(cat), r.Metric, points(r.A), points(r.B), signed(r.Diff), "", "", ""}
		if bs := r.Bootstrap; bs != nil {
			row[5] = fmt.Sprintf("[%s, %s]", signedPoints(bs.DiffLo), signedPoints(bs.DiffHi))
			row[6] = bootstrapP(bs)
		}
		if dl := r.DeLong; dl != nil {
			if dl.P.OK() {
				row[7] = strconv.FormatFloat(dl.P.V, 'g', 3, 64)
			} else {
				row[7] = reports.Missing
				notes = append(notes, fmt.Sprintf("%s %s: DeLong: %s", cat, r.Metric, dl.P.Reason))
			}
		}
		if r.Note != "" {
			notes = append(notes, fmt.Sprintf("%s %s: %s", cat, r.Metric, r.Note))
		}
		rows = append(rows, row)
	}
	if err := reports.MarkdownTable(w, header, rows, 2); err != nil {
		return err
	}
	fmt.Fprintf(w, "Values in %%, Δ = B − A in percentage points. The interval and its p-value come from %d paired\n"+
		"bootstrap resamples of the images, stratified by label (and by category for the mean), seed %d;\n"+
		"DeLong's test compares the two image AUROCs of a category.\n",
		c.Options.Resamples, c.Options.Seed)
	for _, n := range notes {
		fmt.Fprintln(w, "- "+reports.EscapeCell(n))
	}
	return nil
}

func points(v metrics.Value) string {
	if !v.OK() {
		return reports.Missing
	}
	s := strconv.FormatFloat(100*v.V, 'f', 2, 64)
	if s == "-0.00" { // AU-PRO can be −0
		s = "0.00"
	}
	return s
}

func signed(v metrics.Value) string {
	if !v.OK() {
		return reports.Missing
	}
	return signedPoints(v.V)
}

func signedPoints(x float64) string {
	s := strconv.FormatFloat(100*x, 'f', 2, 64)
	if s == "-0.00" {
		s = "0.00"
	}
	if !strings.HasPrefix(s, "-") {
		s = "+" + s
	}
	return s
}

// bootstrapP prints a bootstrap p-value; 0 means below the resolution of
// the resamples.
func bootstrapP(b *metrics.BootstrapResult) string {
	if b.P == 0 {
		return "< " + strconv.FormatFloat(1/float64(b.Resamples), 'g', 2, 64)
	}
	return strconv.FormatFloat(b.P, 'g', 3, 64)
}
