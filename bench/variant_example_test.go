package bench_test

import (
	"fmt"

	"github.com/dapobench/dapobench/bench"
)

// A scheme keeps its variants in a table: each names a configuration and
// changes the scheme's options; "" is the scheme itself.
func ExampleVariantTable() {
	type options struct{ Layers []int }
	variants := bench.VariantTable[options]{
		{bench.Variant{Name: "mine", Doc: "the scheme as published"}, func(*options) {}},
		{bench.Variant{Name: "mine/last-layer", Doc: "the last layer's map alone"}, func(o *options) { o.Layers = []int{-1} }},
	}
	base := options{Layers: []int{6, 12, 18, 24}}
	for _, name := range []string{"", "mine/last-layer", "mine/other"} {
		o, full, ok := variants.Apply(name, base)
		fmt.Printf("%q: %s %v %v\n", name, full, o.Layers, ok)
	}
	fmt.Println(variants.Names())
	// Output:
	// "": mine [6 12 18 24] true
	// "mine/last-layer": mine/last-layer [-1] true
	// "mine/other": mine/other [6 12 18 24] false
	// mine, mine/last-layer
}
