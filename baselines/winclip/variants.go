package winclip

import (
	"fmt"
	"strings"
)

// Variant is a named configuration of the scheme: the name appears in
// results and tables, and the CLI selects it with --variant.
type Variant struct {
	Name string
	// Doc says in a line what differs from WinCLIP.
	Doc     string
	Options Options
}

// Variants lists the named WinCLIP variants, WinCLIP itself first.
func Variants() []Variant {
	return []Variant{
		{Name: "winclip", Doc: "anomalib's zero-shot WinCLIP: 2×2 and 3×3 windows, 21 templates, category name",
			Options: Options{}},
		{Name: "winclip/no-windows", Doc: "no window maps: the map is the image score at every pixel",
			Options: Options{NoWindows: true}},
		{Name: "winclip/scale-2", Doc: "2×2 windows only (harmonic mean with the image score)",
			Options: Options{Scales: []int{2}}},
		{Name: "winclip/scale-3", Doc: "3×3 windows only (harmonic mean with the image score)",
			Options: Options{Scales: []int{3}}},
		{Name: "winclip/templates-22", Doc: "the 22 templates of the authors' reproduction (caoyunkang/WinClip)",
			Options: Options{Templates: TemplatesOfficial}},
		{Name: "winclip/object", Doc: `the word "object" instead of the category name (anomalib's fallback)`,
			Options: Options{Object: "object"}},
	}
}

// Parse returns the options of a named variant, with Name set.
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
	return Options{}, fmt.Errorf("winclip: unknown variant %q (want one of %s)", name, strings.Join(names, ", "))
}
