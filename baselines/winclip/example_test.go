package winclip_test

import (
	"fmt"

	"github.com/dapobench/dapobench/baselines/winclip"
)

func ExamplePrompts() {
	templates, err := winclip.Templates(winclip.TemplatesAnomalib)
	if err != nil {
		panic(err)
	}
	normal, anomalous, err := winclip.Prompts("metal_nut", templates)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(normal), len(anomalous))
	fmt.Println(normal[0])
	fmt.Println(normal[len(normal)-1])
	fmt.Println(anomalous[0])
	// Output:
	// 147 84
	// a cropped photo of the metal_nut.
	// a photo of a metal_nut without damage for anomaly detection.
	// a cropped photo of the damaged metal_nut.
}

func ExampleParse() {
	for _, v := range winclip.Variants() {
		fmt.Println(v.Name)
	}
	o, err := winclip.Parse("winclip/scale-2", winclip.Options{})
	if err != nil {
		panic(err)
	}
	s, err := winclip.New(o)
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Name(), "→", s.Settings()["scales"])
	// Output:
	// winclip
	// winclip/no-windows
	// winclip/scale-2
	// winclip/scale-3
	// winclip/templates-22
	// winclip/object
	// winclip/scale-2 → 2×2 windows, stride 1
}

func ExampleNewWindows() {
	w, err := winclip.NewWindows(3, 3, 2, 1)
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
	w, _ := winclip.NewWindows(3, 3, 2, 1)
	scale2 := make([]float32, 9)
	if err := winclip.HarmonicAggregate(scale2, []float32{1, 0.75, 0.5, 0.25}, w); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.4f\n", scale2)
	final := make([]float32, 9)
	if err := winclip.MultiScaleHarmonic(final, 0.5, scale2); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.4f\n", final)
	// Output:
	// [1.0000 0.8571 0.7500 0.6667 0.4800 0.3750 0.5000 0.3333 0.2500]
	// [0.6667 0.6316 0.6000 0.5714 0.4898 0.4286 0.5000 0.4000 0.3333]
}
