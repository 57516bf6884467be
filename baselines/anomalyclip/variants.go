package anomalyclip

import (
	"fmt"
	"strconv"
	"strings"
)

// Variant is a named configuration of the scheme: the name appears in
// results and tables, and the CLI selects it with --variant. Learned is
// left for the caller to set.
type Variant struct {
	Name string
	// Doc says in a line what differs from AnomalyCLIP.
	Doc     string
	Options Options
}

// layersPrefix starts the names of layer-subset variants:
// "anomalyclip/layers-6-12-18-24".
const layersPrefix = "anomalyclip/layers-"

// Variants lists the named AnomalyCLIP variants, AnomalyCLIP itself
// first. Any layer set can be named "anomalyclip/layers-<l>-<l>…"; the
// list shows the one of the paper's first version.
func Variants() []Variant {
	return []Variant{
		{Name: "anomalyclip", Doc: "AnomalyCLIP as test.sh runs it: the model's feature layers ([24] for ViT-L), Gaussian σ=4",
			Options: Options{}},
		{Name: "anomalyclip/no-smoothing", Doc: "maps without the Gaussian filter",
			Options: Options{NoSmoothing: true}},
		{Name: layersPrefix + "6-12-18-24", Doc: "maps summed over layers 6, 12, 18 and 24 (paper v1, argparse default); needs a model built with them",
			Options: Options{Layers: []int{6, 12, 18, 24}}},
	}
}

// Parse returns the options of a named variant, with Name set and Learned
// nil.
func Parse(name string) (Options, error) {
	var names []string
	for _, v := range Variants() {
		if v.Name == name {
			o := v.Options
			o.Name = v.Name
			return o, nil
		}
		names = append(names, v.Name)
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
		return Options{Name: name, Layers: layers}, nil
	}
	return Options{}, fmt.Errorf("anomalyclip: unknown variant %q (want one of %s, or %s<layer>-<layer>…)", name, strings.Join(names, ", "), layersPrefix)
}
