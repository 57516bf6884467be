package bench_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/results"
	"github.com/dapobench/dapobench/schemes"
)

// TestFinishFailureLeavesIncomplete reruns a finished run and makes its
// last write fail (manifest.json cannot be replaced, as on a full disk):
// the directory must not read as a finished run, since Run removed the old
// results.json before anything else and Finish writes it only last.
func TestFinishFailureLeavesIncomplete(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data, modelDir, out := filepath.Join(dir, "data"), filepath.Join(dir, "model"), filepath.Join(dir, "run")
	if _, err := fixtures.Generate(ctx, data, fixtures.DefaultSeed); err != nil {
		t.Fatal(err)
	}
	if _, err := clip.BuildTiny(ctx, modelDir, 1, clip.Options{Variant: clip.DAPO}); err != nil {
		t.Fatal(err)
	}
	rt, err := runner.Open(runner.Options{Device: "cpu", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	m, err := bench.OpenModel(ctx, rt, modelDir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	spec, _ := schemes.Lookup("dapo")
	s, err := spec.Build(m, schemes.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := bench.Config{Dataset: "mpdd", Loader: loaders.Options{Root: filepath.Join(data, "mpdd"), Category: "tubes"},
		Model: m, Scheme: s, Out: out, Workers: 2}
	run := func() []results.CategoryRecord {
		t.Helper()
		cats, err := bench.Run(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Between Run and Finish the directory is an unfinished run.
		if err := results.CheckComplete(out); !errors.Is(err, results.ErrIncomplete) {
			t.Errorf("between Run and Finish: %v, want an incomplete directory", err)
		}
		return cats
	}
	if _, err := bench.Finish(cfg, rt, run(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := results.CheckComplete(out); err != nil {
		t.Fatalf("finished run: %v", err)
	}
	cats := run() // resumed from the records
	if err := os.MkdirAll(filepath.Join(out, results.ManifestName, "blocked"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := bench.Finish(cfg, rt, cats, time.Now()); err == nil {
		t.Fatal("Finish succeeded without writing manifest.json")
	}
	if err := results.CheckComplete(out); !errors.Is(err, results.ErrIncomplete) {
		t.Errorf("after manifest.json failed: %v, want an incomplete directory", err)
	}
	if _, err := os.Stat(filepath.Join(out, results.FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("results.json is there after a failed finish: %v", err)
	}
}
