package metrics

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
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
	rss    float64 // peak RSS once the data exists
}

func (s *benchSet) pixels() int { return s.w * s.h * len(s.scores) }

const (
	benchW, benchH = 500, 500
	benchImages    = 200 // 50 M pixels
	benchPosFrac   = 0.03
)

var benchOnce = sync.OnceValue(func() *benchSet {
	s := makeBenchSet(benchImages, benchW, benchH, 7)
	runtime.GC()
	s.rss = peakRSS()
	return s
})

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

// spreadOnce is the worst case for the bucketed walk: the benchmark's masks
// with scores drawn uniformly over the float32 bit patterns of magnitude
// below 2^126 (so that max − min stays finite for cal_pro_score), so that
// almost every one of the 65 536 buckets is busy and few values repeat.
var spreadOnce = sync.OnceValue(func() *benchSet {
	base := benchOnce()
	rng := rand.New(rand.NewPCG(8, 1))
	s := &benchSet{w: base.w, h: base.h, masks: base.masks, rss: base.rss}
	for range base.scores {
		sc := make([]float32, base.w*base.h)
		for i := range sc {
			for {
				if u := rng.Uint32(); (u>>23)&0xff < 0xfd {
					sc[i] = math.Float32frombits(u)
					break
				}
			}
		}
		s.scores = append(s.scores, sc)
	}
	runtime.GC()
	s.rss = peakRSS()
	return s
})

// BenchmarkPixels measures the exact pixel AUROC, AP, F1-max and both
// AU-PRO variants of one 50 M-pixel category, streaming: Add per image,
// then Compute. Run with -cpu 1 for the per-core rate. px/s is pixels per
// second; alloc-B/px is every byte allocated per pixel, an upper bound on
// the extra heap (the maps themselves are the input); peak-B/px is the
// growth of the process's peak RSS over the input, per pixel, garbage not
// yet collected included. `make bench-metrics` runs it next to
// scikit-learn on the same data.
func BenchmarkPixels(b *testing.B) { benchPixels(b, benchOnce()) }

// BenchmarkPixelsSpread is BenchmarkPixels on the worst-case scores.
func BenchmarkPixelsSpread(b *testing.B) { benchPixels(b, spreadOnce()) }

func benchPixels(b *testing.B, data *benchSet) {
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
	if data.rss > 0 {
		b.ReportMetric((peakRSS()-data.rss)/px, "peak-B/px")
	}
}

// TestWriteBenchData writes the benchmark's category for `make
// bench-metrics` when DAPOBENCH_BENCH_DATA names a directory: scores.npy
// (float32, N×H×W), masks.npy (uint8) and go.json with the metrics this
// package computes on them, which the scikit-learn side checks.
func TestWriteBenchData(t *testing.T) {
	dir := os.Getenv("DAPOBENCH_BENCH_DATA")
	if dir == "" {
		t.Skip("DAPOBENCH_BENCH_DATA not set")
	}
	data := benchOnce()
	shape := []int{len(data.scores), data.h, data.w}
	var sc bytes.Buffer
	var mk bytes.Buffer
	for i := range data.scores {
		binary.Write(&sc, binary.LittleEndian, data.scores[i])
		mk.Write(data.masks[i])
	}
	if err := writeNPY(filepath.Join(dir, "scores.npy"), "<f4", shape, sc.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := writeNPY(filepath.Join(dir, "masks.npy"), "|u1", shape, mk.Bytes()); err != nil {
		t.Fatal(err)
	}
	p, err := NewPixels(PixelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range data.scores {
		if err := p.Add(data.scores[i], data.masks[i], data.w, data.h); err != nil {
			t.Fatal(err)
		}
	}
	r, err := p.Compute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(map[string]float64{
		"auroc": r.AUROC.V, "ap": r.AP.V, "f1max": r.F1Max.V, "f1_threshold": r.F1Threshold,
		"aupro_mvtec": r.AUPROMVTec.V, "aupro_cflow200": r.AUPROCflow200.V,
		"pixels": float64(data.pixels()), "positives": float64(r.Pos),
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeNPY writes a version 1.0 .npy file.
func writeNPY(path, descr string, shape []int, data []byte) error {
	dims := ""
	for _, d := range shape {
		dims += fmt.Sprintf("%d, ", d)
	}
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, strings.TrimSuffix(dims, " "))
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	b.WriteString(h)
	b.Write(data)
	return os.WriteFile(path, b.Bytes(), 0o644)
}
