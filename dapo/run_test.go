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
	"github.com/dapobench/dapobench/internal/race"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/results"
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

// TestRunCachesAndBatches runs DAPO over the MVTec fixture as `dapobench
// run` does (towers loaded lazily, text features cached): a second
// variant whose prompts were all encoded before (dapo/e1 after dapo) over
// the warm cache loads neither tower; the text cache changes no number;
// and neither does the batch size.
func TestRunCachesAndBatches(t *testing.T) {
	race.SkipNumeric(t) // TestRunSmoke runs the pipeline under the race detector
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
	run := func(variant, cacheDir, out string, batch int, textCache bool) (*bench.Model, []results.CategoryRecord) {
		t.Helper()
		var fc, tc *featcache.Cache
		if cacheDir != "" {
			if fc, err = featcache.Open(cacheDir); err != nil {
				t.Fatal(err)
			}
			if textCache {
				if tc, err = featcache.Open(filepath.Join(cacheDir, "text")); err != nil {
					t.Fatal(err)
				}
			}
		}
		m, err := bench.OpenModelWith(ctx, rt, filepath.Join(dir, "model"), bench.OpenOptions{Lazy: true, TextCache: tc})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		learned, err := checkpoints.Untrained(checkpoints.DAPO, m.Manifest, m.TokenEmbedding, 1)
		if err != nil {
			t.Fatal(err)
		}
		opt, err := dapo.Parse(variant, dapo.Options{Learned: learned})
		if err != nil {
			t.Fatal(err)
		}
		s, err := dapo.New(opt)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := bench.Run(ctx, bench.Config{Dataset: "mvtec", Loader: loaders.Options{Root: filepath.Join(dir, "data", "mvtec")},
			Model: m, Scheme: s, Out: filepath.Join(dir, out), Cache: fc, Batch: batch})
		if err != nil {
			t.Fatal(err)
		}
		for i := range recs {
			recs[i].Seconds, recs[i].Computed, recs[i].Cached = 0, 0, 0
		}
		return m, recs
	}
	cache := filepath.Join(dir, "cache")
	m, first := run("dapo", cache, "first", 0, true)
	if !m.ImageLoaded() || m.TextRuns() == 0 {
		t.Errorf("first run: image tower loaded %v, %d text-tower runs", m.ImageLoaded(), m.TextRuns())
	}
	m, _ = run("dapo/e1", cache, "second", 0, true)
	if m.ImageLoaded() || m.TextRuns() != 0 || m.Text != nil {
		t.Errorf("second variant over the warm cache: image tower loaded %v, text tower loaded %v, %d text-tower runs", m.ImageLoaded(), m.Text != nil, m.TextRuns())
	}
	_, again := run("dapo", cache, "again", 0, true)
	_, plain := run("dapo", "", "plain", 3, false)
	for name, recs := range map[string][]results.CategoryRecord{"from the caches": again, "batch 3, no cache": plain} {
		a, _ := json.Marshal(first)
		b, _ := json.Marshal(recs)
		if string(a) != string(b) {
			t.Errorf("%s: the records differ from the first run's", name)
		}
	}
}
