package reports

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/dapobench/dapobench/results"
)

// Summary prints the per-category metrics and their mean as percentages,
// aligned for a terminal.
func Summary(w io.Writer, r *results.Results) {
	cols := results.StandardMetrics()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s / %s\t", r.Dataset, r.Scheme)
	for _, c := range cols {
		fmt.Fprintf(tw, "%s\t", c)
	}
	fmt.Fprintln(tw)
	row := func(name string, e *results.Entry) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, c := range cols {
			if v, ok := e.Get(c); ok {
				fmt.Fprintf(tw, "%.1f\t", 100*v)
			} else {
				fmt.Fprint(tw, "–\t")
			}
		}
		fmt.Fprintln(tw)
	}
	for _, n := range r.CategoryNames() {
		row(n, r.Categories[n])
	}
	row("mean", r.Mean)
	tw.Flush()
}
