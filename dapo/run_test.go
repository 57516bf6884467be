package dapo_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/dapo"
	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/runner"
)

func TestRunSmoke(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := fixtures.Generate(ctx, filepath.Join(dir, "data"), fixtures.DefaultSeed); err != nil {
		t.Fatal(err)
	}
	if _, err := clip.BuildTiny(ctx, filepath.Join(dir, "model"), 1, clip.Options{Variant: clip.DAPO}); err != nil {
		t.Fatal(err)
	}
	rt, err := runner.Open(runner.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	m, err := bench.OpenModel(ctx, rt, filepath.Join(dir, "model"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	learned, err := checkpoints.Untrained(checkpoints.DAPO, m.Manifest, m.TokenEmbedding, 1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dapo.New(dapo.Options{Learned: learned})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := featcache.Open(filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range fixtures.IDs {
		res, err := bench.Run(ctx, bench.Config{Dataset: id, Loader: loaders.Options{Root: filepath.Join(dir, "data", id)},
			Model: m, Scheme: s, Out: filepath.Join(dir, "run", id), Cache: cache})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.MarshalIndent(res[0], "", " ")
		t.Logf("%s: %s", id, b)
	}
}
