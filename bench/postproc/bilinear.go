package postproc

import (
	"fmt"
	"math"
	"sync"
)

// Grid is a stack of C planar maps of H×W float32 values, [C, H, W] in C
// order: class maps on the patch grid, or anomaly maps at image size.
type Grid struct {
	C, H, W int
	Data    []float32
}

// check reports whether g's shape is valid and matches its data.
func (g Grid) check(name string) error {
	if g.C < 0 || g.H <= 0 || g.W <= 0 {
		return fmt.Errorf("%w: %s is %d×%d×%d", ErrShape, name, g.C, g.H, g.W)
	}
	if g.H > math.MaxInt/g.W || (g.C > 0 && g.H*g.W > math.MaxInt/g.C) {
		return fmt.Errorf("%w: %s is %d×%d×%d, too large", ErrShape, name, g.C, g.H, g.W)
	}
	if len(g.Data) != g.C*g.H*g.W {
		return fmt.Errorf("%w: %s is %d×%d×%d but holds %d values", ErrShape, name, g.C, g.H, g.W, len(g.Data))
	}
	return nil
}

// Plane returns map c of g, sharing its memory.
func (g Grid) Plane(c int) []float32 { return g.Data[c*g.H*g.W : (c+1)*g.H*g.W] }

// axis holds, for every output position along one dimension, the two source
// positions and their weights.
type axis struct {
	i0, i1 []int
	l0, l1 []float32
}

// linearAxis computes PyTorch's source indices and weights for resizing n
// samples to m (aten/src/ATen/native/UpSample.h:
// area_pixel_compute_scale, area_pixel_compute_source_index,
// guard_index_and_lambda), in float32 as PyTorch does for float32 tensors.
// The scale is taken from the sizes, which is what F.interpolate(size=…)
// does; a call with scale_factor=… would use 1/scale_factor instead.
func linearAxis(n, m int, alignCorners bool) axis {
	a := axis{i0: make([]int, m), i1: make([]int, m), l0: make([]float32, m), l1: make([]float32, m)}
	if n == m {
		// PyTorch copies when the sizes agree, whatever align_corners says.
		for i := range m {
			a.i0[i], a.i1[i], a.l0[i], a.l1[i] = i, i, 1, 0
		}
		return a
	}
	var scale float32
	switch {
	case !alignCorners:
		scale = float32(n) / float32(m)
	case m > 1:
		scale = float32(n-1) / float32(m-1)
	}
	for i := range m {
		var src float32
		if alignCorners {
			src = scale * float32(i)
		} else {
			// Half-pixel centres; negative source positions clamp to 0.
			src = float32(scale*(float32(i)+0.5)) - 0.5
			if src < 0 {
				src = 0
			}
		}
		i0 := min(int(math.Floor(float64(src))), n-1)
		l1 := min(max(src-float32(i0), 0), 1)
		i1 := i0
		if i0 < n-1 {
			i1++
		}
		a.i0[i], a.i1[i], a.l0[i], a.l1[i] = i0, i1, 1-l1, l1
	}
	return a
}

// Bilinear resizes [C, inH, inW] grids to [C, outH, outW] as
// torch.nn.functional.interpolate(x, size=(outH, outW), mode="bilinear",
// align_corners=…) does on CPU. DAPO, APRIL-GAN and MultiADS use
// align_corners=True, AnomalyCLIP and WinCLIP False
// (docs/methods.md#postproc-upsample).
//
// Indices and weights are computed in float32 exactly as PyTorch computes
// them, and each output value is
//
//	(x[y0][x0]·wx0 + x[y0][x1]·wx1)·wy0 + (x[y1][x0]·wx0 + x[y1][x1]·wx1)·wy1
//
// rounded to float32 after every operation, the order of PyTorch's generic
// CPU kernel (UpSampleKernel.cpp, Interpolate). PyTorch's channels-last
// kernel, which it picks for channels-last inputs with more than 3
// channels, sums the same four products in another order and so can differ
// in the last bits.
//
// A Bilinear is safe for concurrent use.
type Bilinear struct {
	inH, inW, outH, outW int
	alignCorners         bool
	ys, xs               axis
	rows                 []int // the source rows that ys refers to, ascending
	scratch              sync.Pool
}

// NewBilinear returns the plan that resizes inH×inW maps to outH×outW.
func NewBilinear(inH, inW, outH, outW int, alignCorners bool) (*Bilinear, error) {
	for _, d := range []int{inH, inW, outH, outW} {
		if d <= 0 || d > math.MaxInt32 {
			return nil, fmt.Errorf("bilinear: %w: %d×%d to %d×%d", ErrShape, inH, inW, outH, outW)
		}
	}
	if inH > math.MaxInt/outW || outH > math.MaxInt/outW || inH > math.MaxInt/inW {
		return nil, fmt.Errorf("bilinear: %w: %d×%d to %d×%d is too large", ErrShape, inH, inW, outH, outW)
	}
	b := &Bilinear{
		inH: inH, inW: inW, outH: outH, outW: outW, alignCorners: alignCorners,
		ys: linearAxis(inH, outH, alignCorners),
		xs: linearAxis(inW, outW, alignCorners),
	}
	used := make([]bool, inH)
	for i := range outH {
		used[b.ys.i0[i]], used[b.ys.i1[i]] = true, true
	}
	for y, u := range used {
		if u {
			b.rows = append(b.rows, y)
		}
	}
	return b, nil
}

// Apply resizes every map of src into dst. src must be [C, inH, inW] and
// dst [C, outH, outW] for the same C; they must not share memory.
func (b *Bilinear) Apply(dst, src Grid) error {
	if err := src.check("src"); err != nil {
		return fmt.Errorf("bilinear: %w", err)
	}
	if err := dst.check("dst"); err != nil {
		return fmt.Errorf("bilinear: %w", err)
	}
	if src.H != b.inH || src.W != b.inW || dst.H != b.outH || dst.W != b.outW || dst.C != src.C {
		return fmt.Errorf("bilinear: %w: %d×%d×%d to %d×%d×%d, plan is %d×%d to %d×%d",
			ErrShape, src.C, src.H, src.W, dst.C, dst.H, dst.W, b.inH, b.inW, b.outH, b.outW)
	}
	sp, _ := b.scratch.Get().(*[]float32)
	if sp == nil {
		s := make([]float32, b.inH*b.outW)
		sp = &s
	}
	defer b.scratch.Put(sp)
	tmp := *sp
	for c := range src.C {
		b.plane(dst.Plane(c), src.Plane(c), tmp)
	}
	return nil
}

// plane resizes one map. First every source row that the output needs is
// interpolated along x into tmp (row y at tmp[y*outW:]); then each output
// row blends two of those rows. This is the generic kernel's arithmetic,
// reordered only across independent values.
func (b *Bilinear) plane(dst, src, tmp []float32) {
	xs := b.xs
	for _, y := range b.rows {
		in := src[y*b.inW : (y+1)*b.inW]
		out := tmp[y*b.outW : (y+1)*b.outW]
		for x := range out {
			// The explicit conversions keep every product rounded to
			// float32, as in PyTorch, and forbid fused multiply-adds.
			out[x] = float32(in[xs.i0[x]]*xs.l0[x]) + float32(in[xs.i1[x]]*xs.l1[x])
		}
	}
	ys := b.ys
	for y := range b.outH {
		r0 := tmp[ys.i0[y]*b.outW : (ys.i0[y]+1)*b.outW]
		r1 := tmp[ys.i1[y]*b.outW : (ys.i1[y]+1)*b.outW]
		w0, w1 := ys.l0[y], ys.l1[y]
		out := dst[y*b.outW : (y+1)*b.outW]
		r0, r1 = r0[:len(out)], r1[:len(out)]
		for x := range out {
			out[x] = float32(r0[x]*w0) + float32(r1[x]*w1)
		}
	}
}

// Upsample resizes src into dst with a one-off plan; see Bilinear. Callers
// that resize many maps of one size should keep a Bilinear instead.
func Upsample(dst, src Grid, alignCorners bool) error {
	if err := src.check("src"); err != nil {
		return fmt.Errorf("bilinear: %w", err)
	}
	if err := dst.check("dst"); err != nil {
		return fmt.Errorf("bilinear: %w", err)
	}
	b, err := NewBilinear(src.H, src.W, dst.H, dst.W, alignCorners)
	if err != nil {
		return err
	}
	return b.Apply(dst, src)
}
