package anomalyclip

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dapobench/dapobench/bench"
)

// layersPrefix starts the names of layer-subset variants:
// "anomalyclip/layers-6-12-18-24".
const layersPrefix = "anomalyclip/layers-"

// variants are AnomalyCLIP and its ablations, as configuration. Any layer
// set can be named "anomalyclip/layers-<l>-<l>…"; the list shows the one of
// the paper's first version.
var variants = bench.VariantTable[Options]{
	{bench.Variant{Name: "anomalyclip", Doc: "AnomalyCLIP as test.sh runs it: the model's feature layers ([24] for ViT-L), Gaussian σ=4"},
		func(*Options) {}},
	{bench.Variant{Name: "anomalyclip/no-smoothing", Doc: "maps without the Gaussian filter"},
		func(o *Options) { o.NoSmoothing = true }},
	{bench.Variant{Name: layersPrefix + "6-12-18-24", Doc: "maps summed over layers 6, 12, 18 and 24 (paper v1, argparse default); needs a model built with them"},
		func(o *Options) { o.Layers = []int{6, 12, 18, 24} }},
}

// Variants lists the named AnomalyCLIP variants, AnomalyCLIP itself first.
func Variants() []bench.Variant {
	return variants.List()
}

// Parse applies the named variant ("" is AnomalyCLIP itself) to base and
// names the options after it.
func Parse(name string, base Options) (Options, error) {
	if o, full, ok := variants.Apply(name, base); ok {
		o.Name = full
		return o, nil
	}
	if rest, ok := strings.CutPrefix(name, layersPrefix); ok {
		var layers []int
		for _, f := range strings.Split(rest, "-") {
			l, err := strconv.Atoi(f)
			if err != nil || l < 1 || strconv.Itoa(l) != f {
				return Options{}, fmt.Errorf("anomalyclip: variant %q: %q is not a layer number", name, f)
			}
			layers = append(layers, l)
		}
		base.Name, base.Layers = name, layers
		return base, nil
	}
	return Options{}, fmt.Errorf("anomalyclip: unknown variant %q (want one of %s, or %s<layer>-<layer>…)", name, variants.Names(), layersPrefix)
}
