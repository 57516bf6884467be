package postproc

import (
	"fmt"
	"math"
	"sync"
)

// AnomalyCLIPSigma is the σ of the Gaussian that AnomalyCLIP applies to
// each 518×518 anomaly map (test.py --sigma default 4;
// docs/methods.md#anomalyclip-gaussian).
const AnomalyCLIPSigma = 4

// GaussianTruncate is scipy.ndimage.gaussian_filter's default truncate: the
// kernel radius is int(truncate·σ + 0.5), 16 at σ = 4
// (docs/methods.md#anomalyclip-gaussian).
const GaussianTruncate = 4.0

// minSigma is scipy's threshold below which gaussian_filter leaves an axis
// unfiltered (scipy/ndimage/_filters.py: sigmas[ii] > 1e-15).
const minSigma = 1e-15

// stripCols is the number of columns the vertical pass filters together: a
// (H+2r)×stripCols float64 block stays in cache and the inner loop runs
// along contiguous memory.
const stripCols = 32

// Gaussian smooths 2-D float32 maps exactly as scipy.ndimage.gaussian_filter
// (x, sigma, truncate=truncate) does with its defaults, mode "reflect":
//
//   - the kernel is scipy's _gaussian_kernel1d: exp(-0.5/σ²·x²) for x in
//     [-r, r], divided by its sum (which NumPy computes pairwise);
//   - reflect extends a line half-sample symmetrically (d c b a | a b c d |
//     d c b a), repeating for lines shorter than the radius;
//   - axis 0 is filtered first, its result rounded to float32 (the dtype of
//     the output array) and then filtered along axis 1;
//   - each output is the centre tap plus the symmetric pairs from the
//     outermost inwards, x0·w0 + Σ_{j=r..1} (x−j + x+j)·wj in float64,
//     the order of scipy's NI_Correlate1D for symmetric kernels.
//
// A Gaussian is safe for concurrent use.
type Gaussian struct {
	sigma, truncate float64
	radius          int
	w               []float64 // w[j] is the weight at offset ±j
	identity        bool      // σ below scipy's threshold: a copy
	scratch         sync.Pool
}

// NewGaussian returns the filter for σ = sigma and the given truncate (use
// GaussianTruncate for scipy's default).
func NewGaussian(sigma, truncate float64) (*Gaussian, error) {
	if math.IsNaN(sigma) || math.IsInf(sigma, 0) || sigma < 0 {
		return nil, fmt.Errorf("gaussian: sigma %v is not a non-negative finite number", sigma)
	}
	if math.IsNaN(truncate) || math.IsInf(truncate, 0) || truncate < 0 {
		return nil, fmt.Errorf("gaussian: truncate %v is not a non-negative finite number", truncate)
	}
	g := &Gaussian{sigma: sigma, truncate: truncate}
	if sigma <= minSigma {
		g.identity = true
		g.w = []float64{1}
		return g, nil
	}
	r := truncate*sigma + 0.5
	if r > 1<<20 {
		return nil, fmt.Errorf("gaussian: sigma %v with truncate %v gives a radius over %d", sigma, truncate, 1<<20)
	}
	g.radius = int(r)
	g.w = gaussianKernel(sigma, g.radius)
	return g, nil
}

// gaussianKernel returns the weights at offsets 0..radius of scipy's
// kernel, bit for bit where math.Exp agrees with NumPy's exp.
func gaussianKernel(sigma float64, radius int) []float64 {
	n := 2*radius + 1
	phi := make([]float64, n)
	c := -0.5 / (sigma * sigma)
	for i := range phi {
		x := i - radius
		phi[i] = math.Exp(c * float64(x*x))
	}
	sum := pairwiseSum(phi)
	w := make([]float64, radius+1)
	for j := range w {
		w[j] = phi[radius+j] / sum
	}
	return w
}

// pairwiseSum adds a in the order of NumPy's pairwise_sum for float64, so
// that the kernel's normalisation is rounded as NumPy rounds it.
func pairwiseSum(a []float64) float64 {
	const block = 128 // PW_BLOCKSIZE
	n := len(a)
	switch {
	case n < 8:
		res := 0.0
		for _, v := range a {
			res += v
		}
		return res
	case n <= block:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += a[i+j]
			}
		}
		res := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			res += a[i]
		}
		return res
	default:
		n2 := n / 2
		n2 -= n2 % 8
		return pairwiseSum(a[:n2]) + pairwiseSum(a[n2:])
	}
}

// Radius is the kernel radius, int(truncate·σ + 0.5).
func (g *Gaussian) Radius() int { return g.radius }

// Kernel returns the 2·Radius+1 weights, centre in the middle.
func (g *Gaussian) Kernel() []float64 {
	k := make([]float64, 2*g.radius+1)
	for j, v := range g.w {
		k[g.radius+j], k[g.radius-j] = v, v
	}
	return k
}

// reflect maps position i of a line of n samples extended in scipy's
// "reflect" mode to the sample it copies.
func reflect(i, n int) int {
	m := i % (2 * n)
	if m < 0 {
		m += 2 * n
	}
	if m >= n {
		m = 2*n - 1 - m
	}
	return m
}

// gaussScratch is one call's working memory.
type gaussScratch struct {
	block []float64 // (h+2r)×stripCols, the vertical pass's input strip
	line  []float64 // w+2r, the horizontal pass's extended row
	acc   []float64 // max(w, stripCols) accumulators
}

// Filter smooths the h×w map src (row-major) into dst. dst may be src
// itself; otherwise the two must not share memory.
func (g *Gaussian) Filter(dst, src []float32, h, w int) error {
	if h <= 0 || w <= 0 || h > math.MaxInt/w {
		return fmt.Errorf("gaussian: %w: map is %d×%d", ErrShape, h, w)
	}
	if len(src) != h*w || len(dst) != h*w {
		return fmt.Errorf("gaussian: %w: %d×%d map, src holds %d values, dst %d", ErrShape, h, w, len(src), len(dst))
	}
	if g.identity {
		copy(dst, src)
		return nil
	}
	r := g.radius
	s, _ := g.scratch.Get().(*gaussScratch)
	if s == nil {
		s = &gaussScratch{}
	}
	defer g.scratch.Put(s)
	s.block = grow(s.block, (h+2*r)*stripCols)
	s.line = grow(s.line, w+2*r)
	s.acc = grow(s.acc, max(w, stripCols))

	// Axis 0: strips of columns. Each strip is copied (extended by r
	// reflected rows at both ends) before any of it is written, so dst may
	// alias src.
	for x0 := 0; x0 < w; x0 += stripCols {
		n := min(stripCols, w-x0)
		for yy := -r; yy < h+r; yy++ {
			in := src[reflect(yy, h)*w+x0:][:n]
			b := s.block[(yy+r)*stripCols:][:n]
			for c, v := range in {
				b[c] = float64(v)
			}
		}
		for y := range h {
			g.taps(s.acc[:n], s.block, y+r, stripCols)
			out := dst[y*w+x0:][:n]
			for c, v := range s.acc[:n] {
				out[c] = float32(v)
			}
		}
	}
	// Axis 1: each row of the float32 intermediate, in place.
	line := s.line
	for y := range h {
		row := dst[y*w : (y+1)*w]
		for i := -r; i < w+r; i++ {
			line[i+r] = float64(row[reflect(i, w)])
		}
		acc := s.acc[:w]
		g.taps(acc, line, r, 1)
		for x, v := range acc {
			row[x] = float32(v)
		}
	}
	return nil
}

// taps filters position `centre` of lines whose consecutive samples are
// `stride` apart into acc, one line per accumulator: for the vertical pass
// the lines are the columns of a strip (stride = stripCols), for the
// horizontal pass the accumulators are the positions of one extended row
// (stride 1). Taps are applied from the outermost pair inwards; four pairs
// share one sweep over acc, which keeps each value's order of operations.
func (g *Gaussian) taps(acc, block []float64, centre, stride int) {
	n := len(acc)
	mid := block[centre*stride:][:n]
	w0 := g.w[0]
	for c := range acc {
		acc[c] = mid[c] * w0
	}
	j := g.radius
	for ; j >= 4; j -= 4 {
		wa, wb, wc, wd := g.w[j], g.w[j-1], g.w[j-2], g.w[j-3]
		ua, da := block[(centre-j)*stride:][:n], block[(centre+j)*stride:][:n]
		ub, db := block[(centre-j+1)*stride:][:n], block[(centre+j-1)*stride:][:n]
		uc, dc := block[(centre-j+2)*stride:][:n], block[(centre+j-2)*stride:][:n]
		ud, dd := block[(centre-j+3)*stride:][:n], block[(centre+j-3)*stride:][:n]
		for c := range acc {
			a := acc[c]
			a += float64((ua[c] + da[c]) * wa)
			a += float64((ub[c] + db[c]) * wb)
			a += float64((uc[c] + dc[c]) * wc)
			a += float64((ud[c] + dd[c]) * wd)
			acc[c] = a
		}
	}
	for ; j >= 1; j-- {
		wj := g.w[j]
		up := block[(centre-j)*stride:][:n]
		down := block[(centre+j)*stride:][:n]
		for c := range acc {
			acc[c] += float64((up[c] + down[c]) * wj)
		}
	}
}

// grow returns s resized to n, reallocating only when it is too small.
func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

// GaussianFilter smooths src into dst like scipy.ndimage.gaussian_filter(x,
// sigma) with its default truncate; see Gaussian. Callers that filter many
// maps should keep a Gaussian instead.
func GaussianFilter(dst, src []float32, h, w int, sigma float64) error {
	g, err := NewGaussian(sigma, GaussianTruncate)
	if err != nil {
		return err
	}
	return g.Filter(dst, src, h, w)
}
