// Package e2e runs baseline schemes end to end on the synthetic fixture
// datasets with tiny seeded models, for the tests of the baselines: real
// images, real onnxruntime sessions, the real pipeline (bench.Run).
package e2e

import (
	"context"
	"encoding/json"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/results"
)

// Env is a fixture tree, a tiny model and a feature cache in a temporary
// directory.
type Env struct {
	Dir   string
	Model *bench.Model
	Cache *featcache.Cache
}

// Setup generates the fixtures and builds and opens the tiny model of
// o.Variant (seed 1) on the CPU; everything is released when t ends.
func Setup(t testing.TB, o clip.Options) *Env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := fixtures.Generate(ctx, filepath.Join(dir, "data"), fixtures.DefaultSeed); err != nil {
		t.Fatal(err)
	}
	if _, err := clip.BuildTiny(ctx, filepath.Join(dir, "model"), 1, o); err != nil {
		t.Fatal(err)
	}
	rt, err := runner.Open(runner.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	m, err := bench.OpenModel(ctx, rt, filepath.Join(dir, "model"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	cache, err := featcache.Open(filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Dir: dir, Model: m, Cache: cache}
}

// Results are the category results of one run, by dataset.
type Results map[string][]results.CategoryRecord

// Run evaluates s on the given fixture datasets (none: all of them) into
// Dir/out/<dataset>, with maps saved, using workers scoring goroutines.
func (e *Env) Run(t testing.TB, s bench.Scheme, out string, workers int, datasets ...string) Results {
	t.Helper()
	if len(datasets) == 0 {
		datasets = fixtures.IDs
	}
	res := Results{}
	for _, id := range datasets {
		r, err := bench.Run(context.Background(), bench.Config{
			Dataset: id, Loader: loaders.Options{Root: filepath.Join(e.Dir, "data", id)},
			Model: e.Model, Scheme: s, Out: filepath.Join(e.Dir, out, id), Cache: e.Cache,
			SaveMaps: true, Workers: workers,
		})
		if err != nil {
			t.Fatalf("%s on %s: %v", s.Name(), id, err)
		}
		res[id] = r
	}
	return res
}

// Counts sums where the image features of a run came from.
func (r Results) Counts() (computed, cached int) {
	for _, cats := range r {
		for _, c := range cats {
			computed += c.Computed
			cached += c.Cached
		}
	}
	return computed, cached
}

// Only is the results of the given datasets.
func (r Results) Only(datasets ...string) Results {
	out := Results{}
	for _, id := range datasets {
		if c, ok := r[id]; ok {
			out[id] = c
		}
	}
	return out
}

// JSON is the results without wall times and cache counts, which differ
// between identical runs.
func (r Results) JSON(t testing.TB) string {
	t.Helper()
	clean := Results{}
	for id, cats := range r {
		for _, c := range cats {
			c.Seconds, c.Computed, c.Cached = 0, 0, 0
			clean[id] = append(clean[id], c)
		}
	}
	b, err := json.MarshalIndent(clean, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// CheckMetrics fails t unless every category of every dataset has image
// and pixel AUROC, AP and F1-max and the AU-PRO, all in [0, 1], and both
// normal and anomalous test images. Metrics named in nullable may be null
// with a reason (the AU-PRO of constant maps).
func CheckMetrics(t testing.TB, r Results, nullable ...string) {
	t.Helper()
	if len(r) == 0 {
		t.Error("no results")
	}
	for id, cats := range r {
		if len(cats) == 0 {
			t.Errorf("%s: no categories", id)
		}
		for _, c := range cats {
			if c.NNormal == 0 || c.NAnomalous == 0 {
				t.Errorf("%s/%s: %d normal and %d anomalous images", id, c.Category, c.NNormal, c.NAnomalous)
			}
			for name, m := range map[string]results.Metric{
				"image AUROC": c.Image.AUROC, "image AP": c.Image.AP, "image F1-max": c.Image.F1Max,
				"pixel AUROC": c.Pixel.AUROC, "pixel AP": c.Pixel.AP, "pixel F1-max": c.Pixel.F1Max,
				"pixel AU-PRO": c.AUPRO,
			} {
				switch {
				case m.Value == nil && slices.Contains(nullable, name) && m.Reason != "":
				case m.Value == nil:
					t.Errorf("%s/%s: %s is null (%s)", id, c.Category, name, m.Reason)
				case !(*m.Value >= 0 && *m.Value <= 1):
					t.Errorf("%s/%s: %s = %v", id, c.Category, name, *m.Value)
				}
			}
			if c.MultiType != nil {
				t.Errorf("%s/%s: multi-type metrics from a scheme without classes", id, c.Category)
			}
		}
	}
}

// Maps reads every map a run saved under Dir/out, by dataset-relative
// path, checking that each is size×size.
func (e *Env) Maps(t testing.TB, out string, size int) map[string][]float32 {
	t.Helper()
	maps := map[string][]float32{}
	root := filepath.Join(e.Dir, out)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".npy") {
			return err
		}
		a, err := npy.ReadFile(p)
		if err != nil {
			return err
		}
		if len(a.Shape) != 2 || a.Shape[0] != size || a.Shape[1] != size || len(a.Data) != size*size {
			t.Errorf("%s: map of shape %v, want %d×%d", p, a.Shape, size, size)
		}
		rel, _ := filepath.Rel(root, p)
		maps[filepath.ToSlash(rel)] = a.Data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) == 0 {
		t.Fatalf("no maps under %s", root)
	}
	return maps
}

// CheckRange fails t unless every value of every map is finite and in
// [lo, hi].
func CheckRange(t testing.TB, maps map[string][]float32, lo, hi float32) {
	t.Helper()
	for p, m := range maps {
		for i, v := range m {
			if math.IsNaN(float64(v)) || v < lo || v > hi {
				t.Errorf("%s: value %d is %v, outside [%v, %v]", p, i, v, lo, hi)
				break
			}
		}
	}
}
