package rundir

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dapobench/dapobench/results"
)

// NotComparableError lists every reason two runs cannot be compared image
// by image.
type NotComparableError struct {
	A, B  string // the run directories
	Diffs []string
}

func (e *NotComparableError) Error() string {
	return fmt.Sprintf("rundir: runs %s (A) and %s (B) are not comparable:\n  - %s", e.A, e.B, strings.Join(e.Diffs, "\n  - "))
}

// Comparable checks that two runs scored the same images with the same
// ground truth: the same dataset and categories, and per category the same
// images in the same order with the same labels and defect types (from
// scores/*.csv) and the same counts. What makes only some metrics
// incomparable is a warning: a different AU-PRO variant, or a different
// evaluation resolution (pixel ground truth is resized to the map size).
// It returns the paired scores of every category, keyed by name.
func Comparable(a, b *Run) (map[string][2]*Scores, []string, error) {
	bad := &NotComparableError{A: a.Dir, B: b.Dir}
	var warnings []string
	ra, rb := a.Results, b.Results
	if ra.Dataset != rb.Dataset {
		bad.Diffs = append(bad.Diffs, fmt.Sprintf("dataset: A is %s, B is %s", ra.Dataset, rb.Dataset))
		return nil, nil, bad
	}
	if onlyA, onlyB := difference(ra.CategoryNames(), rb.CategoryNames()), difference(rb.CategoryNames(), ra.CategoryNames()); len(onlyA)+len(onlyB) > 0 {
		if len(onlyA) > 0 {
			bad.Diffs = append(bad.Diffs, "categories only in A: "+strings.Join(onlyA, ", "))
		}
		if len(onlyB) > 0 {
			bad.Diffs = append(bad.Diffs, "categories only in B: "+strings.Join(onlyB, ", "))
		}
		return nil, nil, bad
	}
	paired := map[string][2]*Scores{}
	for _, cat := range ra.CategoryNames() {
		for _, k := range []string{results.NNormal, results.NAnomalous} {
			if x, y := ra.Categories[cat].Counts[k], rb.Categories[cat].Counts[k]; x != y {
				bad.Diffs = append(bad.Diffs, fmt.Sprintf("%s: %s is %d in A, %d in B", cat, k, x, y))
			}
		}
		sa, err := a.Scores(cat)
		if err != nil {
			return nil, nil, fmt.Errorf("rundir: comparing needs the image scores of both runs: %w", err)
		}
		sb, err := b.Scores(cat)
		if err != nil {
			return nil, nil, fmt.Errorf("rundir: comparing needs the image scores of both runs: %w", err)
		}
		bad.Diffs = append(bad.Diffs, sameSamples(cat, sa, sb)...)
		paired[cat] = [2]*Scores{sa, sb}
	}
	if len(bad.Diffs) > 0 {
		return nil, nil, bad
	}
	if x, y := ra.Settings["aupro"], rb.Settings["aupro"]; x != y {
		warnings = append(warnings, fmt.Sprintf("%s: A uses the %s variant, B the %s variant; their difference mixes two definitions",
			results.PixelAUPRO, orUnknown(x), orUnknown(y)))
	}
	if x, y := evalSize(a), evalSize(b); x != y && x > 0 && y > 0 {
		warnings = append(warnings, fmt.Sprintf("pixel metrics: A was evaluated at %d×%d, B at %d×%d; the ground-truth masks were resized to different resolutions",
			x, x, y, y))
	}
	if sameDir(a.Dir, b.Dir) {
		warnings = append(warnings, "A and B are the same run directory")
	}
	return paired, warnings, nil
}

// sameSamples says how two score files of a category differ: the row
// count, then the first row whose image, label or defect type differ, and
// how many rows differ in all.
func sameSamples(cat string, a, b *Scores) []string {
	if len(a.Images) != len(b.Images) {
		return []string{fmt.Sprintf("%s: %d test images in A, %d in B", cat, len(a.Images), len(b.Images))}
	}
	var diffs []string
	check := func(what string, differ func(i int) bool, show func(i int) (string, string)) {
		first, n := -1, 0
		for i := range a.Images {
			if differ(i) {
				if first < 0 {
					first = i
				}
				n++
			}
		}
		if n > 0 {
			x, y := show(first)
			diffs = append(diffs, fmt.Sprintf("%s: %s differ in %d of %d rows; first at row %d of scores/%s.csv: A has %s, B has %s",
				cat, what, n, len(a.Images), first+2, results.CategoryFile(cat), x, y))
		}
	}
	check("images", func(i int) bool { return a.Images[i] != b.Images[i] },
		func(i int) (string, string) { return a.Images[i], b.Images[i] })
	check("labels", func(i int) bool { return a.Labels[i] != b.Labels[i] },
		func(i int) (string, string) {
			return fmt.Sprintf("%s anomalous=%v", a.Images[i], a.Labels[i]), fmt.Sprintf("%s anomalous=%v", b.Images[i], b.Labels[i])
		})
	check("defect types", func(i int) bool { return a.Defects[i] != b.Defects[i] },
		func(i int) (string, string) {
			return fmt.Sprintf("%s %q", a.Images[i], a.Defects[i]), fmt.Sprintf("%s %q", b.Images[i], b.Defects[i])
		})
	return diffs
}

// evalSize is the map size of the run's examples (the evaluation
// resolution), or 0 when the run has none.
func evalSize(r *Run) int {
	for _, cat := range r.Results.CategoryNames() {
		if ex, err := r.Examples(cat); err == nil && len(ex) > 0 {
			return ex[0].Size
		}
	}
	return 0
}

func sameDir(a, b string) bool {
	x, err1 := filepath.Abs(a)
	y, err2 := filepath.Abs(b)
	return errors.Join(err1, err2) == nil && x == y
}

// difference is a − b for sorted name lists.
func difference(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
