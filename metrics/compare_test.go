package metrics

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

func TestParityDeLong(t *testing.T) {
	var ref struct {
		Cases []struct {
			Name   string    `json:"name"`
			A      []float64 `json:"a"`
			B      []float64 `json:"b"`
			Labels []int     `json:"labels"`
			AUROCA float64   `json:"auroc_a"`
			AUROCB float64   `json:"auroc_b"`
			VarA   float64   `json:"var_a"`
			VarB   float64   `json:"var_b"`
			Cov    float64   `json:"cov"`
			Z      float64   `json:"z"`
			P      float64   `json:"p"`
			SkA    float64   `json:"sklearn_auroc_a"`
		} `json:"cases"`
	}
	readJSON(t, "delong.json", &ref)
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			labels := make([]bool, len(c.Labels))
			for i, l := range c.Labels {
				labels[i] = l == 1
			}
			r, err := DeLong(c.A, c.B, labels)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range []struct {
				name      string
				got, want float64
			}{
				{"AUROC A", r.AUROCA, c.AUROCA}, {"AUROC A (sklearn)", r.AUROCA, c.SkA},
				{"AUROC B", r.AUROCB, c.AUROCB}, {"var A", r.VarA, c.VarA}, {"var B", r.VarB, c.VarB},
				{"cov", r.Cov, c.Cov}, {"z", r.Z, c.Z}, {"p", r.P.V, c.P},
			} {
				if d := math.Abs(x.got - x.want); !(d <= 1e-12*max(1, math.Abs(x.want))) {
					t.Errorf("%s = %.17g, reference %.17g", x.name, x.got, x.want)
				}
			}
		})
	}
}

func TestDeLongUndefined(t *testing.T) {
	_, err := DeLong([]float64{1, 2, 3}, []float64{1, 2, 3}, []bool{true, false, false})
	if !errors.Is(err, ErrUndefined) {
		t.Errorf("one positive: %v, want ErrUndefined", err)
	}
	s := []float64{0.1, 0.2, 0.3, 0.4}
	r, err := DeLong(s, s, []bool{false, true, false, true})
	if err != nil {
		t.Fatal(err)
	}
	if r.P.OK() || r.Diff != 0 {
		t.Errorf("identical scores: p %v (%q), diff %v; want an undefined p", r.P.V, r.P.Reason, r.Diff)
	}
	if _, err := DeLong([]float64{math.NaN(), 1, 2, 3}, s, []bool{false, true, false, true}); !errors.Is(err, ErrNonFinite) {
		t.Errorf("NaN score: %v", err)
	}
}

func bootstrapData(n int) (a, b []float64, labels []bool) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < n; i++ {
		l := rng.IntN(3) == 0
		x := rng.NormFloat64()
		if l {
			x += 1
		}
		a = append(a, x)
		b = append(b, x+0.5*rng.NormFloat64()+map[bool]float64{true: 0.3}[l])
		labels = append(labels, l)
	}
	return a, b, labels
}

func TestBootstrapReproducible(t *testing.T) {
	a, b, labels := bootstrapData(120)
	ctx := context.Background()
	run := func(seed uint64, workers int) BootstrapResult {
		r, err := BootstrapScores(ctx, a, b, labels, ByAUROC, BootstrapOptions{Resamples: 300, Seed: seed, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r1, r2, r4 := run(1, 1), run(1, 2), run(1, 4)
	if r1 != r2 || r1 != r4 {
		t.Errorf("results depend on the number of workers:\n%+v\n%+v\n%+v", r1, r2, r4)
	}
	if r5 := run(5, 2); r5 == r1 {
		t.Error("another seed gave the same intervals")
	}
	full, _ := BinaryScores(b, labels)
	fullA, _ := BinaryScores(a, labels)
	if r1.B != full.AUROC.V || r1.A != fullA.AUROC.V || r1.Diff != r1.B-r1.A {
		t.Errorf("point estimates %v, %v; want the full-sample AUROCs %v, %v", r1.A, r1.B, fullA.AUROC.V, full.AUROC.V)
	}
	if !(r1.DiffLo <= r1.Diff && r1.Diff <= r1.DiffHi && r1.ALo <= r1.A && r1.A <= r1.AHi) {
		t.Errorf("intervals do not contain the estimates: %+v", r1)
	}
	if r1.Resamples != 300 || r1.Undefined != 0 || !(r1.P >= 0 && r1.P <= 1) {
		t.Errorf("resamples %d, undefined %d, p %v", r1.Resamples, r1.Undefined, r1.P)
	}
}

// TestBootstrapCoverage checks the statistics, not just the plumbing: for
// the mean of a normal sample the 90% percentile interval must contain the
// true mean in about 90% of independent experiments.
func TestBootstrapCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	const experiments, n = 200, 60
	hits := 0
	for e := 0; e < experiments; e++ {
		x := make([]float64, n)
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		meanOf := func(idx []int) (float64, error) {
			var s float64
			for _, i := range idx {
				s += x[i]
			}
			return s / float64(len(idx)), nil
		}
		zero := func([]int) (float64, error) { return 0, nil }
		r, err := PairedBootstrap(context.Background(), n, nil, zero, meanOf,
			BootstrapOptions{Resamples: 400, Level: 0.9, Seed: uint64(e), Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.BLo <= 0 && 0 <= r.BHi {
			hits++
		}
	}
	if cov := float64(hits) / experiments; cov < 0.82 || cov > 0.97 {
		t.Errorf("90%% intervals covered the mean in %.0f%% of experiments", 100*cov)
	}
}

func TestBootstrapErrors(t *testing.T) {
	ctx := context.Background()
	undef := func([]int) (float64, error) { return 0, &UndefinedError{Metric: "x", Reason: "always"} }
	one := func([]int) (float64, error) { return 1, nil }
	var calls atomic.Int32
	sometimes := func(idx []int) (float64, error) {
		if calls.Add(1)%3 == 0 {
			return 0, &UndefinedError{Metric: "x", Reason: "sometimes"}
		}
		return 1, nil
	}
	if _, err := PairedBootstrap(ctx, 10, nil, one, undef, BootstrapOptions{Resamples: 20}); !errors.Is(err, ErrUndefined) {
		t.Errorf("always undefined on the full sample: %v", err)
	}
	r, err := PairedBootstrap(ctx, 10, nil, one, sometimes, BootstrapOptions{Resamples: 30, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Undefined == 0 || r.Resamples+r.Undefined != 30 {
		t.Errorf("undefined replicates not counted: %+v", r)
	}
	boom := errors.New("boom")
	fail := func(idx []int) (float64, error) {
		if len(idx) > 0 && calls.Add(1) > 5 {
			return 0, boom
		}
		return 1, nil
	}
	if _, err := PairedBootstrap(ctx, 10, nil, one, fail, BootstrapOptions{Resamples: 50}); !errors.Is(err, boom) {
		t.Errorf("failing metric: %v", err)
	}
	if _, err := PairedBootstrap(ctx, 10, []int{1}, one, one, BootstrapOptions{}); !errors.Is(err, ErrShape) {
		t.Errorf("short strata: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := PairedBootstrap(cctx, 10, nil, one, one, BootstrapOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
