package metrics

import "math"

// Scores are compared through order-preserving uint32 keys: the float32 bit
// pattern with the sign bit flipped for positive numbers and all bits
// flipped for negative ones. Unsigned key order is then float order, −0 is
// folded into +0 first (they are equal as scores), and the keys of finite
// values lie in [minFiniteKey, maxFiniteKey].
const (
	minFiniteKey = 0x00800000 // key of the most negative finite float32
	maxFiniteKey = 0xff7fffff // key of the largest finite float32
)

// key32 returns the order-preserving key of s.
func key32(s float32) uint32 {
	b := math.Float32bits(s)
	if b == 1<<31 { // −0 scores tie with +0, as in every reference
		b = 0
	}
	return b ^ (uint32(int32(b)>>31) | 1<<31)
}

// score32 inverts key32.
func score32(k uint32) float32 {
	if k&(1<<31) != 0 {
		return math.Float32frombits(k &^ (1 << 31))
	}
	return math.Float32frombits(^k)
}

// finiteKey reports whether k is the key of a finite score.
func finiteKey(k uint32) bool { return k >= minFiniteKey && k <= maxFiniteKey }
