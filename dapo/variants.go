package dapo

import (
	"fmt"

	"github.com/dapobench/dapobench/bench"
)

// HandcraftedContext is the fixed context of the handcrafted-prompt
// ablation, in place of the l learned tokens.
const HandcraftedContext = "a photo of a"

// variants are the ablations a researcher runs against DAPO, as
// configuration: each is the default DAPO with one change.
var variants = bench.VariantTable[Options]{
	{bench.Variant{Name: "dapo", Doc: "DAPO as the official code runs it"}, func(*Options) {}},
	{bench.Variant{Name: "dapo/no-defect-words", Doc: "one abnormal prompt without a defect word"}, func(o *Options) { o.NoDefectWords = true }},
	{bench.Variant{Name: "dapo/handcrafted", Doc: "context \"" + HandcraftedContext + "\" instead of the learned tokens"}, func(o *Options) { o.Handcrafted = HandcraftedContext }},
	{bench.Variant{Name: "dapo/e1", Doc: "one prompt group (E=1) instead of ten"}, func(o *Options) { o.Groups = 1 }},
	{bench.Variant{Name: "dapo/last-layer", Doc: "anomaly map from the last feature layer only"}, func(o *Options) { o.Layers = []int{-1} }},
}

// Variants lists the named variants, DAPO itself first.
func Variants() []bench.Variant {
	return variants.List()
}

// Parse applies the named variant ("" is DAPO itself) to base and names
// the options after it. A layer of -1 stands for the model's last feature
// layer and is resolved in Prepare.
func Parse(name string, base Options) (Options, error) {
	if o, full, ok := variants.Apply(name, base); ok {
		o.Name = full
		return o, nil
	}
	return base, fmt.Errorf("dapo: unknown variant %q; valid: %s", name, variants.Names())
}
