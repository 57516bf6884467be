package adaclip_test

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dapobench/dapobench/baselines/internal/e2e"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/race"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/train"
)

// TestTrainResume trains AdaCLIP's recipe for two epochs on one fixture
// category, and again as one epoch resumed for a second: the tensors must
// be identical (the k-means seeds of step n and AdamW's decay come back
// with the epoch checkpoint), the untrained static text prompt 0 must keep
// its value, and the manifest must record AdamW's decay.
func TestTrainResume(t *testing.T) {
	race.SkipNumeric(t)
	env := e2e.Setup(t, clip.Options{Variant: clip.AdaCLIP})
	rt, err := runner.Open(runner.Options{Device: "cpu", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	recipe, err := train.Defaults(checkpoints.AdaCLIP)
	if err != nil {
		t.Fatal(err)
	}
	if recipe.Batch != 1 || recipe.Epochs != 5 || recipe.LR != 0.01 || recipe.Seed != 111 {
		t.Errorf("recipe %+v, want 5 epochs, batch 1, lr 0.01, seed 111", recipe)
	}
	cfg := train.Config{Scheme: checkpoints.AdaCLIP, Dataset: "mvtec", ModelDir: env.Model.Dir,
		Loader: loaders.Options{Root: filepath.Join(env.Dir, "data", "mvtec"), Category: "bottle"}, Recipe: recipe}
	cfg.Epochs = 2
	dir := t.TempDir()
	full, err := train.RunJob(context.Background(), rt, train.Job{Config: cfg, Out: filepath.Join(dir, "full.safetensors")})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Epochs = 1
	if _, err := train.RunJob(context.Background(), rt, train.Job{Config: cfg, Out: filepath.Join(dir, "half.safetensors")}); err != nil {
		t.Fatal(err)
	}
	cfg.Epochs = 2
	resumed, err := train.RunJob(context.Background(), rt, train.Job{Config: cfg, Out: filepath.Join(dir, "resumed.safetensors"),
		Resume: filepath.Join(dir, "half.epoch1.safetensors")})
	if err != nil {
		t.Fatal(err)
	}
	init, err := checkpoints.Untrained(checkpoints.AdaCLIP, env.Model.Manifest, env.Model.TokenEmbedding, recipe.Seed)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(full.Learned.Tensors)) {
		a, b := full.Learned.Tensors[name].Data, resumed.Learned.Tensors[name].Data
		if !slices.Equal(a, b) {
			t.Errorf("%s differs between the full and the resumed run", name)
		}
		moved := !slices.Equal(a, init.Tensors[name].Data)
		if moved != (name != clip.AdaCLIPTextStatic(0)) {
			t.Errorf("%s moved: %v", name, moved)
		}
	}
	b, err := os.ReadFile(full.Outputs.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	var mf train.Manifest
	if err := json.Unmarshal(b, &mf); err != nil {
		t.Fatal(err)
	}
	if mf.Recipe.WeightDecay != train.AdamWDecay || mf.Recipe.Batch != 1 || len(mf.Learned) != len(init.Tensors)-1 {
		t.Errorf("manifest recipe %+v, %d learned tensors", mf.Recipe, len(mf.Learned))
	}
	cfg.Batch = 2
	if _, err := train.New(context.Background(), rt, cfg); err == nil {
		t.Error("batch 2: no error")
	}
}
