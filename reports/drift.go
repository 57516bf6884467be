package reports

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dapobench/dapobench/results"
)

// DefaultTolerance is the absolute difference between two metric values
// (fractions in [0, 1]) that a regression check accepts. A run is
// bit-for-bit reproducible on one machine (the run tests check identical
// bytes across threads, cache and resume), so any real change in the
// pipeline moves a number by far more: on the fixtures one swapped pair of
// images moves an AUROC by several percent. 1e-6 is 10⁻⁴ percentage
// points, a thousand times below what the tables print, and well above the
// 1e-12 or so that a different summation order of float64 means can
// cause.
const DefaultTolerance = 1e-6

// Change is one difference between golden results and current ones.
type Change struct {
	Where  string // category name, "mean", "defect type X", or "run" for the run's fields
	Key    string // metric or count name, "settings.K", or "(entry)" when a whole row appeared or vanished
	Golden string // the golden value as text ("null (reason)", "absent" when missing)
	Now    string
	Delta  float64 // Now − Golden for two numbers; NaN otherwise
}

// Drift lists every way now differs from golden beyond tol: a metric that
// moved by more than tol, became null or non-null, appeared or vanished; a
// count that changed; a category or defect type that appeared or vanished;
// a different dataset, scheme, model or setting. Notes and the reasons of
// null metrics are not compared. The order is stable: run fields,
// categories, mean, defect types.
func Drift(golden, now *results.Results, tol float64) ([]Change, error) {
	if !(tol >= 0) || math.IsInf(tol, 0) {
		return nil, fmt.Errorf("reports: tolerance %v must be a finite number ≥ 0", tol)
	}
	if golden == nil || now == nil {
		return nil, fmt.Errorf("reports: drift needs two results")
	}
	var out []Change
	field := func(key, g, n string) {
		if g != n {
			out = append(out, Change{Where: "run", Key: key, Golden: quoteOrAbsent(g, true), Now: quoteOrAbsent(n, true), Delta: math.NaN()})
		}
	}
	field("dataset", golden.Dataset, now.Dataset)
	field("scheme", golden.Scheme, now.Scheme)
	field("model", golden.Model, now.Model)
	for _, k := range unionKeys(golden.Settings, now.Settings) {
		g, gok := golden.Settings[k]
		n, nok := now.Settings[k]
		if g != n || gok != nok {
			out = append(out, Change{Where: "run", Key: "settings." + k, Golden: quoteOrAbsent(g, gok), Now: quoteOrAbsent(n, nok), Delta: math.NaN()})
		}
	}
	entries := func(prefix string, g, n map[string]*results.Entry) {
		for _, k := range unionKeys(g, n) {
			out = append(out, entryDrift(prefix+k, g[k], n[k], tol)...)
		}
	}
	entries("", golden.Categories, now.Categories)
	out = append(out, entryDrift("mean", golden.Mean, now.Mean, tol)...)
	entries("defect type ", golden.DefectTypes, now.DefectTypes)
	return out, nil
}

// entryDrift compares two rows.
func entryDrift(where string, g, n *results.Entry, tol float64) []Change {
	switch {
	case g == nil && n == nil:
		return nil
	case g == nil:
		return []Change{{Where: where, Key: "(entry)", Golden: "absent", Now: "present", Delta: math.NaN()}}
	case n == nil:
		return []Change{{Where: where, Key: "(entry)", Golden: "present", Now: "absent", Delta: math.NaN()}}
	}
	var out []Change
	for _, k := range unionKeys(g.Metrics, n.Metrics) {
		gp, gok := g.Metrics[k]
		np, nok := n.Metrics[k]
		c := Change{Where: where, Key: k, Golden: metricText(gp, gok, g.Undefined[k]), Now: metricText(np, nok, n.Undefined[k]), Delta: math.NaN()}
		switch {
		case gp != nil && np != nil:
			c.Delta = *np - *gp
			if math.Abs(c.Delta) <= tol {
				continue
			}
		case gok && nok && gp == nil && np == nil:
			continue // null in both
		}
		out = append(out, c)
	}
	for _, k := range unionKeys(g.Counts, n.Counts) {
		gv, gok := g.Counts[k]
		nv, nok := n.Counts[k]
		if gv == nv && gok == nok {
			continue
		}
		c := Change{Where: where, Key: k, Golden: countText(gv, gok), Now: countText(nv, nok), Delta: math.NaN()}
		if gok && nok {
			c.Delta = float64(nv - gv)
		}
		out = append(out, c)
	}
	return out
}

func metricText(p *float64, present bool, reason string) string {
	switch {
	case !present:
		return "absent"
	case p == nil:
		return "null (" + reason + ")"
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

func countText(v int, present bool) string {
	if !present {
		return "absent"
	}
	return strconv.Itoa(v)
}

func quoteOrAbsent(s string, present bool) string {
	if !present {
		return "absent"
	}
	return strconv.Quote(s)
}

// unionKeys returns the keys of two maps, sorted.
func unionKeys[V any](a, b map[string]V) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return slices.Compact(keys)
}

// WriteChanges writes changes as a Markdown table: where, metric, golden,
// now and Δ.
func WriteChanges(w io.Writer, changes []Change) error {
	var b strings.Builder
	rows := make([][]string, len(changes))
	for i, c := range changes {
		d := ""
		if !math.IsNaN(c.Delta) {
			d = strconv.FormatFloat(c.Delta, 'g', 3, 64)
			if c.Delta > 0 {
				d = "+" + d
			}
		}
		rows[i] = []string{EscapeCell(c.Where), EscapeCell(c.Key), EscapeCell(c.Golden), EscapeCell(c.Now), d}
	}
	if err := renderMarkdown(&b, []string{"where", "metric", "golden", "now", "Δ"}, rows, 2); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}
