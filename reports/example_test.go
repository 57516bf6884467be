package reports_test

import (
	"fmt"
	"math"

	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/results"
)

func ExampleResults() {
	r := results.New("mvtec", "external", "")
	r.Settings["aupro"] = "mvtec"
	e := results.NewEntry()
	e.Set(results.ImageAUROC, metrics.Value{V: 0.95})
	e.Set(results.PixelAUPRO, metrics.Value{V: math.NaN(), Reason: "no defect regions in the ground truth"})
	e.Counts[results.NNormal], e.Counts[results.NAnomalous] = 20, 63
	r.Categories["bottle"] = e
	r.ComputeMean()
	b, err := r.Marshal()
	if err != nil {
		fmt.Println(err)
	}
	fmt.Print(string(b))
	// Output:
	// {
	//   "schema": "dapobench/results/v1",
	//   "dataset": "mvtec",
	//   "scheme": "external",
	//   "model": "",
	//   "settings": {
	//     "aupro": "mvtec"
	//   },
	//   "categories": {
	//     "bottle": {
	//       "image_auroc": 0.95,
	//       "n_anomalous": 63,
	//       "n_normal": 20,
	//       "pixel_aupro": null,
	//       "undefined": {
	//         "pixel_aupro": "no defect regions in the ground truth"
	//       }
	//     }
	//   },
	//   "mean": {
	//     "image_auroc": 0.95,
	//     "n_anomalous": 63,
	//     "n_categories": 1,
	//     "n_normal": 20,
	//     "pixel_aupro": null,
	//     "undefined": {
	//       "pixel_aupro": "undefined in every category"
	//     }
	//   }
	// }
}
