package clip

import (
	"fmt"
	"math"
)

// PosResize is how a method's code resizes the vision positional embedding
// to another patch grid; the graph bakes in the method's own resize
// (docs/methods.md#clip-pos-embed).
type PosResize string

const (
	// BicubicAntialias is open_clip's resize_pos_embed:
	// F.interpolate(mode="bicubic", antialias=True, align_corners=False),
	// whose kernel is PIL's bicubic (a = −0.5) with normalised weights
	// (docs/methods.md#dapo-pos-embed). DAPO, APRIL-GAN and WinCLIP load through
	// open_clip.
	BicubicAntialias PosResize = "bicubic-antialias"
	// Bilinear is AnomalyCLIP's run-time resize:
	// F.interpolate(mode="bilinear"), align_corners=False
	// (docs/methods.md#anomalyclip-pos-embed).
	Bilinear PosResize = "bilinear"
	// Bicubic is PyTorch's plain bicubic, F.interpolate(mode="bicubic",
	// align_corners=False) without antialias: Keys' kernel with a = −0.75,
	// unclamped half-pixel source coordinates and tap indices clamped to
	// the grid. AdaCLIP's own resize_pos_embed calls it so
	// (docs/methods.md#adaclip-pos-embed).
	Bicubic PosResize = "bicubic"
)

// PosResizes lists the resize modes.
func PosResizes() []PosResize { return []PosResize{BicubicAntialias, Bilinear, Bicubic} }

// bicubicA is the Keys cubic parameter of PIL and of PyTorch's antialiased
// bicubic; torchBicubicA that of PyTorch's bicubic without antialias
// (aten/src/ATen/native/UpSample.h, get_cubic_upsample_coefficients).
const (
	bicubicA      = -0.5
	torchBicubicA = -0.75
)

// resizePos resizes a positional table [g0*g0+1, w] to [g1*g1+1, w],
// keeping the class-token row.
func resizePos(pos Tensor, g0, g1 int, how PosResize) (Tensor, error) {
	w := pos.Shape[1]
	if g0 == g1 {
		return pos, nil
	}
	var coeffs func(in, out int) [][]weightAt
	switch how {
	case BicubicAntialias:
		coeffs = aaBicubicCoeffs
	case Bilinear:
		coeffs = bilinearCoeffs
	case Bicubic:
		return torchBicubicResize(pos, g0, g1), nil
	default:
		return Tensor{}, fmt.Errorf("clip: unknown positional-embedding resize %q (want %q, %q or %q)", how, BicubicAntialias, Bilinear, Bicubic)
	}
	cw := coeffs(g0, g1)
	out := NewTensor(g1*g1+1, w)
	copy(out.Data[:w], pos.Data[:w])
	grid := pos.Data[w:] // [g0, g0, w], row-major over (y, x)
	// horizontal pass: [g0, g1, w]
	tmp := make([]float64, g0*g1*w)
	for y := range g0 {
		for x := range g1 {
			for _, k := range cw[x] {
				src := grid[(y*g0+k.i)*w : (y*g0+k.i+1)*w]
				dst := tmp[(y*g1+x)*w : (y*g1+x+1)*w]
				for c := range w {
					dst[c] += k.w * float64(src[c])
				}
			}
		}
	}
	// vertical pass: [g1, g1, w]
	for y := range g1 {
		for x := range g1 {
			dst := out.Data[w+(y*g1+x)*w : w+(y*g1+x+1)*w]
			acc := make([]float64, w)
			for _, k := range cw[y] {
				src := tmp[(k.i*g1+x)*w : (k.i*g1+x+1)*w]
				for c := range w {
					acc[c] += k.w * src[c]
				}
			}
			for c := range w {
				dst[c] = float32(acc[c])
			}
		}
	}
	return out, nil
}

type weightAt struct {
	i int
	w float64
}

func cubic(x float64) float64 { return keysCubic(x, bicubicA) }

// keysCubic is Keys' cubic convolution kernel with parameter a.
func keysCubic(x, a float64) float64 {
	x = math.Abs(x)
	switch {
	case x < 1:
		return ((a+2)*x-(a+3))*x*x + 1
	case x < 2:
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// aaBicubicCoeffs are PIL's precompute_coeffs for the bicubic filter
// (support 2, widened by the scale when shrinking), the weights of the taps
// inside the input normalised to sum to one.
func aaBicubicCoeffs(in, out int) [][]weightAt {
	scale := float64(in) / float64(out)
	fscale := math.Max(scale, 1)
	support := 2 * fscale
	res := make([][]weightAt, out)
	for o := range out {
		center := (float64(o) + 0.5) * scale
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), in)
		var ks []weightAt
		total := 0.0
		for i := lo; i < hi; i++ {
			v := cubic((float64(i) - center + 0.5) / fscale)
			ks = append(ks, weightAt{i, v})
			total += v
		}
		for j := range ks {
			if total != 0 {
				ks[j].w /= total
			}
		}
		res[o] = ks
	}
	return res
}

// bilinearCoeffs are PyTorch's bilinear source weights with
// align_corners=False (half-pixel centres, clamped at the border).
func bilinearCoeffs(in, out int) [][]weightAt {
	scale := float64(in) / float64(out)
	res := make([][]weightAt, out)
	for o := range out {
		src := math.Max((float64(o)+0.5)*scale-0.5, 0)
		i0 := min(int(src), in-1)
		i1 := min(i0+1, in-1)
		l1 := src - float64(i0)
		res[o] = []weightAt{{i0, 1 - l1}, {i1, l1}}
	}
	return res
}

// torchBicubicResize is PyTorch's CPU upsample_bicubic2d with
// align_corners=False and no antialias, in float32 as PyTorch computes it
// for a float32 tensor (UpSampleKernel.cpp, cpu_upsample_generic with
// HelperInterpCubic): per axis, source x = (o + 0.5)·(in/out) − 0.5 (not
// clamped), i = ⌊x⌋, t = x − i; the taps i−1..i+2, each index clamped to
// [0, in−1], weighted by Keys' kernel with a = −0.75 at 1+t, t, 1−t, 2−t;
// each output is Σ_y w_y·(Σ_x w_x·v) summed tap by tap. The class row is
// kept. PyTorch's vectorised build rounds its weights slightly
// differently: on a seeded 24 → 37 resize the tables agree to 8e-7
// (docs/methods.md#adaclip-pos-embed).
func torchBicubicResize(pos Tensor, g0, g1 int) Tensor {
	w := pos.Shape[1]
	idx, wt := torchBicubicTaps(g0, g1)
	out := NewTensor(g1*g1+1, w)
	copy(out.Data[:w], pos.Data[:w])
	grid := pos.Data[w:] // [g0, g0, w]
	for y := range g1 {
		for x := range g1 {
			dst := out.Data[w+(y*g1+x)*w : w+(y*g1+x+1)*w]
			for c := range w {
				var acc float32
				for j := range 4 {
					row := grid[idx[y][j]*g0*w:]
					var inner float32
					for i := range 4 {
						inner += float32(wt[x][i] * row[idx[x][i]*w+c])
					}
					acc += float32(wt[y][j] * inner)
				}
				dst[c] = acc
			}
		}
	}
	return out
}

// torchBicubicTaps are the tap indices and float32 weights of
// torchBicubicResize along one axis.
func torchBicubicTaps(in, out int) ([][4]int, [][4]float32) {
	const a = float32(torchBicubicA)
	conv1 := func(x float32) float32 { return float32(float32(float32(float32((a+2)*x)-(a+3))*x)*x) + 1 }
	conv2 := func(x float32) float32 {
		return float32(float32(float32(float32(float32(a*x)-5*a)*x)+8*a)*x) - 4*a
	}
	scale := float32(in) / float32(out)
	idx, wt := make([][4]int, out), make([][4]float32, out)
	for o := range out {
		x := float32(scale*(float32(o)+0.5)) - 0.5
		i := min(int(math.Floor(float64(x))), in-1)
		t := min(max(x-float32(i), 0), 1)
		wt[o] = [4]float32{conv2(t + 1), conv1(t), conv1(1 - t), conv2(1 - t + 1)}
		for k := range 4 {
			idx[o][k] = min(max(i-1+k, 0), in-1)
		}
	}
	return idx, wt
}
