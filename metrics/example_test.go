package metrics_test

import (
	"context"
	"fmt"

	"github.com/dapobench/dapobench/metrics"
)

// The numbers printed by these examples are the ones scikit-learn, the
// MVTec AD evaluation algorithm and cal_pro_score give for the same inputs
// (see testdata/gen_reference.py; ExamplePixels is its case pix_example).

func ExampleBinaryScores() {
	// scikit-learn's documentation example: roc_auc_score 0.75,
	// average_precision_score 0.8333…, best F1 0.8 at threshold 0.35.
	scores := []float64{0.1, 0.4, 0.35, 0.8}
	labels := []bool{false, false, true, true}
	b, err := metrics.BinaryScores(scores, labels)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("AUROC %.4f  AP %.4f  F1-max %.4f at score ≥ %v\n", b.AUROC.V, b.AP.V, b.F1Max.V, b.F1Threshold)
	// Output: AUROC 0.7500  AP 0.8333  F1-max 0.8000 at score ≥ 0.35
}

func ExampleBinaryScores_undefined() {
	b, _ := metrics.BinaryScores([]float64{0.2, 0.9}, []bool{false, false})
	fmt.Println(b.AUROC.OK(), b.AUROC.Reason)
	fmt.Println(b.AUROC.Err("image AUROC"))
	// Output:
	// false no positive samples (one class only)
	// metrics: image AUROC undefined: no positive samples (one class only)
}

func ExamplePixels() {
	p, err := metrics.NewPixels(metrics.PixelOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Two 4×4 images, added one at a time; masks use 1 (or 255) for defects.
	scores := [][]float32{
		{0.1, 0.2, 0.1, 0.0, 0.2, 0.9, 0.8, 0.1, 0.1, 0.3, 0.8, 0.1, 0.0, 0.1, 0.2, 0.4},
		{0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.5},
	}
	masks := [][]uint8{
		{0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0},
		{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
	}
	for i := range scores {
		if err := p.Add(scores[i], masks[i], 4, 4); err != nil {
			fmt.Println(err)
			return
		}
	}
	r, err := p.Compute(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("regions %d, AUROC %.5f, AP %.5f, F1-max %.5f\n", r.Regions, r.AUROC.V, r.AP.V, r.F1Max.V)
	fmt.Printf("AU-PRO mvtec %.5f, cflow200 %.5f\n", r.AUPROMVTec.V, r.AUPROCflow200.V)
	// Output:
	// regions 2, AUROC 0.96875, AP 0.77083, F1-max 0.80000
	// AU-PRO mvtec 0.89087, cflow200 0.81667
}

func ExampleDeLong() {
	// Identical scores for both methods: the difference has no variance,
	// so the test has no p-value, and says why.
	s := []float64{0.1, 0.4, 0.35, 0.8, 0.2, 0.7}
	labels := []bool{false, false, true, true, false, true}
	r, err := metrics.DeLong(s, s, labels)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("AUROC %.4f vs %.4f, p defined: %v\n", r.AUROCA, r.AUROCB, r.P.OK())
	// Output: AUROC 0.8889 vs 0.8889, p defined: false
}

func ExampleBootstrapScores() {
	a := []float64{0.1, 0.4, 0.35, 0.8, 0.2, 0.7, 0.3, 0.6}
	b := []float64{0.2, 0.3, 0.6, 0.9, 0.1, 0.8, 0.2, 0.7}
	labels := []bool{false, false, true, true, false, true, false, true}
	r, err := metrics.BootstrapScores(context.Background(), a, b, labels, metrics.ByAUROC,
		metrics.BootstrapOptions{Resamples: 1000, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	// ΔAUROC is scikit-learn's roc_auc_score(b) − roc_auc_score(a). The
	// same seed gives the same interval on every machine.
	fmt.Printf("ΔAUROC %+.4f, %d resamples, interval contains it: %v\n",
		r.Diff, r.Resamples, r.DiffLo <= r.Diff && r.Diff <= r.DiffHi)
	// Output: ΔAUROC +0.0625, 1000 resamples, interval contains it: true
}
