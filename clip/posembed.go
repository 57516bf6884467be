package clip

import (
	"fmt"
	"math"
)

// PosResize is how a method's code resizes the vision positional embedding
// to another patch grid; the graph bakes in the method's own resize
// (docs/method.md#clip-pos-embed).
type PosResize string

const (
	// BicubicAntialias is open_clip's resize_pos_embed:
	// F.interpolate(mode="bicubic", antialias=True, align_corners=False),
	// whose kernel is PIL's bicubic (a = −0.5) with normalised weights
	// (docs/method.md#dapo-pos-embed). DAPO, APRIL-GAN and WinCLIP load through
	// open_clip.
	BicubicAntialias PosResize = "bicubic-antialias"
	// Bilinear is AnomalyCLIP's run-time resize:
	// F.interpolate(mode="bilinear"), align_corners=False
	// (docs/method.md#anomalyclip-pos-embed).
	Bilinear PosResize = "bilinear"
)

// bicubicA is the Keys cubic parameter of PIL and of PyTorch's antialiased
// bicubic.
const bicubicA = -0.5

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
	default:
		return Tensor{}, fmt.Errorf("clip: unknown positional-embedding resize %q (want %q or %q)", how, BicubicAntialias, Bilinear)
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

func cubic(x float64) float64 {
	x = math.Abs(x)
	switch {
	case x < 1:
		return ((bicubicA+2)*x-(bicubicA+3))*x*x + 1
	case x < 2:
		return (((x-5)*x+8)*x - 4) * bicubicA
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
