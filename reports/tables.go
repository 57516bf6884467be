package reports

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/dapobench/dapobench/results"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// Column is one run in a comparison table: the results of a scheme or
// variant under a short label.
type Column struct {
	Label   string
	Results *results.Results
}

// TableOptions set how tables are written.
type TableOptions struct {
	// Heading is the Markdown heading level of a block title (3 is "###");
	// each metric's title is one level deeper. 0 means 3.
	Heading int
}

func (o TableOptions) heading(extra int) string {
	h := o.Heading
	if h <= 0 {
		h = 3
	}
	return strings.Repeat("#", min(h+extra, 6))
}

// metricTitles name the metrics in table titles and figure captions.
var metricTitles = map[string]string{
	results.ImageAUROC:     "Image AUROC",
	results.ImageAP:        "Image AP",
	results.ImageF1Max:     "Image F1-max",
	results.PixelAUROC:     "Pixel AUROC",
	results.PixelAP:        "Pixel AP",
	results.PixelF1Max:     "Pixel F1-max",
	results.PixelAUPRO:     "Pixel AUPRO",
	results.PixelF1:        "Pixel F1",
	results.TypePixelAUROC: "Multi-type pixel AUROC (macro)",
	results.TypePixelAP:    "Multi-type pixel AP (macro)",
	results.TypePixelF1:    "Multi-type pixel F1 of the argmax (macro)",
	results.TypeAccuracy:   "Defect-type accuracy (anomalous images)",
}

// MetricTitle is the human name of a metric key; unknown keys are returned
// as they are.
func MetricTitle(key string) string {
	if t, ok := metricTitles[key]; ok {
		return t
	}
	return key
}

// block is a group of metrics, one table each.
type block struct {
	title   string
	metrics []string
}

// blocks are the papers' blocks, image level then pixel level, followed by
// every other metric some run reports (multi-type segmentation first).
func blocks(cols []Column) []block {
	present := map[string]bool{}
	for _, c := range cols {
		for _, e := range c.Results.Categories {
			for k := range e.Metrics {
				present[k] = true
			}
		}
	}
	keep := func(keys ...string) []string {
		var out []string
		for _, k := range keys {
			if present[k] {
				out = append(out, k)
				delete(present, k)
			}
		}
		return out
	}
	bs := []block{
		{"Image level", keep(results.ImageAUROC, results.ImageAP, results.ImageF1Max)},
		{"Pixel level", keep(results.PixelAUROC, results.PixelAP, results.PixelF1Max, results.PixelAUPRO)},
		{"Multi-type segmentation", keep(results.TypePixelAUROC, results.TypePixelAP, results.TypePixelF1, results.TypeAccuracy)},
	}
	var rest []string
	for k := range present {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	bs = append(bs, block{"Other metrics", rest})
	return slices.DeleteFunc(bs, func(b block) bool { return len(b.metrics) == 0 })
}

// checkColumns rejects tables that would mix datasets or lack results.
func checkColumns(cols []Column) error {
	if len(cols) == 0 {
		return errors.New("reports: a table needs at least one run")
	}
	for i, c := range cols {
		if c.Results == nil {
			return fmt.Errorf("reports: column %d (%q) has no results", i+1, c.Label)
		}
		if c.Results.Dataset != cols[0].Results.Dataset {
			return fmt.Errorf("reports: one table cannot mix datasets %s (%s) and %s (%s)",
				cols[0].Results.Dataset, cols[0].Label, c.Results.Dataset, c.Label)
		}
	}
	return nil
}

// WriteTables writes the per-category tables in the papers' layout: one
// table per metric, rows the categories and their mean, one column per
// run; values are percentages with one decimal, the best of each row in
// bold; a missing value is "–" with a numbered note giving the reason.
func WriteTables(w io.Writer, cols []Column, opt TableOptions) error {
	if err := checkColumns(cols); err != nil {
		return err
	}
	var cats []string
	for _, c := range cols {
		for _, n := range c.Results.CategoryNames() {
			if !slices.Contains(cats, n) {
				cats = append(cats, n)
			}
		}
	}
	sort.Strings(cats)
	var b strings.Builder
	for _, bl := range blocks(cols) {
		fmt.Fprintf(&b, "%s %s\n\n", opt.heading(0), bl.title)
		for _, m := range bl.metrics {
			fmt.Fprintf(&b, "%s %s (%%%s)\n\n", opt.heading(1), MetricTitle(m), variantSuffix(cols, m))
			if m == results.PixelAUPRO {
				if s := variantMismatch(cols); s != "" {
					b.WriteString(s + "\n\n")
				}
			}
			if err := metricTable(&b, cols, cats, m); err != nil {
				return err
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// variantSuffix names the AU-PRO variant in the title when every run used
// the same one.
func variantSuffix(cols []Column, metric string) string {
	if metric != results.PixelAUPRO || variantMismatch(cols) != "" {
		return ""
	}
	if v := cols[0].Results.Settings["aupro"]; v != "" {
		return ", " + v + " variant"
	}
	return ""
}

// variantMismatch says which AU-PRO variant each run used when they differ:
// their numbers are then not directly comparable.
func variantMismatch(cols []Column) string {
	var parts []string
	same := true
	for _, c := range cols {
		v := c.Results.Settings["aupro"]
		if v == "" {
			v = "unknown"
		}
		parts = append(parts, fmt.Sprintf("%s: %s", EscapeCell(c.Label), v))
		if c.Results.Settings["aupro"] != cols[0].Results.Settings["aupro"] {
			same = false
		}
	}
	if same {
		return ""
	}
	return "AU-PRO variants differ between runs (" + strings.Join(parts, "; ") + "); compare these columns with care."
}

// metricTable writes one metric's table and its notes.
func metricTable(b *strings.Builder, cols []Column, cats []string, metric string) error {
	var n notes
	header := []string{"category"}
	for _, c := range cols {
		header = append(header, EscapeCell(c.Label))
	}
	var rows [][]string
	for _, cat := range cats {
		cells := make([]cell, len(cols))
		for i, c := range cols {
			cells[i] = entryCell(c.Results.Categories[cat], metric, "category "+cat+" is not in this run")
		}
		rows = append(rows, append([]string{EscapeCell(cat)}, formatRow(cells, &n)...))
	}
	cells := make([]cell, len(cols))
	for i, c := range cols {
		cells[i] = entryCell(c.Results.Mean, metric, "this run has no mean")
	}
	rows = append(rows, append([]string{"*mean*"}, formatRow(cells, &n)...))
	if err := renderMarkdown(b, header, rows, 1); err != nil {
		return err
	}
	n.write(b)
	return nil
}

// entryCell reads one metric of an entry with the reason it is missing or
// the note on how it was computed.
func entryCell(e *results.Entry, metric, absent string) cell {
	if e == nil {
		return cell{note: absent}
	}
	if v, ok := e.Get(metric); ok {
		return cell{v: v, ok: true, note: e.Notes[metric]}
	}
	if r := e.Undefined[metric]; r != "" {
		return cell{note: r}
	}
	return cell{note: "not reported by this run"}
}

// MarkdownTable writes a Markdown table with tablewriter: the first left
// columns left-aligned, the others right-aligned, nothing wrapped or
// upper-cased. Cells must already be escaped (EscapeCell).
func MarkdownTable(w io.Writer, header []string, rows [][]string, left int) error {
	var b strings.Builder
	if err := renderMarkdown(&b, header, rows, left); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// renderMarkdown writes a Markdown table: the first left columns
// left-aligned, the numbers after them right-aligned, nothing wrapped or
// upper-cased. Cells must already be escaped.
func renderMarkdown(b *strings.Builder, header []string, rows [][]string, left int) error {
	align := make(tw.Alignment, len(header))
	for i := range align {
		align[i] = tw.AlignRight
		if i < left {
			align[i] = tw.AlignLeft
		}
	}
	t := tablewriter.NewTable(b,
		tablewriter.WithRenderer(renderer.NewMarkdown()),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithAlignment(align),
	)
	t.Header(toAny(header)...)
	for _, r := range rows {
		if err := t.Append(toAny(r)...); err != nil {
			return fmt.Errorf("reports: table: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("reports: table: %w", err)
	}
	b.WriteString("\n")
	return nil
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
