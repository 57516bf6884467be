package metrics

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// randomImages makes maps whose scores exercise the walk: values from a
// small set (ties), wide ranges (many buckets), negatives, ±0, and masks with
// blobs and diagonal-only contacts.
func randomImages(rng *rand.Rand, n, w, h int, kind int) []naiveImage {
	var imgs []naiveImage
	for k := 0; k < n; k++ {
		m := naiveImage{w: w, h: h, scores: make([]float32, w*h), mask: make([]uint8, w*h)}
		for i := range m.scores {
			var s float32
			switch kind {
			case 0: // continuous
				s = float32(rng.NormFloat64())
			case 1: // heavy ties
				s = float32(rng.IntN(7)) / 4
			case 2: // ±0 and negatives
				s = []float32{0, float32(math.Copysign(0, -1)), -1, 1, -0.5}[rng.IntN(5)]
			case 3: // many buckets: wide exponent range
				s = float32(math.Ldexp(rng.Float64(), rng.IntN(80)-40))
				if rng.IntN(2) == 0 {
					s = -s
				}
			case 4: // dense buckets: one bucket, many values
				s = 1 + float32(rng.IntN(1<<15))/(1<<23)
			}
			m.scores[i] = s
		}
		// Blobs.
		for b := rng.IntN(3); b > 0; b-- {
			cx, cy, r := rng.IntN(w), rng.IntN(h), 1+rng.IntN(4)
			for y := max(0, cy-r); y < min(h, cy+r); y++ {
				for x := max(0, cx-r); x < min(w, cx+r); x++ {
					m.mask[y*w+x] = 255
					m.scores[y*w+x] += float32(rng.Float64())
				}
			}
		}
		// Diagonal-only neighbours (8-connected, not 4-connected).
		if rng.IntN(2) == 0 && w > 3 && h > 3 {
			m.mask[0] = 1
			m.mask[w+1] = 1
			m.mask[2*w+2] = 1
		}
		imgs = append(imgs, m)
	}
	return imgs
}

func computePixels(t testing.TB, imgs []naiveImage, opt PixelOptions) PixelResult {
	t.Helper()
	p, err := NewPixels(opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range imgs {
		if err := p.Add(m.scores, m.mask, m.w, m.h); err != nil {
			t.Fatal(err)
		}
	}
	r, err := p.Compute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func near(a, b, tol float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= tol
}

func TestPixelsMatchNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for kind := 0; kind < 5; kind++ {
		for trial := 0; trial < 6; trial++ {
			w, h := 3+rng.IntN(30), 3+rng.IntN(30)
			imgs := randomImages(rng, 1+rng.IntN(5), w, h, kind)
			limit := []float64{0.3, 0.05, 1, 0.5}[trial%4]
			got := computePixels(t, imgs, PixelOptions{PROLimit: limit})
			want := naiveMetrics(imgs, limit)
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"auroc", got.AUROC.V, want.auroc},
				{"ap", got.AP.V, want.ap},
				{"f1", got.F1Max.V, want.f1},
				{"f1thr", got.F1Threshold, want.f1thr},
				{"mvtec", got.AUPROMVTec.V, want.mvtec},
				{"cflow", got.AUPROCflow200.V, want.cflow},
			} {
				if !near(c.got, c.want, 1e-12) {
					t.Errorf("kind %d trial %d (%dx%d, %d images, limit %v): %s = %.17g, naive %.17g",
						kind, trial, w, h, len(imgs), limit, c.name, c.got, c.want)
				}
			}
			// Without regions the binary metrics are the same and AUPRO is
			// undefined.
			nr := computePixels(t, imgs, PixelOptions{NoRegions: true})
			same := func(a, b Value) bool { return a.Reason == b.Reason && near(a.V, b.V, 0) }
			if !same(nr.AUROC, got.AUROC) || !same(nr.AP, got.AP) || !same(nr.F1Max, got.F1Max) ||
				nr.AUPROMVTec.OK() || nr.AUPROCflow200.OK() {
				t.Errorf("kind %d trial %d: NoRegions gave %+v, with regions %+v", kind, trial, nr, got)
			}
		}
	}
}

func TestPixelsRejectsBadInput(t *testing.T) {
	tests := []struct {
		name   string
		scores []float32
		mask   []uint8
		w, h   int
		want   error
	}{
		{"nan", []float32{0, float32(math.NaN()), 0, 0}, []uint8{0, 0, 0, 0}, 2, 2, ErrNonFinite},
		{"inf", []float32{0, 0, float32(math.Inf(-1)), 0}, []uint8{0, 0, 0, 0}, 2, 2, ErrNonFinite},
		{"mask 2", []float32{0, 0, 0, 0}, []uint8{0, 2, 0, 0}, 2, 2, ErrMaskValue},
		{"mask 128", []float32{0, 0, 0, 0}, []uint8{0, 0, 0, 128}, 2, 2, ErrMaskValue},
		{"short scores", []float32{0, 0, 0}, []uint8{0, 0, 0, 0}, 2, 2, ErrShape},
		{"short mask", []float32{0, 0, 0, 0}, []uint8{0, 0, 0}, 2, 2, ErrShape},
		{"zero size", nil, nil, 0, 2, ErrShape},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := NewPixels(PixelOptions{})
			err := p.Add(tc.scores, tc.mask, tc.w, tc.h)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Add = %v, want %v", err, tc.want)
			}
			// The failed image left nothing behind.
			r, err := p.Compute(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if r.Neg+r.Pos != 0 || r.Images != 0 {
				t.Errorf("after a failed Add: %d pixels, %d images", r.Neg+r.Pos, r.Images)
			}
		})
	}
}

func TestPixelsUndefined(t *testing.T) {
	normal := naiveImage{w: 2, h: 2, scores: []float32{1, 2, 3, 4}, mask: []uint8{0, 0, 0, 0}}
	allDefect := naiveImage{w: 2, h: 2, scores: []float32{1, 2, 3, 4}, mask: []uint8{1, 1, 1, 1}}
	constant := naiveImage{w: 2, h: 2, scores: []float32{5, 5, 5, 5}, mask: []uint8{0, 255, 0, 0}}
	tests := []struct {
		name                           string
		imgs                           []naiveImage
		auroc, ap, f1, mvtec, cflow200 bool // defined?
	}{
		{"no defects", []naiveImage{normal}, false, false, false, false, false},
		{"all defect", []naiveImage{allDefect}, false, true, true, false, false},
		{"constant", []naiveImage{constant}, true, true, true, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := computePixels(t, tc.imgs, PixelOptions{})
			for _, c := range []struct {
				name string
				v    Value
				ok   bool
			}{{"auroc", r.AUROC, tc.auroc}, {"ap", r.AP, tc.ap}, {"f1", r.F1Max, tc.f1},
				{"mvtec", r.AUPROMVTec, tc.mvtec}, {"cflow200", r.AUPROCflow200, tc.cflow200}} {
				if c.v.OK() != c.ok {
					t.Errorf("%s: OK() = %v (value %v, reason %q), want %v", c.name, c.v.OK(), c.v.V, c.v.Reason, c.ok)
				}
				if !c.v.OK() && (!math.IsNaN(c.v.V) || c.v.Reason == "" || !errors.Is(c.v.Err(c.name), ErrUndefined)) {
					t.Errorf("%s: undefined value %v with reason %q", c.name, c.v.V, c.v.Reason)
				}
			}
		})
	}
}

// FuzzPixels compares the bucketed walk with the naive sort on maps built
// from the fuzzer's bytes: each pixel takes one byte of score (a few
// distinct values, ±0 and signs, and widely spread magnitudes) and one bit
// of mask.
func FuzzPixels(f *testing.F) {
	f.Add([]byte{3, 5, 0, 1, 2, 250, 7, 9, 128, 127, 0, 0}, uint8(4), uint8(3))
	f.Add([]byte{255, 0, 255, 0, 1, 1, 1, 1}, uint8(2), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, w, h uint8) {
		width, height := int(w%12)+1, int(h%12)+1
		n := width * height
		if len(data) < n {
			return
		}
		m := naiveImage{w: width, h: height, scores: make([]float32, n), mask: make([]uint8, n)}
		for i := 0; i < n; i++ {
			b := data[i]
			v := float32(math.Ldexp(float64(b&0x0f), int(b>>4)*9-60)) // 16 mantissas × 16 exponents
			if b&0x40 != 0 {
				v = -v
			}
			m.scores[i] = v
			if i < len(data)-n && data[n+i]&1 == 1 {
				m.mask[i] = 255
			}
		}
		got := computePixels(t, []naiveImage{m}, PixelOptions{})
		want := naiveMetrics([]naiveImage{m}, DefaultPROLimit)
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"auroc", got.AUROC.V, want.auroc}, {"ap", got.AP.V, want.ap}, {"f1", got.F1Max.V, want.f1},
			{"mvtec", got.AUPROMVTec.V, want.mvtec}, {"cflow", got.AUPROCflow200.V, want.cflow}} {
			if !near(c.got, c.want, 1e-12) {
				t.Errorf("%s = %.17g, naive %.17g", c.name, c.got, c.want)
			}
		}
	})
}
