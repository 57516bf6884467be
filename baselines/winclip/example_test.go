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
	o, err := winclip.Parse("winclip/scale-2")
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
