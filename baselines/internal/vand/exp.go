package vand

import "math"

// expNeg is e^x for x ≤ 0 (a logit minus the maximum of its pixel), with
// a relative error below 1e-10: far below the float32 precision of the
// probabilities it makes, and several times faster than math.Exp, which
// the per-pixel softmax over up to 21 upsampled classes would call some
// 10⁸ times per MVTec-AD category at 518 px.
//
// e^x = 2^(k/64) · e^r with k = round(64·x·log2 e) and |r| ≤ ln 2 / 128:
// 2^(k/64) = 2^(k>>6) · T[k&63] from a table, e^r by its Taylor series to
// degree 3 (the first omitted term is below 4e-11).
func expNeg(x float64) float64 {
	if x < -708 {
		return 0
	}
	const round = 1 << 52 * 1.5 // adding and subtracting it rounds to an integer
	t := x * (64 * math.Log2E)
	kf := (t + round) - round
	r := (t - kf) * (math.Ln2 / 64)
	k := int64(kf)
	p := 1 + r*(1+r*(0.5+r*(1.0/6)))
	// 2^(k>>6) from its exponent bits: x ≥ −708 keeps it a normal number.
	return p * exp2Table[k&63] * math.Float64frombits(uint64((k>>6)+1023)<<52)
}

// exp2Table holds 2^(j/64) for j = 0..63.
var exp2Table = func() (t [64]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 64)
	}
	return t
}()
