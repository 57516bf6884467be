package dapo

import "strings"

// visaKeywords map VisA's free-text defect descriptions (image_anno.csv,
// class names of spot-diff's id2class) to the 19-class multi-type
// vocabulary, by the first keyword found. The official code reads ready
// short tokens from a meta file whose derivation is not published
// (docs/methods.md#dapo-visa-types, docs/data.md#visa-dapo-meta); this
// table is ours, and order matters
// ("melded" before "melt", "breakage" before "damage").
var visaKeywords = [][2]string{
	{"wick", "weird wick"},
	{"partical", "partical"},
	{"particle", "partical"},
	{"melded", "melded"},
	{"extra", "extra"},
	{"spot", "spot"},
	{"discolor", "spot"},
	{"scratch", "scratch"},
	{"crack", "crack"},
	{"bubble", "bubble"},
	{"burnt", "burnt"},
	{"breakage", "breakage"},
	{"stuck", "stuck"},
	{"chip", "chip"},
	{"hole", "hole"},
	{"melt", "melt"},
	{"bent", "bent"},
	{"wrong place", "wrong place"},
	{"missing", "missing"},
	{"damage", "damage"},
}

// VisAClass maps one VisA defect description to its multi-type class word.
// Descriptions of several defects (comma-separated) have no single class:
// DAPO's VisA evaluation leaves such images out
// (docs/data.md#visa-dapo-meta), and so
// does the harness.
func VisAClass(desc string) (string, bool) {
	d := strings.ToLower(strings.TrimSpace(desc))
	if d == "" || strings.Contains(d, ",") {
		return "", false
	}
	if d == "normal" {
		return "normal", true
	}
	for _, kw := range visaKeywords {
		if strings.Contains(d, kw[0]) {
			return kw[1], true
		}
	}
	return "", false
}
