package train_test

import (
	"context"
	"testing"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/race"
	"github.com/dapobench/dapobench/onnx/gradcheck"
	"github.com/dapobench/dapobench/train"
)

// TestGradCheck compares the gradient of the full training loss (prompt
// learner, text and image towers, adapters, focal, dice and image terms,
// the training vocabulary's 21 classes for DAPO) with central finite
// differences, both in double, on the tiny models. Elements are sampled:
// a double forward pass of DAPO's 210 prompts takes a third of a second,
// and each element costs two. The checks run in parallel.
func TestGradCheck(t *testing.T) {
	race.SkipNumeric(t)
	for _, tc := range []struct {
		name, scheme, variant string
		model                 clip.Variant
		wrt                   []string // nil: every learned tensor
		perInput              int
	}{
		{"dapo/prompts", checkpoints.DAPO, "dapo", clip.DAPO,
			[]string{checkpoints.NormalCtx, checkpoints.AbnormalCtx, checkpoints.TextDeep, checkpoints.VisualPrompts}, 6},
		{"dapo/adapters", checkpoints.DAPO, "dapo", clip.DAPO,
			[]string{checkpoints.AdapterWeight(0), checkpoints.AdapterBias(0), checkpoints.AdapterWeight(1), checkpoints.AdapterBias(1),
				checkpoints.AdapterWeight(2), checkpoints.AdapterBias(2), checkpoints.AdapterWeight(3), checkpoints.AdapterBias(3)}, 3},
		{"dapo/no-defect-words", checkpoints.DAPO, "dapo/no-defect-words", clip.DAPO, nil, 4},
		{"dapo/e1", checkpoints.DAPO, "dapo/e1", clip.DAPO, nil, 4},
		{"anomalyclip", checkpoints.AnomalyCLIP, "anomalyclip", clip.AnomalyCLIP, nil, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := tinyModel(t, tc.model)
			g := graphOf(t, m, tc.scheme, tc.variant)
			wrt := tc.wrt
			if wrt == nil {
				wrt = g.Learnable
			}
			res, err := gradcheck.Check(context.Background(), rt, g.Forward, train.OutLoss, wrt,
				feeds(t, m, g, 4, 7), gradcheck.Options{MaxPerInput: tc.perInput, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(wrt) {
				t.Fatalf("%d results for %d inputs", len(res), len(wrt))
			}
			for _, r := range res {
				t.Log(r)
				if r.Checked == 0 || !(r.MaxRelErr <= 1e-3) {
					t.Errorf("%s: max relative error %.3g > 1e-3", r.Input, r.MaxRelErr)
				}
			}
		})
	}
}
