package metrics

import (
	"math"
	"math/bits"
)

// curve walks a grouped score table from the highest score to the lowest
// and accumulates every exact metric in that single pass. Each call to step
// is one distinct score with n negatives, p positives and, for PRO, the
// summed region weights w of its positives.
type curve struct {
	neg, pos uint64 // totals N and P

	fp, tp uint64
	// mw is Σ p_g·(2·negBelow_g + n_g), twice the Mann–Whitney U with half
	// credit for ties; AUROC = mw / (2PN). It stays below 2^63 because a
	// category holds fewer than 2^32 pixels.
	mw uint64
	// apSum + apComp is the Neumaier-compensated Σ p_g·precision_g.
	apSum, apComp float64
	// Best F1 = f1Num/f1Den = 2TP/(TP+FP+P), attained at group f1Tok.
	f1Num, f1Den uint64
	f1Tok        uint64

	// MVTec PRO curve (pro is false without regions). FPRs are those of
	// the script, rounded to float32 (see fpr32); PROs are float64.
	pro     bool
	invR    float64 // 1/#regions
	limit   float64 // FPR integration limit
	fpLimit uint64  // largest FP count with fpr32 ≤ limit; MaxUint64 once passed
	w       float64 // cumulative region weight of the positives seen
	yPrev   float64 // PRO of the last curve point
	xAnchor float64 // FPR up to which area has been added
	area    float64 // trapezoid area up to xAnchor
	proAUC  float64 // AU-PRO / limit, set when the limit is passed
	proDone bool

	// cal_pro_score thresholds as keys, descending; state is recorded for
	// each before the first group whose key is ≤ it (so "score > th").
	thr     []uint32
	nextThr uint32 // thr[len(rec)], or 0 (below every finite key) when done
	rec     []proPoint
}

// proPoint is the curve state at one cal_pro_score threshold.
type proPoint struct {
	fp uint64
	w  float64
}

func newCurve(neg, pos uint64) curve {
	return curve{neg: neg, pos: pos, fpLimit: math.MaxUint64}
}

// withPRO enables the MVTec PRO curve for regions regions and the given
// integration limit in (0, 1].
func (c *curve) withPRO(regions int, limit float64) {
	if regions == 0 || c.neg == 0 {
		return
	}
	c.pro = true
	c.invR = 1 / float64(regions)
	c.limit = limit
	l := uint64(limit * float64(c.neg))
	for l < c.neg && c.fpr32(l+1) <= limit {
		l++
	}
	for l > 0 && c.fpr32(l) > limit {
		l--
	}
	c.fpLimit = l
}

// fpr32 is the FPR of the MVTec script at fp false positives: its cumulative
// counts are cast to float32 and divided by the number of defect-free
// pixels, and the result is stored as float32. Following it keeps the
// variant within 1e-9 of the script; the exact rational curve differs by up
// to ~1e-8 where a point lands on the limit.
func (c *curve) fpr32(fp uint64) float64 {
	return float64(float32(float64(float32(fp)) / float64(c.neg)))
}

// withThresholds records the state at each key of thr (descending).
func (c *curve) withThresholds(thr []uint32) {
	c.thr = thr
	c.rec = make([]proPoint, 0, len(thr))
	c.nextThr = 0
	if len(thr) > 0 {
		c.nextThr = thr[0]
	}
}

// emitThresholds records every pending threshold whose key is ≥ key.
func (c *curve) emitThresholds(key uint32) {
	for key <= c.nextThr && len(c.rec) < len(c.thr) {
		c.rec = append(c.rec, proPoint{fp: c.fp, w: c.w})
		if len(c.rec) < len(c.thr) {
			c.nextThr = c.thr[len(c.rec)]
		} else {
			c.nextThr = 0
		}
	}
}

// negOnly is step for a group without positives, the common case.
func (c *curve) negOnly(n uint64) {
	before := c.fp
	c.fp += n
	if c.fp > c.fpLimit {
		c.passLimit(before, c.yPrev)
	}
}

// step adds one group with n negatives, p > 0 positives and region weight w.
func (c *curve) step(n, p uint64, w float64, tok uint64) {
	before := c.fp
	c.fp += n
	c.tp += p
	c.mw += p * (2*(c.neg-c.fp) + n)

	// AP term p·TP/(TP+FP), summed with Neumaier compensation.
	t := float64(p) * (float64(c.tp) / float64(c.tp+c.fp))
	s := c.apSum + t
	if math.Abs(c.apSum) >= math.Abs(t) {
		c.apComp += (c.apSum - s) + t
	} else {
		c.apComp += (t - s) + c.apSum
	}
	c.apSum = s

	// F1 = 2TP/(TP+FP+P); ≥ keeps the lowest threshold among equal F1, as
	// numpy's argmax over scikit-learn's increasing thresholds does.
	num, den := 2*c.tp, c.tp+c.fp+c.pos
	hi1, lo1 := bits.Mul64(num, c.f1Den)
	hi2, lo2 := bits.Mul64(c.f1Num, den)
	if hi1 > hi2 || (hi1 == hi2 && lo1 >= lo2) {
		c.f1Num, c.f1Den, c.f1Tok = num, den, tok
	}

	if !c.pro {
		return
	}
	c.w += w
	y := min(c.w*c.invR, 1)
	if c.fp > c.fpLimit {
		c.passLimit(before, y)
		c.yPrev = y
		return
	}
	if !c.proDone {
		x0, x1 := c.fpr32(before), c.fpr32(c.fp)
		c.area += (x0-c.xAnchor)*c.yPrev + (x1-x0)*(c.yPrev+y)*0.5
		c.xAnchor = x1
	}
	c.yPrev = y
}

// passLimit closes the PRO integral at the first curve point beyond the
// limit, interpolating PRO linearly at the limit as the MVTec script does.
func (c *curve) passLimit(before uint64, y float64) {
	x0, x1 := c.fpr32(before), c.fpr32(c.fp)
	c.area += (x0 - c.xAnchor) * c.yPrev
	yi := c.yPrev + (y-c.yPrev)*(c.limit-x0)/(x1-x0)
	c.proAUC = (c.area + 0.5*(yi+c.yPrev)*(c.limit-x0)) / c.limit
	c.proDone = true
	c.fpLimit = math.MaxUint64
}

// finish completes pending thresholds and the PRO integral.
func (c *curve) finish() {
	for len(c.rec) < len(c.thr) {
		c.rec = append(c.rec, proPoint{fp: c.fp, w: c.w})
	}
	if c.pro && !c.proDone {
		// Only reachable with limit 1: the curve ends at FPR 1 exactly.
		c.area += (c.fpr32(c.neg) - c.xAnchor) * c.yPrev
		c.proAUC = c.area / c.limit
		c.proDone = true
	}
}

// Binary holds the threshold-free metrics of one labelled score set.
type Binary struct {
	Neg, Pos uint64 // negatives and positives
	AUROC    Value  // area under the ROC curve, ties with half credit
	AP       Value  // scikit-learn's step-wise average precision
	F1Max    Value  // best F1 over every threshold
	// F1Threshold is the score threshold of F1Max (positive ⇔ score ≥
	// threshold): the lowest one when several give the same F1. NaN when
	// F1Max is undefined.
	F1Threshold float64
}

// binary turns the walk into metrics; thr converts the F1 group token back
// to its score.
func (c *curve) binary(thr func(tok uint64) float64) Binary {
	r := Binary{Neg: c.neg, Pos: c.pos, F1Threshold: math.NaN()}
	switch {
	case c.pos == 0:
		r.AUROC = undefined(reasonNoPositives)
	case c.neg == 0:
		r.AUROC = undefined(reasonNoNegatives)
	default:
		r.AUROC = defined(float64(c.mw) / (2 * float64(c.pos) * float64(c.neg)))
	}
	if c.pos == 0 {
		r.AP = undefined(reasonNoPositives)
		r.F1Max = undefined(reasonNoPositives)
		return r
	}
	r.AP = defined((c.apSum + c.apComp) / float64(c.pos))
	r.F1Max = defined(float64(c.f1Num) / float64(c.f1Den))
	r.F1Threshold = thr(c.f1Tok)
	return r
}
