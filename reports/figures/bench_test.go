package figures

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// BenchmarkDrawOverlay draws a 518×518 map, DAPO's evaluation size, over a
// 1024×1024 image.
func BenchmarkDrawOverlay(b *testing.B) {
	const size = 518
	m, mask := ramp(size)
	img := picture(1024)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := DrawOverlay(Overlay{Image: img, Map: m, Mask: mask, Size: size, Min: 0, Max: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkROCPlot draws and saves, as PNG and SVG, the ROC curves of three
// runs on 500 images.
func BenchmarkROCPlot(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	var series []Series
	for r := 0; r < 3; r++ {
		s := Series{Label: "run"}
		for i := 0; i < 500; i++ {
			pos := i%4 == 0
			v := rng.NormFloat64()
			if pos {
				v += float64(r)
			}
			s.Scores, s.Labels = append(s.Scores, v), append(s.Labels, pos)
		}
		series = append(series, s)
	}
	dir := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := ROCPlot("bench", series)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := SavePlot(p, filepath.Join(dir, "roc"), CurveSize); err != nil {
			b.Fatal(err)
		}
	}
}
