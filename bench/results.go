package bench

import (
	"fmt"
	"sort"
	"strings"

	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/results"
)

// Vocabulary is implemented by schemes that know which defect words their
// prompts were trained on; per-defect-type results are then split into
// seen and novel types (docs/methods.md#dapo-novel-types).
type Vocabulary interface {
	// Seen reports whether a defect-type word was in the training
	// vocabulary.
	Seen(word string) bool
}

// Results turns a run's per-category records into results.json.
func Results(cfg Config, model string, cats []results.CategoryRecord) *results.Results {
	settings := map[string]string{}
	for k, v := range cfg.Scheme.Settings() {
		settings[k] = v
	}
	settings["aupro"] = string(cfg.AUPRO)
	voc, _ := cfg.Scheme.(Vocabulary)
	return Summarise(cfg.Dataset, cfg.Scheme.Name(), model, settings, voc, cats)
}

// Summarise turns per-category records into results.json (schema
// dapobench/results/v1): the seven standard metrics per category, their
// unweighted mean, and, for multi-type segmentation, the per-defect-type
// table averaged over the categories containing each type, split into
// seen and novel types when voc is not nil.
func Summarise(dataset, scheme, model string, settings map[string]string, voc Vocabulary, cats []results.CategoryRecord) *results.Results {
	r := results.New(dataset, scheme, model)
	for k, v := range settings {
		r.Settings[k] = v
	}
	set := func(e *results.Entry, name string, m results.Metric) {
		if m.Value != nil {
			e.Set(name, metrics.Value{V: *m.Value})
		} else {
			e.Set(name, metrics.Value{V: nan(), Reason: m.Reason})
		}
	}
	var mts []metrics.MultiTypeResult
	for _, c := range cats {
		e := results.NewEntry()
		set(e, results.ImageAUROC, c.Image.AUROC)
		set(e, results.ImageAP, c.Image.AP)
		set(e, results.ImageF1Max, c.Image.F1Max)
		set(e, results.PixelAUROC, c.Pixel.AUROC)
		set(e, results.PixelAP, c.Pixel.AP)
		set(e, results.PixelF1Max, c.Pixel.F1Max)
		set(e, results.PixelAUPRO, c.AUPRO)
		e.Counts[results.NNormal] = c.NNormal
		e.Counts[results.NAnomalous] = c.NAnomalous
		if mt := c.MultiType; mt != nil {
			set(e, results.TypePixelAUROC, mt.MacroAUROC)
			set(e, results.TypePixelAP, mt.MacroAP)
			set(e, results.TypePixelF1, mt.MacroF1)
			set(e, results.TypeAccuracy, mt.TypeAccuracy)
			e.Counts[results.NExcluded] = mt.Excluded
			res := metrics.MultiTypeResult{}
			for _, cl := range mt.Classes {
				res.Classes = append(res.Classes, metrics.ClassResult{Class: cl.Class, Pixels: cl.Pixels,
					AUROC: valueOf(cl.AUROC), AP: valueOf(cl.AP), F1: valueOf(cl.F1)})
			}
			mts = append(mts, res)
		}
		r.Categories[c.Category] = e
	}
	r.ComputeMean()
	if len(mts) == 0 {
		return r
	}
	r.DefectTypes = map[string]*results.Entry{}
	for _, ts := range metrics.SummariseTypes(mts) {
		e := results.NewEntry()
		e.Set(results.PixelAUROC, ts.AUROC)
		e.Set(results.PixelAP, ts.AP)
		e.Set(results.PixelF1, ts.F1)
		e.Counts[results.NCategories] = ts.Categories
		if len(ts.Undefined) > 0 {
			keys := make([]string, 0, len(ts.Undefined))
			for k := range ts.Undefined {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s undefined in %d", k, ts.Undefined[k]))
			}
			e.Notes["categories"] = strings.Join(parts, "; ")
		}
		if voc != nil {
			if voc.Seen(ts.Type) {
				e.Notes["vocabulary"] = "seen"
			} else {
				e.Notes["vocabulary"] = "novel"
			}
		}
		r.DefectTypes[ts.Type] = e
	}
	return r
}

func valueOf(m results.Metric) metrics.Value {
	if m.Value == nil {
		return metrics.Value{V: nan(), Reason: m.Reason}
	}
	return metrics.Value{V: *m.Value}
}
