package aprilgan

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/dapobench/dapobench/baselines/internal/vand"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/postproc"
)

// promptsJSON is APRIL-GAN's ensemble, written from the official
// prompt_ensemble.py by testdata/reference.py
// (docs/methods.md#aprilgan-prompts).
//
//go:embed prompts.json
var promptsJSON []byte

var ensemble = sync.OnceValues(func() (vand.Ensemble, error) {
	var e vand.Ensemble
	if err := json.Unmarshal(promptsJSON, &e); err != nil {
		return vand.Ensemble{}, fmt.Errorf("aprilgan: prompts.json: %w", err)
	}
	if err := e.Check(); err != nil {
		return vand.Ensemble{}, fmt.Errorf("aprilgan: prompts.json: %w", err)
	}
	if len(e.Groups) != 2 {
		return vand.Ensemble{}, fmt.Errorf("aprilgan: prompts.json has %d state groups, want normal and abnormal", len(e.Groups))
	}
	return e, nil
})

// Ensemble returns APRIL-GAN's prompt ensemble: 35 templates, the normal
// states then the abnormal ones.
func Ensemble() (vand.Ensemble, error) { return ensemble() }

// ClassVectors are the unit class vectors [normal, abnormal] of an object
// as test.py and train.py encode them (docs/methods.md#aprilgan-prompts).
func ClassVectors(ctx context.Context, m *bench.Model, obj string) (postproc.Mat, error) {
	e, err := Ensemble()
	if err != nil {
		return postproc.Mat{}, err
	}
	t, err := vand.Encode(ctx, m, e, obj)
	if err != nil {
		return postproc.Mat{}, fmt.Errorf("aprilgan: %s: %w", obj, err)
	}
	return t, nil
}
