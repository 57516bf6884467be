package metrics

import (
	"cmp"
	"math"
	"slices"
)

// naive computes the pixel metrics the slow, obvious way: one sort of all
// pixels, the MVTec PRO curve point by point, and cal_pro_score with one
// pass over all pixels per threshold. It is the differential reference for
// the bucketed walk (the parity tests against scikit-learn, scipy and
// scikit-image live in parity_test.go).
type naiveImage struct {
	w, h   int
	scores []float32
	mask   []uint8
}

type naivePix struct {
	s      float32
	pos    bool
	weight float64
	region int // category-wide region index, -1 for background
}

func naiveLabel(m naiveImage) ([]int, int) {
	lab := make([]int, len(m.mask))
	for i := range lab {
		lab[i] = -1
	}
	n := 0
	for i := range m.mask {
		if m.mask[i] == 0 || lab[i] >= 0 {
			continue
		}
		stack := []int{i}
		lab[i] = n
		for len(stack) > 0 {
			j := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x, y := j%m.w, j/m.w
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					xx, yy := x+dx, y+dy
					if xx < 0 || yy < 0 || xx >= m.w || yy >= m.h {
						continue
					}
					k := yy*m.w + xx
					if m.mask[k] != 0 && lab[k] < 0 {
						lab[k] = n
						stack = append(stack, k)
					}
				}
			}
		}
		n++
	}
	return lab, n
}

type naiveResult struct {
	auroc, ap, f1, f1thr, mvtec, cflow float64
}

func naiveMetrics(imgs []naiveImage, limit float64) naiveResult {
	var px []naivePix
	regions := 0
	for _, m := range imgs {
		lab, n := naiveLabel(m)
		area := make([]int, n)
		for _, l := range lab {
			if l >= 0 {
				area[l]++
			}
		}
		for i, s := range m.scores {
			p := naivePix{s: s, region: -1}
			if lab[i] >= 0 {
				p.pos = true
				p.region = regions + lab[i]
				p.weight = 1 / float64(area[lab[i]])
			}
			px = append(px, p)
		}
		regions += n
	}
	slices.SortStableFunc(px, func(a, b naivePix) int { return cmp.Compare(b.s, a.s) })
	var P, N float64
	for _, p := range px {
		if p.pos {
			P++
		} else {
			N++
		}
	}
	r := naiveResult{auroc: math.NaN(), ap: math.NaN(), f1: math.NaN(), f1thr: math.NaN(),
		mvtec: math.NaN(), cflow: math.NaN()}
	// Curve points at the end of each tie group.
	type pt struct {
		fp, tp, w float64
		s         float32
	}
	var pts []pt
	var fp, tp, w float64
	for i, p := range px {
		if p.pos {
			tp++
			w += p.weight
		} else {
			fp++
		}
		if i+1 == len(px) || px[i+1].s != p.s {
			pts = append(pts, pt{fp, tp, w, p.s})
		}
	}
	if P > 0 && N > 0 {
		var a, x0, y0 float64
		for _, q := range pts {
			x, y := q.fp/N, q.tp/P
			a += (x - x0) * (y + y0) / 2
			x0, y0 = x, y
		}
		r.auroc = a
	}
	if P > 0 {
		var ap, tp0 float64
		best := -1.0
		for _, q := range pts {
			prec := q.tp / (q.tp + q.fp)
			ap += (q.tp - tp0) / P * prec
			tp0 = q.tp
			f1 := 2 * q.tp / (q.tp + q.fp + P)
			if f1 >= best {
				best, r.f1thr = f1, float64(q.s)
			}
		}
		r.ap, r.f1 = ap, best
	}
	if regions > 0 && N > 0 {
		xs := []float64{0}
		ys := []float64{0}
		for _, q := range pts {
			xs = append(xs, min(float64(float32(float64(float32(q.fp))/N)), 1))
			ys = append(ys, min(q.w/float64(regions), 1))
		}
		xs = append(xs, 1)
		ys = append(ys, 1)
		r.mvtec = naiveTrapezoid(xs, ys, limit) / limit

		var lo, hi float32 = float32(math.Inf(1)), float32(math.Inf(-1))
		for _, p := range px {
			lo, hi = min(lo, p.s), max(hi, p.s)
		}
		grid, _ := cflowGrid(lo, hi, 200)
		var fx, fy []float64
		for _, th := range grid {
			var fpc, wsum float64
			for _, p := range px {
				if p.s > th {
					if p.pos {
						wsum += p.weight
					} else {
						fpc++
					}
				}
			}
			if fpr := fpc / N; fpr < 0.3 {
				fx = append(fx, fpr)
				fy = append(fy, wsum/float64(regions))
			}
		}
		if len(fx) >= 2 {
			lo, hi := slices.Min(fx), slices.Max(fx)
			if hi > lo {
				var a float64
				for i := 0; i+1 < len(fx); i++ {
					a += ((fx[i+1]-lo)/(hi-lo) - (fx[i]-lo)/(hi-lo)) * (fy[i+1] + fy[i]) / 2
				}
				r.cflow = -a
			}
		}
	}
	return r
}

// naiveTrapezoid is the MVTec script's trapezoid with x_max as described
// in docs/evaluation.md#aupro-mvtec-trapezoid.
func naiveTrapezoid(x, y []float64, xmax float64) float64 {
	corr := 0.0
	if !slices.Contains(x, xmax) {
		ins := len(x)
		for i, v := range x {
			if v > xmax {
				ins = i
				break
			}
		}
		yi := y[ins-1] + (y[ins]-y[ins-1])*(xmax-x[ins-1])/(x[ins]-x[ins-1])
		corr = 0.5 * (yi + y[ins-1]) * (xmax - x[ins-1])
	}
	var a float64
	for i := 0; i+1 < len(x) && x[i+1] <= xmax; i++ {
		a += 0.5 * (x[i+1] - x[i]) * (y[i] + y[i+1])
	}
	return a + corr
}
