package winclip

import (
	"fmt"
	"math"

	"github.com/dapobench/dapobench/bench/postproc"
)

// WinCLIP's geometry (docs/methods.md#winclip-windows): ViT-B-16-plus-240 sees a 15×15 grid of
// 16-pixel patches, and zero-shot maps use windows of 2×2 and 3×3 patches
// at stride 1.
const (
	Grid  = 15
	Small = 2
	Large = 3
	// Stride is the step of the sliding windows, in patches
	// (make_masks(grid, k, stride=1)).
	Stride = 1
)

// Windows is a set of square sliding windows over a patch grid, in the order
// of anomalib's make_masks (torch.nn.functional.unfold over the grid of
// patch indices): windows run row by row over their top-left corners, and
// the K·K patches of a window run row by row too.
type Windows struct {
	GridH, GridW int // patch grid
	K, Stride    int // window side and step, in patches
	N            int // number of windows
	// Patches holds N·K·K patch indices (row·GridW + column); window i is
	// Patches[i·K·K : (i+1)·K·K].
	Patches []int
}

// NewWindows lays out the K×K windows at the given stride over a gridH×gridW
// patch grid, as make_masks((gridH, gridW), k, stride) does.
func NewWindows(gridH, gridW, k, stride int) (Windows, error) {
	const limit = 1 << 15
	if gridH <= 0 || gridW <= 0 || k <= 0 || stride <= 0 || gridH > limit || gridW > limit {
		return Windows{}, fmt.Errorf("windows: %w: grid %d×%d, window %d, stride %d", postproc.ErrShape, gridH, gridW, k, stride)
	}
	if k > gridH || k > gridW {
		return Windows{}, fmt.Errorf("windows: %w: window %d does not fit in grid %d×%d", postproc.ErrShape, k, gridH, gridW)
	}
	nh, nw := (gridH-k)/stride+1, (gridW-k)/stride+1
	w := Windows{GridH: gridH, GridW: gridW, K: k, Stride: stride, N: nh * nw}
	w.Patches = make([]int, 0, w.N*k*k)
	for i := range nh {
		for j := range nw {
			for di := range k {
				for dj := range k {
					w.Patches = append(w.Patches, (i*stride+di)*gridW+j*stride+dj)
				}
			}
		}
	}
	return w, nil
}

// Window returns the patch indices of window i, sharing w's memory.
func (w Windows) Window(i int) []int { return w.Patches[i*w.K*w.K : (i+1)*w.K*w.K] }

// Tokens returns, for every window, the positions to gather from the token
// sequence [CLS, patch 0, patch 1, …] (after the positional embedding,
// before ln_pre): 0 for CLS, then patch+1 for each patch of the window.
// Window i is Tokens()[i·(1+K·K) : (i+1)·(1+K·K)].
//
// This is anomalib's _get_window_embeddings (torch_model.py: class index
// 0, then masks + 1), as released since v1.0.0 and as
// docs/methods.md#winclip-window-tokens describes it. Gathering the bare
// patch indices instead (as a development commit before that release did)
// would pick the token one patch earlier and CLS in place of patch 0.
func (w Windows) Tokens() []int {
	kk := w.K * w.K
	t := make([]int, 0, w.N*(kk+1))
	for i := range w.N {
		t = append(t, 0)
		for _, p := range w.Window(i) {
			t = append(t, p+1)
		}
	}
	return t
}

// HarmonicAggregate writes into dst (GridH·GridW values, row-major) the
// harmonic mean of the scores of the windows that cover each patch,
// n / Σ 1/s, as anomalib's harmonic_aggregation does. scores holds one
// score per window in Windows order. Sums are taken in float64.
//
// Like the reference's nan_to_num(posinf=0): a patch that no window covers
// (possible at stride > 1) and a patch whose sum is infinite (a zero score)
// get 0, and −Inf becomes the most negative float32.
func HarmonicAggregate(dst, scores []float32, w Windows) error {
	if err := w.check(); err != nil {
		return fmt.Errorf("harmonic aggregation: %w", err)
	}
	if len(scores) != w.N {
		return fmt.Errorf("harmonic aggregation: %w: %d scores for %d windows", postproc.ErrShape, len(scores), w.N)
	}
	if len(dst) != w.GridH*w.GridW {
		return fmt.Errorf("harmonic aggregation: %w: dst holds %d values, grid is %d×%d", postproc.ErrShape, len(dst), w.GridH, w.GridW)
	}
	inv := make([]float64, len(dst))
	count := make([]int, len(dst))
	for i, s := range scores {
		r := 1 / float64(s)
		for _, p := range w.Window(i) {
			inv[p] += r
			count[p]++
		}
	}
	for p := range dst {
		dst[p] = nanToNum(float32(float64(count[p]) / inv[p]))
	}
	return nil
}

// check reports whether w was laid out consistently, so that a hand-built
// Windows cannot index out of range.
func (w Windows) check() error {
	if w.GridH <= 0 || w.GridW <= 0 || w.K <= 0 || w.K > 1<<15 || w.N < 0 || w.GridH > math.MaxInt/w.GridW ||
		w.N > math.MaxInt/(w.K*w.K) || len(w.Patches) != w.N*w.K*w.K {
		return fmt.Errorf("%w: windows: grid %d×%d, %d windows of %d×%d, %d patch indices",
			postproc.ErrShape, w.GridH, w.GridW, w.N, w.K, w.K, len(w.Patches))
	}
	n := w.GridH * w.GridW
	for _, p := range w.Patches {
		if p < 0 || p >= n {
			return fmt.Errorf("%w: windows: patch index %d outside the %d×%d grid", postproc.ErrShape, p, w.GridH, w.GridW)
		}
	}
	return nil
}

// nanToNum is torch.nan_to_num(x, posinf=0.0) for float32.
func nanToNum(x float32) float32 {
	switch {
	case x != x, x > math.MaxFloat32:
		return 0
	case x < -math.MaxFloat32:
		return -math.MaxFloat32
	}
	return x
}

// MultiScaleHarmonic combines WinCLIP's scales into one map: for every
// patch, the harmonic mean of the image score and the per-scale maps,
// (len(maps)+1) / (1/image + Σ 1/map[p]), in float64 (anomalib
// _compute_zero_shot_scores; no nan_to_num there, so a zero score gives 0
// through 1/0 = +Inf). dst may be one of the maps.
func MultiScaleHarmonic(dst []float32, image float32, maps ...[]float32) error {
	if len(maps) == 0 {
		return fmt.Errorf("multi-scale harmonic mean: no scale maps")
	}
	for i, m := range maps {
		if len(m) != len(dst) {
			return fmt.Errorf("multi-scale harmonic mean: %w: map %d holds %d values, dst %d", postproc.ErrShape, i, len(m), len(dst))
		}
	}
	n := float64(len(maps) + 1)
	inv := 1 / float64(image)
	for p := range dst {
		s := inv
		for _, m := range maps {
			s += 1 / float64(m[p])
		}
		dst[p] = float32(n / s)
	}
	return nil
}
