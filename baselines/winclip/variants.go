package winclip

import (
	"fmt"

	"github.com/dapobench/dapobench/bench"
)

// variants are WinCLIP and its ablations, as configuration: each is the
// default with one change.
var variants = bench.VariantTable[Options]{
	{bench.Variant{Name: "winclip", Doc: "anomalib's zero-shot WinCLIP: 2×2 and 3×3 windows, 21 templates, category name"},
		func(*Options) {}},
	{bench.Variant{Name: "winclip/no-windows", Doc: "no window maps: the map is the image score at every pixel"},
		func(o *Options) { o.NoWindows = true }},
	{bench.Variant{Name: "winclip/scale-2", Doc: "2×2 windows only (harmonic mean with the image score)"},
		func(o *Options) { o.Scales = []int{2} }},
	{bench.Variant{Name: "winclip/scale-3", Doc: "3×3 windows only (harmonic mean with the image score)"},
		func(o *Options) { o.Scales = []int{3} }},
	{bench.Variant{Name: "winclip/templates-22", Doc: "the 22 templates of the authors' reproduction (caoyunkang/WinClip)"},
		func(o *Options) { o.Templates = TemplatesOfficial }},
	{bench.Variant{Name: "winclip/object", Doc: `the word "object" instead of the category name (anomalib's fallback)`},
		func(o *Options) { o.Object = "object" }},
}

// Variants lists the named WinCLIP variants, WinCLIP itself first.
func Variants() []bench.Variant {
	return variants.List()
}

// Parse applies the named variant ("" is WinCLIP itself) to base and names
// the options after it.
func Parse(name string, base Options) (Options, error) {
	if o, full, ok := variants.Apply(name, base); ok {
		o.Name = full
		return o, nil
	}
	return Options{}, fmt.Errorf("winclip: unknown variant %q (want one of %s)", name, variants.Names())
}
