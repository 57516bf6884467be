package aprilgan

import (
	"fmt"

	"github.com/dapobench/dapobench/bench"
)

// variants are APRIL-GAN and its ablations, as configuration.
var variants = bench.VariantTable[Options]{
	{bench.Variant{Name: "aprilgan", Doc: "APRIL-GAN zero-shot as test_zero_shot.sh runs it: layers 6/12/18/24, softmax image score"},
		func(*Options) {}},
	{bench.Variant{Name: "aprilgan/last-layer", Doc: "the map of the last feature layer alone (24 for ViT-L)"},
		func(o *Options) { o.Layers = []int{-1} }},
	{bench.Variant{Name: "aprilgan/map-max", Doc: "image score = maximum of the map instead of the softmax score"},
		func(o *Options) { o.Score = MapMax }},
}

// Variants lists the named APRIL-GAN variants, APRIL-GAN itself first.
func Variants() []bench.Variant {
	return variants.List()
}

// Parse applies the named variant ("" is APRIL-GAN itself) to base and
// names the options after it. Layer −1 stands for the model's last
// feature layer.
func Parse(name string, base Options) (Options, error) {
	if o, full, ok := variants.Apply(name, base); ok {
		o.Name = full
		return o, nil
	}
	return Options{}, fmt.Errorf("aprilgan: unknown variant %q (want one of %s)", name, variants.Names())
}
