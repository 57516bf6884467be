package reports_test

import (
	"math"
	"os"

	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/reports"
	"github.com/dapobench/dapobench/results"
)

func ExampleWriteTables() {
	run := func(scheme string, auroc, aupro float64) reports.Column {
		r := results.New("mvtec", scheme, "ViT-L-14-336")
		e := results.NewEntry()
		e.Set(results.ImageAUROC, metrics.Value{V: auroc})
		if aupro >= 0 {
			e.Set(results.PixelAUPRO, metrics.Value{V: aupro})
		} else {
			e.Set(results.PixelAUPRO, metrics.Value{V: math.NaN(), Reason: "no defect regions in the ground truth"})
		}
		r.Categories["bottle"] = e
		r.ComputeMean()
		return reports.Column{Label: scheme, Results: r}
	}
	cols := []reports.Column{run("winclip", 0.986, 0.801), run("dapo", 0.993, -1)}
	if err := reports.WriteTables(os.Stdout, cols, reports.TableOptions{Heading: 2}); err != nil {
		panic(err)
	}
	// Output:
	// ## Image level
	//
	// ### Image AUROC (%)
	//
	// | category | winclip |     dapo |
	// |:---------|--------:|---------:|
	// | bottle   |    98.6 | **99.3** |
	// | *mean*   |    98.6 | **99.3** |
	//
	// ## Pixel level
	//
	// ### Pixel AUPRO (%)
	//
	// | category | winclip |          dapo |
	// |:---------|--------:|--------------:|
	// | bottle   |    80.1 | –<sup>1</sup> |
	// | *mean*   |    80.1 | –<sup>2</sup> |
	//
	// - <sup>1</sup> no defect regions in the ground truth
	// - <sup>2</sup> undefined in every category
}

func ExampleDrift() {
	golden := results.New("mpdd", "dapo", "tiny")
	e := results.NewEntry()
	e.Set(results.ImageAUROC, metrics.Value{V: 0.75})
	golden.Categories["tubes"] = e
	now := results.New("mpdd", "dapo", "tiny")
	f := results.NewEntry()
	f.Set(results.ImageAUROC, metrics.Value{V: 0.7})
	now.Categories["tubes"] = f
	changes, err := reports.Drift(golden, now, reports.DefaultTolerance)
	if err != nil {
		panic(err)
	}
	if err := reports.WriteChanges(os.Stdout, changes); err != nil {
		panic(err)
	}
	// Output:
	// | where | metric      | golden | now |     Δ |
	// |:------|:------------|-------:|----:|------:|
	// | tubes | image_auroc |   0.75 | 0.7 | -0.05 |
}
