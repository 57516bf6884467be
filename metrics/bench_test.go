package metrics

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

// benchSet is a synthetic category shaped like real evaluation data: maps
// that are bilinearly upsampled coarse patch grids (as CLIP-style methods
// produce) plus pixel noise, and elliptic defect regions covering 3% of the
// pixels with raised scores. Scores are continuous float32, so almost every
// pixel has its own value.
type benchSet struct {
	w, h   int
	scores [][]float32
	masks  [][]uint8
}

func (s *benchSet) pixels() int { return s.w * s.h * len(s.scores) }

const (
	benchW, benchH = 500, 500
	benchImages    = 200 // 50 M pixels
	benchPosFrac   = 0.03
)

var benchOnce = sync.OnceValue(func() *benchSet { return makeBenchSet(benchImages, benchW, benchH, 7) })

func makeBenchSet(n, w, h int, seed uint64) *benchSet {
	rng := rand.New(rand.NewPCG(seed, 1))
	s := &benchSet{w: w, h: h}
	const grid = 37 // patch grid of a ViT-L/14 at 518 px
	coarse := make([]float64, grid*grid)
	target := int(benchPosFrac * float64(n*w*h))
	placed := 0
	for k := 0; k < n; k++ {
		sc := make([]float32, w*h)
		mk := make([]uint8, w*h)
		for i := range coarse {
			coarse[i] = 0.15 + 0.2*rng.Float64()
		}
		for y := 0; y < h; y++ {
			fy := float64(y) * (grid - 1) / float64(h-1)
			y0 := min(int(fy), grid-2)
			ty := fy - float64(y0)
			for x := 0; x < w; x++ {
				fx := float64(x) * (grid - 1) / float64(w-1)
				x0 := min(int(fx), grid-2)
				tx := fx - float64(x0)
				v := (1-ty)*((1-tx)*coarse[y0*grid+x0]+tx*coarse[y0*grid+x0+1]) +
					ty*((1-tx)*coarse[(y0+1)*grid+x0]+tx*coarse[(y0+1)*grid+x0+1])
				sc[y*w+x] = float32(v + 0.01*rng.NormFloat64())
			}
		}
		// Defects on every other image until 3% of all pixels are covered.
		if k%2 == 1 {
			left := (target - placed) / ((n - k + 1) / 2)
			for left > 0 {
				rx, ry := 5+rng.IntN(40), 5+rng.IntN(40)
				cx, cy := rng.IntN(w), rng.IntN(h)
				boost := 0.05 + 0.4*rng.Float64()
				for y := max(0, cy-ry); y < min(h, cy+ry); y++ {
					for x := max(0, cx-rx); x < min(w, cx+rx); x++ {
						dx, dy := float64(x-cx)/float64(rx), float64(y-cy)/float64(ry)
						if dx*dx+dy*dy <= 1 && mk[y*w+x] == 0 && left > 0 {
							mk[y*w+x] = 255
							sc[y*w+x] += float32(boost * (1 - 0.5*(dx*dx+dy*dy)))
							left--
							placed++
						}
					}
				}
			}
		}
		s.scores = append(s.scores, sc)
		s.masks = append(s.masks, mk)
	}
	return s
}

// BenchmarkPixels measures the exact pixel AUROC, AP, F1-max and both
// AU-PRO variants of one 50 M-pixel category, streaming: Add per image,
// then Compute. Run with -cpu 1 for the per-core rate. px/s is pixels per
// second; alloc-B/px is every byte allocated per pixel, an upper bound on
// the extra memory (the maps themselves are the input).
func BenchmarkPixels(b *testing.B) {
	data := benchOnce()
	ctx := context.Background()
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	for range b.N {
		p, err := NewPixels(PixelOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for i := range data.scores {
			if err := p.Add(data.scores[i], data.masks[i], data.w, data.h); err != nil {
				b.Fatal(err)
			}
		}
		r, err := p.Compute(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if !r.AUROC.OK() || !r.AUPROMVTec.OK() || !r.AUPROCflow200.OK() || math.IsNaN(r.AP.V+r.F1Max.V) {
			b.Fatalf("undefined metric: %+v", r)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	px := float64(data.pixels())
	b.ReportMetric(px*float64(b.N)/b.Elapsed().Seconds(), "px/s")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N)/px, "alloc-B/px")
}
