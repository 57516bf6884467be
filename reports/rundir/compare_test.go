package rundir

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/reports/internal/runtest"
	"github.com/dapobench/dapobench/results"
)

func twoRuns(t *testing.T, b runtest.Spec) (*Run, *Run) {
	t.Helper()
	a := runtest.Spec{Dataset: "mvtec", Scheme: "dapo", AUPRO: "cflow200", MapSize: 8,
		Cats: map[string]runtest.Category{"bottle": runtest.Bottle(0), "screw": runtest.Screw(0)}}
	if b.Dataset == "" {
		b.Dataset = a.Dataset
	}
	if b.AUPRO == "" {
		b.AUPRO = a.AUPRO
	}
	if b.Cats == nil {
		b.Cats = map[string]runtest.Category{"bottle": runtest.Bottle(0.2), "screw": runtest.Screw(0.3)}
	}
	return writeRun(t, filepath.Join(t.TempDir(), "a"), a), writeRun(t, filepath.Join(t.TempDir(), "b"), b)
}

func findRow(t *testing.T, c *Comparison, cat, metric string) Row {
	t.Helper()
	for _, r := range c.Rows {
		if r.Category == cat && r.Metric == metric {
			return r
		}
	}
	t.Fatalf("no row %q %s", cat, metric)
	return Row{}
}

func TestCompare(t *testing.T) {
	a, b := twoRuns(t, runtest.Spec{Scheme: "dapo/e1", MapSize: 8})
	opt := CompareOptions{Seed: 7, Resamples: 500}
	c, err := Compare(context.Background(), a, b, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings %v", c.Warnings)
	}
	// Every metric of both runs, per category and mean.
	if want := 2*4 + 4; len(c.Rows) != want {
		t.Errorf("%d rows, want %d", len(c.Rows), want)
	}
	for _, r := range c.Rows {
		if !r.A.OK() || !r.B.OK() || math.Abs(r.Diff.V-(r.B.V-r.A.V)) > 1e-15 {
			t.Errorf("%s %s: A %v B %v Δ %v", r.Category, r.Metric, r.A, r.B, r.Diff)
		}
		_, image := imageMetricOf(r.Metric)
		if image != (r.Bootstrap != nil) {
			t.Errorf("%s %s: bootstrap %v", r.Category, r.Metric, r.Bootstrap)
		}
		if (r.Metric == results.ImageAUROC && r.Category != "") != (r.DeLong != nil) {
			t.Errorf("%s %s: DeLong %v", r.Category, r.Metric, r.DeLong)
		}
	}
	// The tests run on the stored scores: their full-sample values are the
	// results' values.
	r := findRow(t, c, "bottle", results.ImageAUROC)
	if math.Abs(r.Bootstrap.A-r.A.V) > 1e-12 || math.Abs(r.DeLong.AUROCB-r.B.V) > 1e-12 {
		t.Errorf("bootstrap %+v, DeLong %+v for A %v, B %v", r.Bootstrap, r.DeLong, r.A, r.B)
	}
	if !(r.Bootstrap.DiffLo <= r.Diff.V && r.Diff.V <= r.Bootstrap.DiffHi) || r.Bootstrap.Resamples != 500 {
		t.Errorf("interval [%v, %v] of %d resamples for Δ %v", r.Bootstrap.DiffLo, r.Bootstrap.DiffHi, r.Bootstrap.Resamples, r.Diff.V)
	}
	m := findRow(t, c, "", results.ImageAP)
	if math.Abs(m.Bootstrap.A-m.A.V) > 1e-12 || math.Abs(m.Bootstrap.B-m.B.V) > 1e-12 {
		t.Errorf("mean bootstrap %+v for A %v, B %v", m.Bootstrap, m.A, m.B)
	}
	if m := findRow(t, c, "", results.ImageAUROC); !strings.Contains(m.Note, "DeLong") {
		t.Errorf("mean AUROC note %q", m.Note)
	}

	// Seeded: the same seed gives the same intervals, another seed others.
	again, err := Compare(context.Background(), a, b, opt)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Compare(context.Background(), a, b, CompareOptions{Seed: 8, Resamples: 500, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	same, differ := true, false
	for i := range c.Rows {
		if x, y := c.Rows[i].Bootstrap, again.Rows[i].Bootstrap; x != nil && *x != *y {
			same = false
		}
		if x, y := c.Rows[i].Bootstrap, other.Rows[i].Bootstrap; x != nil && (x.DiffLo != y.DiffLo || x.DiffHi != y.DiffHi) {
			differ = true
		}
	}
	if !same || !differ {
		t.Errorf("same seed reproduces: %v; another seed differs: %v", same, differ)
	}
}

// TestCompareMeanOfOne checks the mean's bootstrap against the category's:
// with one category, both resample the same images with the same streams.
func TestCompareMeanOfOne(t *testing.T) {
	a, b := twoRuns(t, runtest.Spec{Scheme: "dapo/e1", MapSize: 8, Cats: map[string]runtest.Category{"bottle": runtest.Bottle(0.2)}})
	delete(a.Results.Categories, "screw")
	a.Results.ComputeMean()
	c, err := Compare(context.Background(), a, b, CompareOptions{Seed: 3, Resamples: 300})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range imageMetrics {
		x, y := findRow(t, c, "bottle", m.key), findRow(t, c, "", m.key)
		if *x.Bootstrap != *y.Bootstrap {
			t.Errorf("%s: category %+v, mean %+v", m.key, *x.Bootstrap, *y.Bootstrap)
		}
	}
}

func TestCompareUndefined(t *testing.T) {
	one := runtest.Category{Images: []string{"x/1.png", "x/2.png"}, Labels: []bool{false, false}, Defects: []string{"", ""}, Scores: []float64{0.1, 0.2}}
	a := writeRun(t, filepath.Join(t.TempDir(), "a"), runtest.Spec{Dataset: "mvtec", Scheme: "a", Cats: map[string]runtest.Category{"x": one, "bottle": runtest.Bottle(0)}})
	b := writeRun(t, filepath.Join(t.TempDir(), "b"), runtest.Spec{Dataset: "mvtec", Scheme: "b", Cats: map[string]runtest.Category{"x": one, "bottle": runtest.Bottle(0.1)}})
	c, err := Compare(context.Background(), a, b, CompareOptions{Seed: 1, Resamples: 100})
	if err != nil {
		t.Fatal(err)
	}
	r := findRow(t, c, "x", results.ImageAUROC)
	if r.A.OK() || r.Diff.OK() || r.Bootstrap != nil || r.DeLong != nil || !strings.Contains(r.Note, "one class") {
		t.Errorf("one-class category: %+v", r)
	}
	// The mean is over bottle only, as in results.json.
	m := findRow(t, c, "", results.ImageAUROC)
	if m.Bootstrap == nil || math.Abs(m.Bootstrap.A-m.A.V) > 1e-12 {
		t.Errorf("mean: %+v", m)
	}
}

func TestNotComparable(t *testing.T) {
	for _, c := range []struct {
		name string
		b    runtest.Spec
		want []string
	}{
		{"dataset", runtest.Spec{Dataset: "visa"}, []string{"dataset: A is mvtec, B is visa"}},
		{"categories", runtest.Spec{Cats: map[string]runtest.Category{"bottle": runtest.Bottle(0), "cable": runtest.Screw(0)}},
			[]string{"categories only in A: screw", "categories only in B: cable"}},
		{"images", runtest.Spec{Cats: map[string]runtest.Category{"bottle": runtest.Bottle(0), "screw": func() runtest.Category {
			c := runtest.Screw(0)
			c.Images[4] = "screw/test/good/other.png"
			return c
		}()}}, []string{"screw: images differ in 1 of 9 rows; first at row 6 of scores/screw.csv: A has screw/test/good/4.png, B has screw/test/good/other.png"}},
		{"labels and defects", runtest.Spec{Cats: map[string]runtest.Category{"screw": runtest.Screw(0), "bottle": func() runtest.Category {
			c := runtest.Bottle(0)
			c.Labels[0], c.Labels[7] = true, false
			c.Defects[0] = "broken"
			return c
		}()}}, []string{"bottle: labels differ in 2 of 12 rows; first at row 2", "bottle: defect types differ in 1 of 12 rows"}},
		{"count", runtest.Spec{Cats: map[string]runtest.Category{"screw": runtest.Screw(0), "bottle": func() runtest.Category {
			c := runtest.Bottle(0)
			c.Images, c.Labels, c.Defects, c.Scores = c.Images[1:], c.Labels[1:], c.Defects[1:], c.Scores[1:]
			return c
		}()}}, []string{"bottle: n_normal is 7 in A, 6 in B", "bottle: 12 test images in A, 11 in B"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := twoRuns(t, c.b)
			_, err := Compare(context.Background(), a, b, CompareOptions{})
			var nc *NotComparableError
			if !errors.As(err, &nc) {
				t.Fatalf("error %v, want NotComparableError", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nwant %q", err, w)
				}
			}
		})
	}
}

func TestCompareWarnings(t *testing.T) {
	a, b := twoRuns(t, runtest.Spec{Scheme: "dapo", AUPRO: "mvtec", MapSize: 16})
	c, err := Compare(context.Background(), a, b, CompareOptions{Resamples: 50})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"pixel_aupro: A uses the cflow200 variant, B the mvtec variant", "A was evaluated at 8×8, B at 16×16"}
	if len(c.Warnings) != len(want) {
		t.Fatalf("warnings %q", c.Warnings)
	}
	for i, w := range want {
		if !strings.Contains(c.Warnings[i], w) {
			t.Errorf("warning %q, want %q", c.Warnings[i], w)
		}
	}
}

func TestCompareScoresFromAnotherRun(t *testing.T) {
	a, b := twoRuns(t, runtest.Spec{Scheme: "dapo/e1"})
	// Replace B's scores with A's: results.json no longer matches.
	src, _ := os.ReadFile(filepath.Join(a.Dir, "scores", "bottle.csv"))
	os.WriteFile(filepath.Join(b.Dir, "scores", "bottle.csv"), src, 0o644)
	_, err := Compare(context.Background(), a, b, CompareOptions{Resamples: 50})
	if err == nil || !strings.Contains(err.Error(), "scores/bottle.csv gives image_auroc") {
		t.Errorf("error %v", err)
	}
	var u *metrics.UndefinedError
	if errors.As(err, &u) {
		t.Errorf("bad input reported as undefined: %v", err)
	}
}
