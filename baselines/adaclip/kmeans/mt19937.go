package kmeans

// MT19937 is numpy's legacy global generator (np.random.RandomState): the
// 32-bit Mersenne Twister of Matsumoto and Nishimura, seeded from one
// integer by init_genrand, with numpy's legacy ways of drawing integers
// and doubles from it (docs/methods.md#adaclip-kmeans-seeding). The zero
// value is not usable; use NewMT19937. A value is a full copy of the state:
// assigning it forks the stream.
type MT19937 struct {
	key [mtN]uint32
	pos int
}

const (
	mtN = 624
	mtM = 397
)

// NewMT19937 is np.random.seed(seed): init_genrand (numpy's mt19937_seed),
// the state positioned so that the first draw regenerates it.
func NewMT19937(seed uint32) *MT19937 {
	g := &MT19937{pos: mtN}
	s := seed
	for i := range mtN {
		g.key[i] = s
		s = 1812433253*(s^(s>>30)) + uint32(i) + 1
	}
	return g
}

// twist regenerates the 624 words (genrand_int32's refill).
func (g *MT19937) twist() {
	const upper, lower, matrix = 0x80000000, 0x7fffffff, 0x9908b0df
	k := &g.key
	for i := range mtN {
		y := k[i]&upper | k[(i+1)%mtN]&lower
		v := k[(i+mtM)%mtN] ^ y>>1
		if y&1 != 0 {
			v ^= matrix
		}
		k[i] = v
	}
	g.pos = 0
}

// Uint32 is the next 32-bit output (tempered).
func (g *MT19937) Uint32() uint32 {
	if g.pos >= mtN {
		g.twist()
	}
	y := g.key[g.pos]
	g.pos++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	y ^= y >> 18
	return y
}

// Float64 is numpy's legacy double in [0, 1) (random_sample, and uniform
// on [0, 1)): two outputs, a = x>>5 and b = y>>6, give (a·2²⁶ + b)/2⁵³.
func (g *MT19937) Float64() float64 {
	a, b := g.Uint32()>>5, g.Uint32()>>6
	return (float64(a)*67108864 + float64(b)) / 9007199254740992
}

// IntN is legacy RandomState.randint(n) for 1 ≤ n ≤ 2³²: rejection of
// masked outputs, v = out & mask with mask the smallest 2ᵏ−1 ≥ n−1,
// until v ≤ n−1 (numpy's buffered_bounded_masked_uint32). n = 1 draws
// nothing.
func (g *MT19937) IntN(n int) int {
	rng := uint32(n - 1)
	if rng == 0 {
		return 0
	}
	mask := rng
	for s := uint(1); s < 32; s <<= 1 {
		mask |= mask >> s
	}
	for {
		if v := g.Uint32() & mask; v <= rng {
			return int(v)
		}
	}
}

// Choice is legacy RandomState.choice(len(p), p=p) for one sample: p is
// converted to float64, cdf = cumsum(p) (in order), cdf /= cdf[-1], and the
// index is searchsorted(cdf, random_sample(), side="right"). p is not
// validated here.
func (g *MT19937) Choice(p []float64) int {
	cdf := make([]float64, len(p))
	var acc float64
	for i, v := range p {
		acc += v
		cdf[i] = acc
	}
	last := cdf[len(cdf)-1]
	for i := range cdf {
		cdf[i] /= last
	}
	u := g.Float64()
	i := 0
	for i < len(cdf) && cdf[i] <= u {
		i++
	}
	return i
}
