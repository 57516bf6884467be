package rundir

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/reports"
)

// Markdown writes the comparison as a Markdown table, values in
// percentage points, with a legend and the notes of rows without a test.
func (c *Comparison) Markdown(w io.Writer) error {
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
