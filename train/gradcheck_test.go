package train_test

import (
	"context"
	"math"
	"testing"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/graph/grad/gradcheck"
	"github.com/dapobench/dapobench/train"
)

// TestGradCheck compares the gradient of the full training loss (towers,
// prompt learner, adapters, focal, dice and image terms) with central
// finite differences, both in double, on the tiny models.
func TestGradCheck(t *testing.T) {
	for _, tc := range []struct {
		scheme, variant string
		model           clip.Variant
	}{
		{checkpoints.DAPO, "dapo", clip.DAPO},
		{checkpoints.AnomalyCLIP, "anomalyclip", clip.AnomalyCLIP},
	} {
		t.Run(tc.variant, func(t *testing.T) {
			m := tinyModel(t, tc.model)
			g := graphOf(t, m, tc.scheme, tc.variant)
			res, err := gradcheck.Check(context.Background(), rt, g.Forward, train.OutLoss, g.Learnable,
				feeds(t, m, g, 4, 7), gradcheck.Options{MaxPerInput: 12, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				t.Log(r)
				if r.Checked == 0 || !(r.MaxRelErr <= 1e-3) {
					t.Errorf("%s: max relative error %.3g > 1e-3", r.Input, r.MaxRelErr)
				}
			}
			_ = math.Inf
		})
	}
}
