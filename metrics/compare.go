package metrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
)

// DeLongResult is DeLong's test of two correlated AUROCs computed on the
// same samples (DeLong, DeLong & Clarke-Pearson 1988), with the structural
// components computed from mid-ranks (Sun & Xu 2014).
type DeLongResult struct {
	AUROCA, AUROCB float64
	Diff           float64 // AUROCB − AUROCA
	VarA, VarB     float64 // variances of the two AUROCs
	Cov            float64 // their covariance
	SE             float64 // standard error of Diff
	Z              float64 // Diff / SE
	P              Value   // two-sided p-value; undefined when SE is 0
}

// DeLong compares the AUROCs of scores a and b of the same samples.
func DeLong(a, b []float64, labels []bool) (DeLongResult, error) {
	if len(a) != len(labels) || len(b) != len(labels) {
		return DeLongResult{}, fmt.Errorf("metrics: DeLong: %d and %d scores for %d labels: %w", len(a), len(b), len(labels), ErrShape)
	}
	var m, n int
	for _, l := range labels {
		if l {
			m++
		} else {
			n++
		}
	}
	if m < 2 || n < 2 {
		return DeLongResult{}, &UndefinedError{Metric: "DeLong test",
			Reason: fmt.Sprintf("needs at least 2 positives and 2 negatives, have %d and %d", m, n)}
	}
	v10a, v01a, aucA, err := placements(a, labels, m, n)
	if err != nil {
		return DeLongResult{}, fmt.Errorf("metrics: DeLong: scores A: %w", err)
	}
	v10b, v01b, aucB, err := placements(b, labels, m, n)
	if err != nil {
		return DeLongResult{}, fmt.Errorf("metrics: DeLong: scores B: %w", err)
	}
	s10 := cov2(v10a, v10b)
	s01 := cov2(v01a, v01b)
	r := DeLongResult{AUROCA: aucA, AUROCB: aucB, Diff: aucB - aucA}
	r.VarA = s10[0]/float64(m) + s01[0]/float64(n)
	r.VarB = s10[2]/float64(m) + s01[2]/float64(n)
	r.Cov = s10[1]/float64(m) + s01[1]/float64(n)
	v := r.VarA + r.VarB - 2*r.Cov
	if !(v > 0) {
		r.SE, r.Z = 0, math.NaN()
		r.P = undefined("the difference has zero variance (identical or perfectly separating scores)")
		return r, nil
	}
	r.SE = math.Sqrt(v)
	r.Z = r.Diff / r.SE
	r.P = defined(math.Erfc(math.Abs(r.Z) / math.Sqrt2))
	return r, nil
}

// placements returns the structural components of one score set: for each
// positive the fraction of negatives it outranks (ties ½), for each
// negative the fraction of positives it is outranked by, and the AUROC.
func placements(s []float64, labels []bool, m, n int) (v10, v01 []float64, auc float64, err error) {
	for i, x := range s {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, nil, 0, fmt.Errorf("score %d is %v: %w", i, x, ErrNonFinite)
		}
	}
	all := midranks(s, nil)
	pos := midranks(s, func(i int) bool { return labels[i] })
	neg := midranks(s, func(i int) bool { return !labels[i] })
	var sum float64
	for i, l := range labels {
		if l {
			v := (all[i] - pos[i]) / float64(n)
			v10 = append(v10, v)
			sum += v
		} else {
			v01 = append(v01, 1-(all[i]-neg[i])/float64(m))
		}
	}
	return v10, v01, sum / float64(m), nil
}

// midranks returns the 1-based mid-ranks of the samples selected by keep
// (all when nil), indexed like s; unselected entries are 0.
func midranks(s []float64, keep func(int) bool) []float64 {
	idx := make([]int, 0, len(s))
	for i := range s {
		if keep == nil || keep(i) {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(s[a], s[b]) })
	r := make([]float64, len(s))
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && s[idx[j]] == s[idx[i]] {
			j++
		}
		mid := float64(i+j+1) / 2 // ranks i+1 .. j
		for k := i; k < j; k++ {
			r[idx[k]] = mid
		}
		i = j
	}
	return r
}

// cov2 returns the unbiased covariance matrix of (x, y) as [xx, xy, yy].
func cov2(x, y []float64) [3]float64 {
	mx, my := mean(x), mean(y)
	var sxx, sxy, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxx += dx * dx
		sxy += dx * dy
		syy += dy * dy
	}
	d := float64(len(x) - 1)
	return [3]float64{sxx / d, sxy / d, syy / d}
}

// BootstrapOptions configures PairedBootstrap.
type BootstrapOptions struct {
	Resamples int     // replicates; 0 means 2000
	Level     float64 // confidence level; 0 means 0.95
	Seed      uint64  // replicate r draws from PCG(Seed, r)
	Workers   int     // goroutines; 0 means GOMAXPROCS
}

// BootstrapResult is a paired bootstrap comparison of two methods.
type BootstrapResult struct {
	A, B, Diff     float64 // on the full sample; Diff = B − A
	ALo, AHi       float64 // percentile interval of A
	BLo, BHi       float64 // percentile interval of B
	DiffLo, DiffHi float64 // percentile interval of B − A
	// P is the two-sided bootstrap p-value of B − A = 0: twice the smaller
	// fraction of replicates on either side of 0, capped at 1.
	P         float64
	Resamples int // replicates used
	Undefined int // replicates dropped because a metric was undefined
}

// Metric computes a metric on the units idx (a resample: indices may
// repeat). It must be safe for concurrent use.
type Metric func(idx []int) (float64, error)

// PairedBootstrap resamples n units (images, say) with replacement and
// evaluates both methods on the same resample, so that the interval of the
// difference accounts for their correlation. strata (nil, or one label per
// unit) makes each resample keep the number of units per stratum, so that
// both classes are present for AUROC. Replicate r uses its own PCG stream
// seeded with (Seed, r), so the result does not depend on Workers.
func PairedBootstrap(ctx context.Context, n int, strata []int, a, b Metric, opt BootstrapOptions) (BootstrapResult, error) {
	if opt.Resamples == 0 {
		opt.Resamples = 2000
	}
	if opt.Level == 0 {
		opt.Level = 0.95
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if n <= 0 || opt.Resamples < 2 || !(opt.Level > 0 && opt.Level < 1) || (strata != nil && len(strata) != n) {
		return BootstrapResult{}, fmt.Errorf("metrics: bootstrap: %d units, %d strata labels, %d resamples, level %v: %w",
			n, len(strata), opt.Resamples, opt.Level, ErrShape)
	}
	groups := map[int][]int{}
	var keys []int
	for i := 0; i < n; i++ {
		k := 0
		if strata != nil {
			k = strata[i]
		}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	slices.Sort(keys)

	full := make([]int, n)
	for i := range full {
		full[i] = i
	}
	var r BootstrapResult
	var err error
	if r.A, err = a(full); err != nil {
		return BootstrapResult{}, fmt.Errorf("metrics: bootstrap: method A on the full sample: %w", err)
	}
	if r.B, err = b(full); err != nil {
		return BootstrapResult{}, fmt.Errorf("metrics: bootstrap: method B on the full sample: %w", err)
	}
	r.Diff = r.B - r.A

	type rep struct {
		a, b float64
		ok   bool
	}
	reps := make([]rep, opt.Resamples)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for w := 0; w < opt.Workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			idx := make([]int, n)
			for i := w; i < opt.Resamples; i += opt.Workers {
				if ctx.Err() != nil {
					return
				}
				rng := rand.New(rand.NewPCG(opt.Seed, uint64(i)))
				o := 0
				for _, k := range keys {
					g := groups[k]
					for range g {
						idx[o] = g[rng.IntN(len(g))]
						o++
					}
				}
				va, ea := a(idx)
				vb, eb := b(idx)
				if ea != nil || eb != nil {
					if (ea == nil || errors.Is(ea, ErrUndefined)) && (eb == nil || errors.Is(eb, ErrUndefined)) {
						continue // an undefined replicate is counted, not fatal
					}
					once.Do(func() {
						firstErr = fmt.Errorf("metrics: bootstrap replicate %d: %w", i, errors.Join(ea, eb))
						cancel()
					})
					return
				}
				reps[i] = rep{va, vb, true}
			}
		}(w)
	}
	wg.Wait()
	if firstErr != nil {
		return BootstrapResult{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return BootstrapResult{}, err
	}
	var as, bs, ds []float64
	var below, above int
	for _, x := range reps {
		if !x.ok {
			r.Undefined++
			continue
		}
		as, bs, ds = append(as, x.a), append(bs, x.b), append(ds, x.b-x.a)
		if x.b-x.a <= 0 {
			below++
		}
		if x.b-x.a >= 0 {
			above++
		}
	}
	r.Resamples = len(ds)
	if r.Resamples < 2 {
		return BootstrapResult{}, &UndefinedError{Metric: "bootstrap", Reason: fmt.Sprintf("only %d of %d replicates defined", r.Resamples, opt.Resamples)}
	}
	lo, hi := (1-opt.Level)/2, 1-(1-opt.Level)/2
	r.ALo, r.AHi = percentile(as, lo), percentile(as, hi)
	r.BLo, r.BHi = percentile(bs, lo), percentile(bs, hi)
	r.DiffLo, r.DiffHi = percentile(ds, lo), percentile(ds, hi)
	r.P = min(1, 2*float64(min(below, above))/float64(r.Resamples))
	return r, nil
}

// percentile is numpy.percentile's default ("linear") at fraction q; it
// sorts xs.
func percentile(xs []float64, q float64) float64 {
	slices.Sort(xs)
	h := q * float64(len(xs)-1)
	i := int(math.Floor(h))
	if i+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[i] + (h-float64(i))*(xs[i+1]-xs[i])
}

// ScoreMetric picks one metric of a Binary, e.g. AUROC or AP.
type ScoreMetric func(Binary) Value

// ByAUROC picks AUROC.
func ByAUROC(b Binary) Value { return b.AUROC }

// ByAP picks AP.
func ByAP(b Binary) Value { return b.AP }

// ByF1Max picks F1-max.
func ByF1Max(b Binary) Value { return b.F1Max }

// BootstrapScores is PairedBootstrap over samples with image-level scores a
// and b, stratified by label, for a metric of their Binary results.
func BootstrapScores(ctx context.Context, a, b []float64, labels []bool, metric ScoreMetric, opt BootstrapOptions) (BootstrapResult, error) {
	if len(a) != len(labels) || len(b) != len(labels) {
		return BootstrapResult{}, fmt.Errorf("metrics: bootstrap: %d and %d scores for %d labels: %w", len(a), len(b), len(labels), ErrShape)
	}
	strata := make([]int, len(labels))
	for i, l := range labels {
		if l {
			strata[i] = 1
		}
	}
	of := func(s []float64) Metric {
		return func(idx []int) (float64, error) {
			xs := make([]float64, len(idx))
			ls := make([]bool, len(idx))
			for i, j := range idx {
				xs[i], ls[i] = s[j], labels[j]
			}
			r, err := BinaryScores(xs, ls)
			if err != nil {
				return 0, err
			}
			v := metric(r)
			return v.V, v.Err("bootstrap metric")
		}
	}
	return PairedBootstrap(ctx, len(labels), strata, of(a), of(b), opt)
}
