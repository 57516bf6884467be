package postproc

import (
	"fmt"
	"testing"
)

// BenchmarkUpsample is 37×37 → 518×518 for C maps: AnomalyCLIP (2 classes),
// DAPO binary after summing defect channels (1), DAPO multi-type (11).
func BenchmarkUpsample(b *testing.B) {
	for _, c := range []int{1, 2, 11} {
		for _, align := range []bool{true, false} {
			b.Run(fmt.Sprintf("C=%d/align=%v", c, align), func(b *testing.B) {
				p, err := NewBilinear(37, 37, 518, 518, align)
				if err != nil {
					b.Fatal(err)
				}
				src := Grid{C: c, H: 37, W: 37, Data: make([]float32, c*37*37)}
				for i := range src.Data {
					src.Data[i] = float32(i%97) / 97
				}
				dst := Grid{C: c, H: 518, W: 518, Data: make([]float32, c*518*518)}
				b.SetBytes(int64(4 * len(dst.Data)))
				b.ReportAllocs()
				for b.Loop() {
					if err := p.Apply(dst, src); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkGaussian is AnomalyCLIP's σ=4 filter on one 518×518 map.
func BenchmarkGaussian(b *testing.B) {
	g, err := NewGaussian(AnomalyCLIPSigma, GaussianTruncate)
	if err != nil {
		b.Fatal(err)
	}
	src := pattern518()
	dst := make([]float32, len(src))
	b.SetBytes(int64(4 * len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if err := g.Filter(dst, src, 518, 518); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPatchProbs is one layer's per-patch class probabilities: 1369
// patch tokens of 768 dimensions against 11 classes (DAPO multi-type).
func BenchmarkPatchProbs(b *testing.B) {
	x := Mat{Rows: 1369, Cols: 768, Data: make([]float32, 1369*768)}
	t := Mat{Rows: 11, Cols: 768, Data: make([]float32, 11*768)}
	for i := range x.Data {
		x.Data[i] = float32(i%89)/89 - 0.5
	}
	for i := range t.Data {
		t.Data[i] = float32(i%83)/83 - 0.5
	}
	dst := Mat{Rows: 1369, Cols: 11, Data: make([]float32, 1369*11)}
	b.ReportAllocs()
	for b.Loop() {
		if err := CosineLogits(dst, x, t, Temperature); err != nil {
			b.Fatal(err)
		}
		if err := Softmax(dst); err != nil {
			b.Fatal(err)
		}
	}
}
