package multiads

import (
	"fmt"
	"strings"

	"github.com/dapobench/dapobench/bench"
)

// variants are MultiADS and its ablations, as configuration.
var variants = []struct {
	bench.Variant
	apply func(*Options)
}{
	{bench.Variant{Name: "multiads", Doc: "MultiADS zero-shot as its test.py runs it: top-3 mean of the map, min–max normalised per category; multi-type maps as test_multi_defect.py"},
		func(*Options) {}},
	{bench.Variant{Name: "multiads/softmax-score", Doc: "image score Σ_{c≥1} softmax(100·f·Tᵀ)_c, which test.py computes and then overwrites"},
		func(o *Options) { o.Score = SoftmaxScore }},
	{bench.Variant{Name: "multiads/no-multitype", Doc: "binary maps and image scores only, without the multi-type class maps"},
		func(o *Options) { o.NoMultiType = true }},
}

// Variants lists the named MultiADS variants, MultiADS itself first.
func Variants() []bench.Variant {
	out := make([]bench.Variant, len(variants))
	for i, v := range variants {
		out[i] = v.Variant
	}
	return out
}

// Parse applies the named variant ("" is MultiADS itself) to base and
// names the options after it.
func Parse(name string, base Options) (Options, error) {
	if name == "" {
		name = "multiads"
	}
	var names []string
	for _, v := range variants {
		if v.Name == name {
			v.apply(&base)
			base.Name = name
			return base, nil
		}
		names = append(names, v.Name)
	}
	return Options{}, fmt.Errorf("multiads: unknown variant %q (want one of %s)", name, strings.Join(names, ", "))
}
