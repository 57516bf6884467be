package metrics

import (
	"fmt"
	"math"
)

// AUPROVariant names one of the two AU-PRO definitions in use. Papers rarely
// say which one they report, and the two differ (by ~1e-4 on smooth maps,
// more on coarse ones), so results always carry the name.
type AUPROVariant string

const (
	// AUPROMVTec is the official MVTec AD evaluation: the exact PRO curve
	// over every distinct threshold, 8-connected regions, integrated up to
	// FPR 0.3 with linear interpolation at the limit, divided by 0.3.
	AUPROMVTec AUPROVariant = "mvtec"
	// AUPROCflow200 is cal_pro_score of AnomalyCLIP, APRIL-GAN and DAPO
	// (credited to cflow-ad): 200 thresholds from the category's minimum,
	// FPR < 0.3 strictly, the kept FPRs rescaled by their own min–max.
	AUPROCflow200 AUPROVariant = "cflow200"
)

// ParseAUPROVariant checks a variant name.
func ParseAUPROVariant(s string) (AUPROVariant, error) {
	switch v := AUPROVariant(s); v {
	case AUPROMVTec, AUPROCflow200:
		return v, nil
	}
	return "", fmt.Errorf("metrics: unknown AUPRO variant %q (want %q or %q)", s, AUPROMVTec, AUPROCflow200)
}

// cal_pro_score's fixed parameters (docs/evaluation.md#aupro-cflow200).
const (
	cflowSteps  = 200 // max_step
	cflowMaxFPR = 0.3 // expect_fpr, compared with <
)

func cflowUndefined(noRegions bool, regions int, neg uint64) string {
	switch {
	case noRegions:
		return "regions were not labelled (NoRegions)"
	case regions == 0:
		return reasonNoRegions
	case neg == 0:
		return reasonNoNormalPix
	}
	return ""
}

// cflowGrid returns the thresholds cal_pro_score compares float32 maps
// against, bit for bit as numpy 1.x evaluates them:
//
//	delta = (max - min) / 200        float32 difference, float64 quotient
//	np.arange(min, max, delta)       float64 grid, ceil((max-min)/delta)
//	                                 values: t0 = min, t1 = min+delta,
//	                                 ti = min + i*(t1-min)
//	amap > th                        th rounded to float32 (value-based
//	                                 casting of the scalar to the map dtype)
//
// The count is 200 or, for about 5% of ranges, 201. The second result is the
// reason there is no grid.
func cflowGrid(lo, hi float32, steps int) ([]float32, string) {
	r := float64(hi - lo) // numpy: float32 scalar difference
	switch {
	case math.IsNaN(r) || !(hi >= lo):
		return nil, "no scores"
	case r == 0:
		return nil, "all scores are equal: the threshold grid is empty"
	case math.IsInf(r, 0):
		return nil, "the score range overflows float32"
	}
	d := r / float64(steps)
	n := int(math.Ceil(r / d))
	a := float64(lo)
	t1 := float64(a + d)
	d2 := float64(t1 - a)
	g := make([]float32, n)
	g[0] = lo
	if n > 1 {
		g[1] = float32(t1)
	}
	for i := 2; i < n; i++ {
		g[i] = float32(a + float64(float64(i)*d2))
	}
	return g, ""
}

// cflowAUPRO finishes cal_pro_score from the curve state at each threshold
// (rec is in descending threshold order).
func cflowAUPRO(rec []proPoint, neg uint64, regions int) Value {
	var xs, ys []float64
	for j := len(rec) - 1; j >= 0; j-- { // ascending thresholds, as numpy
		fpr := float64(rec[j].fp) / float64(neg)
		if fpr < cflowMaxFPR {
			xs = append(xs, fpr)
			ys = append(ys, rec[j].w/float64(regions))
		}
	}
	if len(xs) < 2 {
		return undefined(fmt.Sprintf("%d of the %d thresholds have FPR < %v; two are needed", len(xs), len(rec), cflowMaxFPR))
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	if hi == lo {
		return undefined("every threshold with FPR < 0.3 has the same FPR: the rescaled curve is 0/0")
	}
	for i := range xs {
		xs[i] = (xs[i] - lo) / (hi - lo)
	}
	// sklearn.metrics.auc: trapezoid, sign flipped for decreasing x.
	var area float64
	dir := 1.0
	for i := 0; i+1 < len(xs); i++ {
		dx := xs[i+1] - xs[i]
		if dx < 0 {
			dir = -1
		}
		area += dx * (ys[i+1] + ys[i]) / 2
	}
	return defined(dir * area)
}
