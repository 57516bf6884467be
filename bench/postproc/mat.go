package postproc

import (
	"errors"
	"fmt"
	"math"
)

// Temperature is the τ that DAPO, AnomalyCLIP and WinCLIP divide cosine
// similarities by before the softmax (docs/methods.md#postproc-temperature).
const Temperature = 0.07

// APRILGANTemperature is the divisor equivalent of the ×100 logit scale of
// APRIL-GAN and MultiADS (docs/methods.md#postproc-temperature). In float64,
// x/0.01 and x·100 differ far below float32 resolution.
const APRILGANTemperature = 0.01

// normEps is the eps of torch.nn.functional.normalize: rows with a smaller
// norm are divided by eps, so a zero row stays zero instead of becoming NaN.
const normEps = 1e-12

// ErrShape is wrapped by every error about mismatched or invalid shapes.
var ErrShape = errors.New("postproc: bad shape")

// Mat is a row-major float32 matrix: features (one row per token or
// prompt), logits and probabilities (one row per token, one column per
// class).
type Mat struct {
	Rows, Cols int
	Data       []float32
}

// check reports whether m's shape is valid and matches its data.
func (m Mat) check(name string) error {
	if m.Rows < 0 || m.Cols < 0 {
		return fmt.Errorf("%w: %s is %d×%d", ErrShape, name, m.Rows, m.Cols)
	}
	if m.Cols > 0 && m.Rows > math.MaxInt/m.Cols {
		return fmt.Errorf("%w: %s is %d×%d, too large", ErrShape, name, m.Rows, m.Cols)
	}
	if len(m.Data) != m.Rows*m.Cols {
		return fmt.Errorf("%w: %s is %d×%d but holds %d values", ErrShape, name, m.Rows, m.Cols, len(m.Data))
	}
	return nil
}

// Row returns row i of m, sharing its memory.
func (m Mat) Row(i int) []float32 { return m.Data[i*m.Cols : (i+1)*m.Cols] }

// norm returns the L2 norm of v, accumulated in float64.
func norm(v []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(v); i += 4 {
		a, b, c, d := float64(v[i]), float64(v[i+1]), float64(v[i+2]), float64(v[i+3])
		s0 += a * a
		s1 += b * b
		s2 += c * c
		s3 += d * d
	}
	for ; i < len(v); i++ {
		a := float64(v[i])
		s0 += a * a
	}
	return math.Sqrt((s0 + s1) + (s2 + s3))
}

// NormalizeRows scales every row of m to unit L2 norm in place, as
// torch.nn.functional.normalize(x, dim=-1) does: rows whose norm is below
// 1e-12 are divided by 1e-12, so a zero row stays zero.
func NormalizeRows(m Mat) error {
	if err := m.check("matrix"); err != nil {
		return fmt.Errorf("normalize rows: %w", err)
	}
	for i := range m.Rows {
		row := m.Row(i)
		n := max(norm(row), normEps)
		for j, v := range row {
			row[j] = float32(float64(v) / n)
		}
	}
	return nil
}

// CosineLogits writes dst[i][j] = cos(x_i, t_j) / temperature: the logits of
// every feature row x_i against every class embedding t_j. Neither input
// needs to be normalised, and neither is modified; norms follow
// NormalizeRows (eps 1e-12). Use Temperature for DAPO, AnomalyCLIP and
// WinCLIP, APRILGANTemperature for APRIL-GAN. dst must be x.Rows×t.Rows and
// must not share memory with x or t.
func CosineLogits(dst, x, t Mat, temperature float64) error {
	for _, c := range []struct {
		name string
		m    Mat
	}{{"dst", dst}, {"features", x}, {"class embeddings", t}} {
		if err := c.m.check(c.name); err != nil {
			return fmt.Errorf("cosine logits: %w", err)
		}
	}
	if x.Cols != t.Cols {
		return fmt.Errorf("cosine logits: %w: features have %d dimensions, class embeddings %d", ErrShape, x.Cols, t.Cols)
	}
	if dst.Rows != x.Rows || dst.Cols != t.Rows {
		return fmt.Errorf("cosine logits: %w: dst is %d×%d, want %d×%d", ErrShape, dst.Rows, dst.Cols, x.Rows, t.Rows)
	}
	if !(temperature > 0) || math.IsInf(temperature, 1) {
		return fmt.Errorf("cosine logits: temperature %v is not a positive finite number", temperature)
	}
	// Class embeddings in float64, once; each feature row is converted
	// once and then meets four classes per sweep.
	d := t.Cols
	t64 := make([]float64, t.Rows*d+d)
	tn := make([]float64, t.Rows)
	for j := range t.Rows {
		tn[j] = max(norm(t.Row(j)), normEps)
		for k, v := range t.Row(j) {
			t64[j*d+k] = float64(v)
		}
	}
	xb := t64[t.Rows*d:]
	for i := range x.Rows {
		xi := x.Row(i)
		for k, v := range xi {
			xb[k] = float64(v)
		}
		xn := max(norm(xi), normEps)
		out := dst.Row(i)
		j := 0
		for ; j+4 <= t.Rows; j += 4 {
			d0, d1, d2, d3 := dot4(xb, t64[j*d:(j+1)*d], t64[(j+1)*d:(j+2)*d], t64[(j+2)*d:(j+3)*d], t64[(j+3)*d:(j+4)*d])
			out[j] = float32(d0 / (xn * tn[j]) / temperature)
			out[j+1] = float32(d1 / (xn * tn[j+1]) / temperature)
			out[j+2] = float32(d2 / (xn * tn[j+2]) / temperature)
			out[j+3] = float32(d3 / (xn * tn[j+3]) / temperature)
		}
		for ; j < t.Rows; j++ {
			out[j] = float32(dot64(xb, t64[j*d:(j+1)*d]) / (xn * tn[j]) / temperature)
		}
	}
	return nil
}

// dot4 returns the inner products of x with a, b, c and e (all as long as
// x): one pass over x for four sums.
func dot4(x, a, b, c, e []float64) (float64, float64, float64, float64) {
	a, b, c, e = a[:len(x)], b[:len(x)], c[:len(x)], e[:len(x)]
	var sa, sb, sc, se float64
	for k, v := range x {
		sa += v * a[k]
		sb += v * b[k]
		sc += v * c[k]
		se += v * e[k]
	}
	return sa, sb, sc, se
}

// dot64 returns the inner product of x and a (as long as x).
func dot64(x, a []float64) float64 {
	a = a[:len(x)]
	var s0, s1 float64
	k := 0
	for ; k+2 <= len(x); k += 2 {
		s0 += x[k] * a[k]
		s1 += x[k+1] * a[k+1]
	}
	if k < len(x) {
		s0 += x[k] * a[k]
	}
	return s0 + s1
}

// Softmax replaces every row of m by its softmax, in place. The maximum is
// subtracted first and the exponentials are summed in float64, so large
// logits neither overflow nor lose the small classes. Non-finite logits are
// an error: no cosine logit can be one.
func Softmax(m Mat) error {
	if err := m.check("logits"); err != nil {
		return fmt.Errorf("softmax: %w", err)
	}
	if m.Rows > 0 && m.Cols == 0 {
		return fmt.Errorf("softmax: %w: %d rows of zero classes", ErrShape, m.Rows)
	}
	for i := range m.Rows {
		row := m.Row(i)
		hi := math.Inf(-1)
		for j, v := range row {
			f := float64(v)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Errorf("softmax: row %d, class %d: logit %v is not finite", i, j, v)
			}
			hi = max(hi, f)
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v) - hi)
		}
		for j, v := range row {
			row[j] = float32(math.Exp(float64(v)-hi) / sum)
		}
	}
	return nil
}

// Transpose writes src's transpose into dst. It turns per-token class
// probabilities [h·w, C] into the planar class maps [C, h·w] that Bilinear
// upsamples. dst and src must not share memory.
func Transpose(dst, src Mat) error {
	if err := src.check("src"); err != nil {
		return fmt.Errorf("transpose: %w", err)
	}
	if err := dst.check("dst"); err != nil {
		return fmt.Errorf("transpose: %w", err)
	}
	if dst.Rows != src.Cols || dst.Cols != src.Rows {
		return fmt.Errorf("transpose: %w: dst is %d×%d, want %d×%d", ErrShape, dst.Rows, dst.Cols, src.Cols, src.Rows)
	}
	for i := range src.Rows {
		for j, v := range src.Row(i) {
			dst.Data[j*dst.Cols+i] = v
		}
	}
	return nil
}
