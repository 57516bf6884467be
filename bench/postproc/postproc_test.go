package postproc

import (
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
)

func TestShapeErrors(t *testing.T) {
	m23 := Mat{Rows: 2, Cols: 3, Data: make([]float32, 6)}
	m33 := Mat{Rows: 3, Cols: 3, Data: make([]float32, 9)}
	m22 := Mat{Rows: 2, Cols: 2, Data: make([]float32, 4)}
	g, err := NewGaussian(1, GaussianTruncate)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBilinear(2, 2, 4, 4, true)
	if err != nil {
		t.Fatal(err)
	}
	grid := func(c, h, w int) Grid { return Grid{C: c, H: h, W: w, Data: make([]float32, c*h*w)} }
	tests := []struct {
		name  string
		err   error
		shape bool // the error must wrap ErrShape
	}{
		{"normalize: data shorter than shape", NormalizeRows(Mat{Rows: 2, Cols: 3, Data: make([]float32, 5)}), true},
		{"normalize: negative rows", NormalizeRows(Mat{Rows: -1, Cols: 3}), true},
		{"normalize: overflowing shape", NormalizeRows(Mat{Rows: math.MaxInt / 2, Cols: 3}), true},
		{"logits: dimension mismatch", CosineLogits(m22, m23, m22, Temperature), true},
		{"logits: dst shape", CosineLogits(m33, m23, m23, Temperature), true},
		{"logits: zero temperature", CosineLogits(m22, m23, m23, 0), false},
		{"logits: NaN temperature", CosineLogits(m22, m23, m23, math.NaN()), false},
		{"logits: infinite temperature", CosineLogits(m22, m23, m23, math.Inf(1)), false},
		{"softmax: zero classes", Softmax(Mat{Rows: 2, Cols: 0}), true},
		{"softmax: NaN logit", Softmax(Mat{Rows: 1, Cols: 2, Data: []float32{0, float32(math.NaN())}}), false},
		{"softmax: infinite logit", Softmax(Mat{Rows: 1, Cols: 2, Data: []float32{0, float32(math.Inf(-1))}}), false},
		{"transpose: shape", Transpose(m23, m23), true},
		{"bilinear: zero size", func() error { _, err := NewBilinear(0, 2, 4, 4, true); return err }(), true},
		{"bilinear: negative size", func() error { _, err := NewBilinear(2, 2, -4, 4, false); return err }(), true},
		{"bilinear: src shape", b.Apply(grid(1, 4, 4), grid(1, 3, 2)), true},
		{"bilinear: channel mismatch", b.Apply(grid(2, 4, 4), grid(1, 2, 2)), true},
		{"bilinear: short data", b.Apply(grid(1, 4, 4), Grid{C: 1, H: 2, W: 2, Data: make([]float32, 3)}), true},
		{"upsample: empty dst", Upsample(Grid{C: 1, H: 0, W: 4}, grid(1, 2, 2), false), true},
		{"gaussian: negative sigma", func() error { _, err := NewGaussian(-1, 4); return err }(), false},
		{"gaussian: NaN sigma", func() error { _, err := NewGaussian(math.NaN(), 4); return err }(), false},
		{"gaussian: negative truncate", func() error { _, err := NewGaussian(1, -4); return err }(), false},
		{"gaussian: huge radius", func() error { _, err := NewGaussian(1e9, 4); return err }(), false},
		{"gaussian: length mismatch", g.Filter(make([]float32, 6), make([]float32, 5), 2, 3), true},
		{"gaussian: zero height", g.Filter(nil, nil, 0, 3), true},
		{"gaussian filter: bad sigma", GaussianFilter(make([]float32, 4), make([]float32, 4), 2, 2, math.Inf(1)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("no error")
			}
			if tt.shape != errors.Is(tt.err, ErrShape) {
				t.Errorf("errors.Is(ErrShape) = %v: %v", !tt.shape, tt.err)
			}
		})
	}
}

func TestSoftmaxSumsToOne(t *testing.T) {
	m := Mat{Rows: 3, Cols: 4, Data: []float32{1, 2, 3, 4, -50, 50, 0, 0, 7, 7, 7, 7}}
	if err := Softmax(m); err != nil {
		t.Fatal(err)
	}
	for i := range m.Rows {
		var s float64
		for _, v := range m.Row(i) {
			s += float64(v)
		}
		if math.Abs(s-1) > 1e-6 {
			t.Errorf("row %d sums to %v", i, s)
		}
	}
	if m.Row(2)[0] != 0.25 {
		t.Errorf("equal logits give %v, want 0.25", m.Row(2)[0])
	}
}

func TestTranspose(t *testing.T) {
	src := Mat{Rows: 2, Cols: 3, Data: []float32{1, 2, 3, 4, 5, 6}}
	dst := Mat{Rows: 3, Cols: 2, Data: make([]float32, 6)}
	if err := Transpose(dst, src); err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, 4, 2, 5, 3, 6}; !slices.Equal(dst.Data, want) {
		t.Errorf("got %v, want %v", dst.Data, want)
	}
}

// TestGaussianIdentity: scipy skips an axis whose σ is at most 1e-15.
func TestGaussianIdentity(t *testing.T) {
	src := []float32{1, 2, 3, 4, 5, 6}
	dst := make([]float32, 6)
	if err := GaussianFilter(dst, src, 2, 3, 0); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dst, src) {
		t.Errorf("σ=0 gave %v", dst)
	}
}

// TestConcurrentPlans runs one Bilinear and one Gaussian from several
// goroutines (with -race) and checks every result against a serial run.
func TestConcurrentPlans(t *testing.T) {
	b, err := NewBilinear(37, 37, 518, 518, false)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGaussian(AnomalyCLIPSigma, GaussianTruncate)
	if err != nil {
		t.Fatal(err)
	}
	src := Grid{C: 1, H: 37, W: 37, Data: make([]float32, 37*37)}
	for i := range src.Data {
		src.Data[i] = float32(i%101) / 101
	}
	run := func() []float32 {
		dst := Grid{C: 1, H: 518, W: 518, Data: make([]float32, 518*518)}
		if err := b.Apply(dst, src); err != nil {
			t.Error(err)
		}
		if err := g.Filter(dst.Data, dst.Data, 518, 518); err != nil {
			t.Error(err)
		}
		return dst.Data
	}
	want := run()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 2 {
				if got := run(); !slices.Equal(got, want) {
					t.Error("concurrent result differs from the serial one")
				}
			}
		})
	}
	wg.Wait()
}

// FuzzBilinear checks, for any sizes and values in [0, 1), that resizing
// neither fails nor leaves the range of the input: every output is a convex
// combination of inputs.
func FuzzBilinear(f *testing.F) {
	f.Add(uint8(37), uint8(37), uint16(518), uint16(518), true, int64(1))
	f.Add(uint8(1), uint8(5), uint16(3), uint16(1), false, int64(2))
	f.Add(uint8(9), uint8(8), uint16(4), uint16(3), false, int64(3))
	f.Fuzz(func(t *testing.T, inH, inW uint8, outH, outW uint16, align bool, seed int64) {
		ih, iw, oh, ow := int(inH)%64+1, int(inW)%64+1, int(outH)%600+1, int(outW)%600+1
		src := Grid{C: 1, H: ih, W: iw, Data: make([]float32, ih*iw)}
		lo, hi := float32(1), float32(0)
		x := uint64(seed)
		for i := range src.Data {
			x = x*6364136223846793005 + 1442695040888963407
			v := float32(x>>40) / (1 << 24)
			src.Data[i] = v
			lo, hi = min(lo, v), max(hi, v)
		}
		dst := Grid{C: 1, H: oh, W: ow, Data: make([]float32, oh*ow)}
		if err := Upsample(dst, src, align); err != nil {
			t.Fatal(err)
		}
		// The weights sum to 1 only up to float32 rounding.
		slack := float32(4e-7)
		for i, v := range dst.Data {
			if v < lo-slack || v > hi+slack {
				t.Fatalf("%d×%d→%d×%d: output %d is %v, outside [%v, %v]", ih, iw, oh, ow, i, v, lo, hi)
			}
		}
	})
}
