package dapo

import (
	"fmt"
	"strings"
)

// HandcraftedContext is the fixed context of the handcrafted-prompt
// ablation, in place of the l learned tokens.
const HandcraftedContext = "a photo of a"

// variants are the ablations a researcher runs against DAPO, as
// configuration: each is the default DAPO with one change.
var variants = []struct {
	name, doc string
	apply     func(*Options)
}{
	{"dapo", "DAPO as the official code runs it", func(*Options) {}},
	{"dapo/no-defect-words", "one abnormal prompt without a defect word", func(o *Options) { o.NoDefectWords = true }},
	{"dapo/handcrafted", "context \"" + HandcraftedContext + "\" instead of the learned tokens", func(o *Options) { o.Handcrafted = HandcraftedContext }},
	{"dapo/e1", "one prompt group (E=1) instead of ten", func(o *Options) { o.Groups = 1 }},
	{"dapo/last-layer", "anomaly map from the last feature layer only", func(o *Options) { o.Layers = []int{-1} }},
}

// VariantNames lists the named variants with a line each.
func VariantNames() [][2]string {
	out := make([][2]string, len(variants))
	for i, v := range variants {
		out[i] = [2]string{v.name, v.doc}
	}
	return out
}

// WithVariant applies the named variant to o and names o after it. A
// layer of -1 stands for the model's last feature layer and is resolved in
// Prepare.
func WithVariant(name string, o Options) (Options, error) {
	if name == "" {
		name = "dapo"
	}
	var names []string
	for _, v := range variants {
		if v.name == name {
			v.apply(&o)
			o.Name = name
			return o, nil
		}
		names = append(names, v.name)
	}
	return o, fmt.Errorf("dapo: unknown variant %q; valid: %s", name, strings.Join(names, ", "))
}
