package adaclip

import (
	"fmt"

	"github.com/dapobench/dapobench/baselines/adaclip/kmeans"
	"github.com/dapobench/dapobench/bench"
)

// variants are AdaCLIP and its ablations, as configuration.
var variants = bench.VariantTable[Options]{
	{bench.Variant{Name: "adaclip", Doc: "AdaCLIP as test.py runs it: HSF with k-means seeds from numpy's global generator seeded 111, drawn image after image in run order (scikit-learn 1.2's first centre), Gaussian σ=4"},
		func(*Options) {}},
	{bench.Variant{Name: "adaclip/kmeans-per-image", Doc: "every image's k-means seeded as the first image of a fresh process: scores independent of run order"},
		func(o *Options) { o.PerImageSeeds = true }},
	{bench.Variant{Name: "adaclip/sklearn-1.3", Doc: "the first k-means++ centre drawn as scikit-learn >= 1.3 draws it (choice with unit weights instead of randint)"},
		func(o *Options) { o.First = kmeans.ChoiceUnitWeights }},
	{bench.Variant{Name: "adaclip/no-hsf", Doc: "use_hsf=False (the official flag): the image score from the projected class token alone, no k-means"},
		func(o *Options) { o.NoHSF = true }},
	{bench.Variant{Name: "adaclip/no-smoothing", Doc: "maps without the Gaussian filter"},
		func(o *Options) { o.NoSmoothing = true }},
}

// Variants lists the named AdaCLIP variants, AdaCLIP itself first.
func Variants() []bench.Variant {
	return variants.List()
}

// Parse applies the named variant ("" is AdaCLIP itself) to base and names
// the options after it.
func Parse(name string, base Options) (Options, error) {
	if o, full, ok := variants.Apply(name, base); ok {
		o.Name = full
		return o, nil
	}
	return Options{}, fmt.Errorf("adaclip: unknown variant %q (want one of %s)", name, variants.Names())
}
