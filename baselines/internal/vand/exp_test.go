package vand

import (
	"math"
	"testing"
)

func TestExpNeg(t *testing.T) {
	worst := 0.0
	for i := 0; i <= 2_000_000; i++ {
		x := -float64(i) * 700 / 2_000_000
		got, want := expNeg(x), math.Exp(x)
		if want == 0 {
			continue
		}
		worst = math.Max(worst, math.Abs(got-want)/want)
	}
	if worst > 1e-10 {
		t.Errorf("relative error up to %.3g", worst)
	}
	if expNeg(0) != 1 || expNeg(-800) != 0 {
		t.Errorf("expNeg(0) = %v, expNeg(-800) = %v", expNeg(0), expNeg(-800))
	}
	t.Logf("relative error up to %.2g on [-700, 0]", worst)
}

func BenchmarkExpNeg(b *testing.B) {
	s := 0.0
	for i := 0; b.Loop(); i++ {
		s += expNeg(-float64(i%1000) * 0.1)
	}
	_ = s
}

func BenchmarkMathExp(b *testing.B) {
	s := 0.0
	for i := 0; b.Loop(); i++ {
		s += math.Exp(-float64(i%1000) * 0.1)
	}
	_ = s
}
