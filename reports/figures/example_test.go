package figures_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dapobench/dapobench/reports/figures"
)

func ExampleROC() {
	scores := []float64{0.9, 0.7, 0.7, 0.3, 0.1}
	labels := []bool{true, true, false, false, true}
	fpr, tpr, err := figures.ROC(scores, labels)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range fpr {
		fmt.Printf("(%.2f, %.2f) ", fpr[i], tpr[i])
	}
	fmt.Println()
	// Output:
	// (0.00, 0.00) (0.00, 0.33) (0.50, 0.67) (1.00, 0.67) (1.00, 1.00)
}

func ExampleSavePlot() {
	p, err := figures.ROCPlot("bottle", []figures.Series{
		{Label: "dapo", Scores: []float64{0.9, 0.8, 0.3, 0.1}, Labels: []bool{true, false, true, false}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, err := os.MkdirTemp("", "figures")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	paths, err := figures.SavePlot(p, filepath.Join(dir, "roc-bottle"), figures.CurveSize)
	if err != nil {
		fmt.Println(err)
		return
	}
	w, h := figures.CurveSize.Pixels()
	for _, p := range paths {
		fmt.Println(filepath.Base(p))
	}
	fmt.Printf("PNG of %d×%d pixels\n", w, h)
	// Output:
	// roc-bottle.png
	// roc-bottle.svg
	// PNG of 480×384 pixels
}

func ExampleDrawOverlay() {
	const size = 4
	m := make([]float32, size*size) // an anomaly map rising to the right
	mask := make([]uint8, size*size)
	for i := range m {
		m[i] = float32(i % size)
	}
	mask[1*size+2], mask[2*size+2] = 1, 1 // a two-pixel defect
	pic, err := figures.DrawOverlay(figures.Overlay{Map: m, Mask: mask, Size: size, Min: 0, Max: 3, Scale: 8})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(pic.Bounds().Dx(), "×", pic.Bounds().Dy())
	// Output:
	// 68 × 32
}
