package multiads

import (
	"fmt"

	"github.com/dapobench/dapobench/bench"
)

// variants are MultiADS and its ablations, as configuration.
var variants = bench.VariantTable[Options]{
	{bench.Variant{Name: "multiads", Doc: "MultiADS zero-shot as its test.py runs it: top-3 mean of the map, min–max normalised per category; multi-type maps as test_multi_defect.py"},
		func(*Options) {}},
	{bench.Variant{Name: "multiads/softmax-score", Doc: "image score Σ_{c≥1} softmax(100·f·Tᵀ)_c, which test.py computes and then overwrites"},
		func(o *Options) { o.Score = SoftmaxScore }},
	{bench.Variant{Name: "multiads/no-multitype", Doc: "binary maps and image scores only, without the multi-type class maps"},
		func(o *Options) { o.NoMultiType = true }},
}

// Variants lists the named MultiADS variants, MultiADS itself first.
func Variants() []bench.Variant {
	return variants.List()
}

// Parse applies the named variant ("" is MultiADS itself) to base and
// names the options after it.
func Parse(name string, base Options) (Options, error) {
	if o, full, ok := variants.Apply(name, base); ok {
		o.Name = full
		return o, nil
	}
	return Options{}, fmt.Errorf("multiads: unknown variant %q (want one of %s)", name, variants.Names())
}
