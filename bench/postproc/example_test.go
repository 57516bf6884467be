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
