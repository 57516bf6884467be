package rundir

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"

	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/results"
)

// CompareOptions configure the paired tests.
type CompareOptions struct {
	Seed      uint64  // seed of the bootstrap resamples
	Resamples int     // 0 means 2000
	Level     float64 // of the bootstrap interval; 0 means 0.95
	Workers   int     // 0 means GOMAXPROCS
}

// Row is the difference of one metric on one category (or the mean)
// between run A and run B.
type Row struct {
	Category string // "" for the mean over categories
	Metric   string
	A, B     metrics.Value
	Diff     metrics.Value // B − A
	// Bootstrap is the paired bootstrap of the image metrics; nil for the
	// others, and when Note says why it could not be computed.
	Bootstrap *metrics.BootstrapResult
	// DeLong is DeLong's test of image AUROC on one category; nil
	// otherwise.
	DeLong *metrics.DeLongResult
	Note   string
}

// Comparison is run B against run A.
type Comparison struct {
	A, B     *Run
	Options  CompareOptions
	Warnings []string
	Rows     []Row
}

type imageMetric struct {
	key  string
	pick metrics.ScoreMetric
}

// imageMetricOf returns how to compute an image metric from scores.
func imageMetricOf(key string) (metrics.ScoreMetric, bool) {
	for _, m := range imageMetrics {
		if m.key == key {
			return m.pick, true
		}
	}
	return nil, false
}

// imageMetrics are the metrics computed from the image scores, with the
// metrics function that picks each from a Binary.
var imageMetrics = []imageMetric{
	{results.ImageAUROC, metrics.ByAUROC},
	{results.ImageAP, metrics.ByAP},
	{results.ImageF1Max, metrics.ByF1Max},
}

// scoreTolerance is how far results.json and the metric recomputed from
// scores/*.csv may differ: the scores are written with every digit, so
// only float64 rounding separates them.
const scoreTolerance = 1e-9

// Compare computes, per category and for the mean, the difference B − A of
// every metric both runs report. The image metrics also get a paired
// bootstrap interval (resampling images within each label, and for the
// mean within each category and label) and image AUROC DeLong's test. The
// runs must be Comparable; its warnings are kept in the result.
func Compare(ctx context.Context, a, b *Run, opt CompareOptions) (*Comparison, error) {
	if opt.Resamples == 0 {
		opt.Resamples = 2000
	}
	if opt.Level == 0 {
		opt.Level = 0.95
	}
	paired, warnings, err := Comparable(a, b)
	if err != nil {
		return nil, err
	}
	c := &Comparison{A: a, B: b, Options: opt, Warnings: warnings}
	bopt := metrics.BootstrapOptions{Resamples: opt.Resamples, Level: opt.Level, Seed: opt.Seed, Workers: opt.Workers}
	cats := a.Results.CategoryNames()
	for _, cat := range cats {
		ea, eb := a.Results.Categories[cat], b.Results.Categories[cat]
		s := paired[cat]
		for _, key := range metricKeys(ea, eb) {
			row := diffRow(cat, key, ea, eb)
			if pick, ok := imageMetricOf(key); ok {
				if err := checkRecomputed(a, cat, key, ea, s[0], pick); err != nil {
					return nil, err
				}
				if err := checkRecomputed(b, cat, key, eb, s[1], pick); err != nil {
					return nil, err
				}
				br, err := metrics.BootstrapScores(ctx, s[0].Values, s[1].Values, s[0].Labels, pick, bopt)
				if err := keep(&row, err); err != nil {
					return nil, fmt.Errorf("rundir: %s: %s: %w", cat, key, err)
				}
				if err == nil {
					row.Bootstrap = &br
				}
				if key == results.ImageAUROC {
					dl, err := metrics.DeLong(s[0].Values, s[1].Values, s[0].Labels)
					if err := keep(&row, err); err != nil {
						return nil, fmt.Errorf("rundir: %s: DeLong: %w", cat, err)
					}
					if err == nil {
						row.DeLong = &dl
					}
				}
			}
			c.Rows = append(c.Rows, row)
		}
	}
	for _, key := range metricKeys(a.Results.Mean, b.Results.Mean) {
		row := diffRow("", key, a.Results.Mean, b.Results.Mean)
		if pick, ok := imageMetricOf(key); ok {
			br, err := meanBootstrap(ctx, a.Results, paired, pick, bopt)
			if err := keep(&row, err); err != nil {
				return nil, fmt.Errorf("rundir: mean %s: %w", key, err)
			}
			if err == nil {
				row.Bootstrap = &br
				if row.A.OK() && row.B.OK() && (math.Abs(br.A-row.A.V) > scoreTolerance || math.Abs(br.B-row.B.V) > scoreTolerance) {
					row.Note = joinNote(row.Note, "the interval is of the mean over the categories where both runs have a value")
				}
			}
			if key == results.ImageAUROC {
				row.Note = joinNote(row.Note, "DeLong's test compares two AUROCs, not means of several")
			}
		}
		c.Rows = append(c.Rows, row)
	}
	return c, nil
}

// keep records an undefined test as a note and returns any other error.
func keep(row *Row, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, metrics.ErrUndefined) {
		row.Note = joinNote(row.Note, err.Error())
		return nil
	}
	return err
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// metricKeys are the metrics of either entry: the standard ones in table
// order, then the others sorted.
func metricKeys(a, b *results.Entry) []string {
	have := map[string]bool{}
	for _, e := range []*results.Entry{a, b} {
		if e != nil {
			for k := range e.Metrics {
				have[k] = true
			}
		}
	}
	var keys []string
	for _, k := range results.StandardMetrics() {
		if have[k] {
			keys = append(keys, k)
			delete(have, k)
		}
	}
	var rest []string
	for k := range have {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	return append(keys, rest...)
}

// diffRow reads a metric of both runs and their difference.
func diffRow(cat, key string, ea, eb *results.Entry) Row {
	row := Row{Category: cat, Metric: key, A: valueOf(ea, key), B: valueOf(eb, key)}
	switch {
	case row.A.OK() && row.B.OK():
		row.Diff = metrics.Value{V: row.B.V - row.A.V}
	case !row.A.OK():
		row.Diff = metrics.Value{V: math.NaN(), Reason: "undefined in A: " + row.A.Reason}
	default:
		row.Diff = metrics.Value{V: math.NaN(), Reason: "undefined in B: " + row.B.Reason}
	}
	return row
}

func valueOf(e *results.Entry, key string) metrics.Value {
	if e == nil {
		return metrics.Value{V: math.NaN(), Reason: "no entry"}
	}
	if v, ok := e.Get(key); ok {
		return metrics.Value{V: v}
	}
	if r := e.Undefined[key]; r != "" {
		return metrics.Value{V: math.NaN(), Reason: r}
	}
	return metrics.Value{V: math.NaN(), Reason: "not reported"}
}

// checkRecomputed makes sure the scores file is the one the results came
// from: the metric recomputed from it must match results.json.
func checkRecomputed(r *Run, cat, key string, e *results.Entry, s *Scores, pick metrics.ScoreMetric) error {
	bin, err := metrics.BinaryScores(s.Values, s.Labels)
	if err != nil {
		return fmt.Errorf("rundir: %s: scores of %s: %w", r.Dir, cat, err)
	}
	got := pick(bin)
	want := valueOf(e, key)
	if got.OK() != want.OK() || (got.OK() && math.Abs(got.V-want.V) > scoreTolerance) {
		return fmt.Errorf("rundir: %s: scores/%s.csv gives %s %v but %s says %v: the files are from different runs",
			r.Dir, results.CategoryFile(cat), key, got.V, filepath.Base(r.Path), want.V)
	}
	return nil
}

// meanBootstrap is the paired bootstrap of the unweighted mean over
// categories: each replicate resamples images within every category and
// label, computes the metric per category, and averages. Categories where
// the metric is undefined for A or B on the full sample are left out, as
// the results' mean leaves them out.
func meanBootstrap(ctx context.Context, r *results.Results, paired map[string][2]*Scores, pick metrics.ScoreMetric, opt metrics.BootstrapOptions) (metrics.BootstrapResult, error) {
	var sa, sb []float64
	var labels []bool
	var catOf, strata []int
	ncat := 0
	for _, cat := range r.CategoryNames() {
		s := paired[cat]
		defined := true
		for _, x := range s {
			bin, err := metrics.BinaryScores(x.Values, x.Labels)
			if err != nil {
				return metrics.BootstrapResult{}, err
			}
			defined = defined && pick(bin).OK()
		}
		if !defined {
			continue
		}
		sa = append(sa, s[0].Values...)
		sb = append(sb, s[1].Values...)
		labels = append(labels, s[0].Labels...)
		for _, l := range s[0].Labels {
			catOf = append(catOf, ncat)
			k := 2 * ncat
			if l {
				k++
			}
			strata = append(strata, k)
		}
		ncat++
	}
	if ncat == 0 {
		return metrics.BootstrapResult{}, &metrics.UndefinedError{Metric: "mean", Reason: "undefined in every category"}
	}
	of := func(s []float64) metrics.Metric {
		return func(idx []int) (float64, error) {
			xs := make([][]float64, ncat)
			ls := make([][]bool, ncat)
			for _, j := range idx {
				k := catOf[j]
				xs[k], ls[k] = append(xs[k], s[j]), append(ls[k], labels[j])
			}
			var sum float64
			for k := range xs {
				bin, err := metrics.BinaryScores(xs[k], ls[k])
				if err != nil {
					return 0, err
				}
				v := pick(bin)
				if err := v.Err("bootstrap metric"); err != nil {
					return 0, err
				}
				sum += v.V
			}
			return sum / float64(ncat), nil
		}
	}
	return metrics.PairedBootstrap(ctx, len(labels), strata, of(sa), of(sb), opt)
}
