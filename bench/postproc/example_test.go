package postproc_test

import (
	"fmt"

	"github.com/dapobench/dapobench/bench/postproc"
)

// A two-class (normal, abnormal) map as DAPO and AnomalyCLIP compute it:
// softmax of cosine logits per patch, planar class maps, upsampling. The
// printed values agree with NumPy and testdata/reference.py's bilinear.
func Example() {
	// Four patch features on a 2×2 grid and two class embeddings, 3-d.
	patches := postproc.Mat{Rows: 4, Cols: 3, Data: []float32{
		1, 0.9, 0,
		1, 1, 0,
		0.9, 1, 0,
		0.8, 1, 0.1,
	}}
	text := postproc.Mat{Rows: 2, Cols: 3, Data: []float32{1, 0, 0, 0, 1, 0}}
	probs := postproc.Mat{Rows: 4, Cols: 2, Data: make([]float32, 8)}
	if err := postproc.CosineLogits(probs, patches, text, postproc.Temperature); err != nil {
		fmt.Println(err)
		return
	}
	if err := postproc.Softmax(probs); err != nil {
		fmt.Println(err)
		return
	}
	maps := postproc.Mat{Rows: 2, Cols: 4, Data: make([]float32, 8)}
	if err := postproc.Transpose(maps, probs); err != nil {
		fmt.Println(err)
		return
	}
	grid := postproc.Grid{C: 2, H: 2, W: 2, Data: maps.Data}
	up := postproc.Grid{C: 2, H: 3, W: 3, Data: make([]float32, 18)}
	if err := postproc.Upsample(up, grid, true); err != nil {
		fmt.Println(err)
		return
	}
	abnormal := up.Plane(1)
	for y := range 3 {
		fmt.Printf("%.3f\n", abnormal[3*y:3*y+3])
	}
	// Output:
	// [0.257 0.378 0.500]
	// [0.500 0.601 0.701]
	// [0.743 0.823 0.902]
}

func ExampleNewWindows() {
	w, err := postproc.NewWindows(3, 3, 2, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range w.N {
		fmt.Println(w.Window(i), w.Tokens()[i*5:(i+1)*5])
	}
	// Output:
	// [0 1 3 4] [0 1 2 4 5]
	// [1 2 4 5] [0 2 3 5 6]
	// [3 4 6 7] [0 4 5 7 8]
	// [4 5 7 8] [0 5 6 8 9]
}

// WinCLIP's zero-shot map: per-scale harmonic means of window scores, then
// the harmonic mean with the image score.
func ExampleHarmonicAggregate() {
	w, _ := postproc.NewWindows(3, 3, 2, 1)
	scale2 := make([]float32, 9)
	if err := postproc.HarmonicAggregate(scale2, []float32{1, 0.75, 0.5, 0.25}, w); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.4f\n", scale2)
	final := make([]float32, 9)
	if err := postproc.MultiScaleHarmonic(final, 0.5, scale2); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.4f\n", final)
	// Output:
	// [1.0000 0.8571 0.7500 0.6667 0.4800 0.3750 0.5000 0.3333 0.2500]
	// [0.6667 0.6316 0.6000 0.5714 0.4898 0.4286 0.5000 0.4000 0.3333]
}

// AnomalyCLIP smooths each 518×518 map with σ = 4 (radius 16).
func ExampleGaussian() {
	g, err := postproc.NewGaussian(postproc.AnomalyCLIPSigma, postproc.GaussianTruncate)
	if err != nil {
		fmt.Println(err)
		return
	}
	m := make([]float32, 518*518)
	m[259*518+259] = 1 // a single hot pixel
	if err := g.Filter(m, m, 518, 518); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("radius %d, peak %.6f\n", g.Radius(), m[259*518+259])
	// Output:
	// radius 16, peak 0.009948
}
