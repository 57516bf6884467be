package figures

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dapobench/dapobench/metrics"
)

// scoreSets are labelled scores with and without ties.
func scoreSets() map[string]struct {
	s []float64
	l []bool
} {
	rng := rand.New(rand.NewPCG(1, 2))
	var rs []float64
	var rl []bool
	for i := 0; i < 200; i++ {
		pos := rng.IntN(3) == 0
		v := rng.NormFloat64()
		if pos {
			v += 1
		}
		rs = append(rs, math.Round(v*4)/4) // many ties
		rl = append(rl, pos)
	}
	return map[string]struct {
		s []float64
		l []bool
	}{
		"perfect":  {[]float64{0.9, 0.8, 0.2, 0.1}, []bool{true, true, false, false}},
		"inverted": {[]float64{0.1, 0.2, 0.8, 0.9}, []bool{true, true, false, false}},
		"all tied": {[]float64{0.5, 0.5, 0.5, 0.5, 0.5}, []bool{true, false, true, false, false}},
		"mixed":    {[]float64{0.3, 0.7, 0.7, 0.1, 0.9, 0.4}, []bool{false, true, false, false, true, true}},
		"random":   {rs, rl},
	}
}

// TestCurveAreas checks that the drawn curves are the metrics: the
// trapezoidal area under ROC is the AUROC, the area under the PR steps is
// the AP.
func TestCurveAreas(t *testing.T) {
	for name, c := range scoreSets() {
		b, err := metrics.BinaryScores(c.s, c.l)
		if err != nil {
			t.Fatal(err)
		}
		fpr, tpr, err := ROC(c.s, c.l)
		if err != nil {
			t.Fatal(err)
		}
		if fpr[0] != 0 || tpr[0] != 0 || fpr[len(fpr)-1] != 1 || tpr[len(tpr)-1] != 1 {
			t.Errorf("%s: ROC from (%v,%v) to (%v,%v)", name, fpr[0], tpr[0], fpr[len(fpr)-1], tpr[len(tpr)-1])
		}
		var auc float64
		for i := 1; i < len(fpr); i++ {
			if fpr[i] < fpr[i-1] || tpr[i] < tpr[i-1] {
				t.Errorf("%s: ROC not monotone at %d", name, i)
			}
			auc += (fpr[i] - fpr[i-1]) * (tpr[i] + tpr[i-1]) / 2
		}
		if math.Abs(auc-b.AUROC.V) > 1e-12 {
			t.Errorf("%s: ROC area %v, AUROC %v", name, auc, b.AUROC.V)
		}
		rec, prec, err := PR(c.s, c.l)
		if err != nil {
			t.Fatal(err)
		}
		var ap float64
		for i := 1; i < len(rec); i++ {
			ap += (rec[i] - rec[i-1]) * prec[i]
		}
		if math.Abs(ap-b.AP.V) > 1e-12 {
			t.Errorf("%s: PR step area %v, AP %v", name, ap, b.AP.V)
		}
		if rec[len(rec)-1] != 1 {
			t.Errorf("%s: PR ends at recall %v", name, rec[len(rec)-1])
		}
	}
}

func TestCurveErrors(t *testing.T) {
	for _, c := range []struct {
		name      string
		s         []float64
		l         []bool
		undefined bool
	}{
		{"normal only", []float64{0.1, 0.2}, []bool{false, false}, true},
		{"anomalous only", []float64{0.1, 0.2}, []bool{true, true}, true},
		{"NaN score", []float64{0.1, math.NaN()}, []bool{true, false}, false},
		{"length mismatch", []float64{0.1}, []bool{true, false}, false},
	} {
		for _, f := range []func([]float64, []bool) ([]float64, []float64, error){ROC, PR} {
			_, _, err := f(c.s, c.l)
			if err == nil {
				t.Errorf("%s: no error", c.name)
				continue
			}
			if IsUndefined(err) != c.undefined {
				t.Errorf("%s: IsUndefined(%v) = %v", c.name, err, !c.undefined)
			}
		}
	}
}
