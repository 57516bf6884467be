package anomalyclip_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dapobench/dapobench/baselines/anomalyclip"
	"github.com/dapobench/dapobench/baselines/internal/e2e"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/internal/race"
	"github.com/dapobench/dapobench/loaders"
)

// newScheme parses a variant and gives it the seeded untrained tensors of
// the environment's model.
func newScheme(t *testing.T, env *e2e.Env, variant string) *anomalyclip.Scheme {
	t.Helper()
	o, err := anomalyclip.Parse(variant, anomalyclip.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Learned, err = checkpoints.Untrained(checkpoints.AnomalyCLIP, env.Model.Manifest, env.Model.TokenEmbedding, 1); err != nil {
		t.Fatal(err)
	}
	s, err := anomalyclip.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRun evaluates AnomalyCLIP (untrained tensors) and its no-smoothing
// variant on every fixture dataset with a tiny AnomalyCLIP model and
// checks the structure of the results, the range of the maps,
// determinism, and that the variant reuses the cached features.
func TestRun(t *testing.T) {
	env := e2e.Setup(t, clip.Options{Variant: clip.AnomalyCLIP})
	size := env.Model.Manifest.ImageSize
	layers := len(env.Model.Manifest.FeatureLayers)
	s := newScheme(t, env, "anomalyclip")
	if !strings.Contains(s.Settings()["prompts"], "untrained") {
		t.Errorf("settings do not say untrained: %v", s.Settings())
	}
	start := time.Now()
	first := env.Run(t, s, "first", 0)
	t.Logf("first run (features computed): %v", time.Since(start))
	if len(first) != len(fixtures.IDs) {
		t.Fatalf("results of %d datasets, want %d", len(first), len(fixtures.IDs))
	}
	e2e.CheckMetrics(t, first)
	maps := env.Maps(t, "first", size)
	// Each layer adds (p_abn + 1 − p_norm)/2 ∈ [0, 1]; the Gaussian is a
	// weighted mean.
	e2e.CheckRange(t, maps, 0, float32(layers))

	start = time.Now()
	again := env.Run(t, s, "again", 1)
	t.Logf("second run (features cached): %v", time.Since(start))
	if computed, _ := again.Counts(); computed != 0 {
		t.Errorf("second run computed %d feature sets, want all from the cache", computed)
	}
	if a, b := first.JSON(t), again.JSON(t); a != b {
		t.Errorf("results differ between identical runs:\n%s\n%s", a, b)
	}
	fresh := *env
	fresh.Cache = nil
	if a, b := first.Only("mvtec", "mad-sim").JSON(t), fresh.Run(t, s, "fresh", 2, "mvtec", "mad-sim").JSON(t); a != b {
		t.Errorf("results differ after recomputing the features:\n%s\n%s", a, b)
	}
	for p, m := range env.Maps(t, "again", size) {
		if !slices.Equal(m, maps[p]) {
			t.Errorf("%s: map differs between identical runs", p)
		}
	}

	raw := env.Run(t, newScheme(t, env, "anomalyclip/no-smoothing"), "raw", 0, "mvtec", "visa", "real-iad")
	e2e.CheckMetrics(t, raw)
	if computed, _ := raw.Counts(); computed != 0 {
		t.Errorf("no-smoothing variant computed %d feature sets, want all from the cache", computed)
	}
	rawMaps := env.Maps(t, "raw", size)
	e2e.CheckRange(t, rawMaps, 0, float32(layers))
	if first.Only("mvtec", "visa", "real-iad").JSON(t) == raw.JSON(t) {
		t.Error("no-smoothing results equal AnomalyCLIP's")
	}
	// Image scores do not depend on the smoothing: the image metrics agree.
	for id, cats := range raw {
		for i, c := range cats {
			if f := first[id][i]; *c.Image.AUROC.Value != *f.Image.AUROC.Value || *c.Image.AP.Value != *f.Image.AP.Value {
				t.Errorf("%s/%s: image metrics change with the smoothing", id, c.Category)
			}
		}
	}
}

// TestLayers runs a layer-subset variant on a model that returns two
// layers, and checks that a layer the model lacks is refused before any
// image is read.
func TestLayers(t *testing.T) {
	race.SkipNumeric(t)
	env := e2e.Setup(t, clip.Options{Variant: clip.AnomalyCLIP, FeatureLayers: []int{2, 4}})
	both := env.Run(t, newScheme(t, env, "anomalyclip"), "both", 0, "mvtec")
	e2e.CheckMetrics(t, both)
	e2e.CheckRange(t, env.Maps(t, "both", env.Model.Manifest.ImageSize), 0, 2)
	last := env.Run(t, newScheme(t, env, "anomalyclip/layers-4"), "last", 0, "mvtec")
	e2e.CheckMetrics(t, last)
	e2e.CheckRange(t, env.Maps(t, "last", env.Model.Manifest.ImageSize), 0, 1)
	if computed, _ := last.Counts(); computed != 0 {
		t.Errorf("layer variant computed %d feature sets, want all from the cache", computed)
	}

	_, err := bench.Run(context.Background(), bench.Config{
		Dataset: "mvtec", Loader: loaders.Options{Root: filepath.Join(env.Dir, "data", "mvtec")},
		Model: env.Model, Scheme: newScheme(t, env, "anomalyclip/layers-3"), Out: filepath.Join(env.Dir, "bad"),
	})
	if err == nil || !strings.Contains(err.Error(), "layer 3 is not a feature layer") {
		t.Errorf("layer 3 of a model with layers [2 4]: error %v", err)
	}
}

// TestWrongModel checks that the scheme refuses a model of another variant.
func TestWrongModel(t *testing.T) {
	race.SkipNumeric(t)
	env := e2e.Setup(t, clip.Options{Variant: clip.AnomalyCLIP})
	learned, err := checkpoints.Untrained(checkpoints.AnomalyCLIP, env.Model.Manifest, env.Model.TokenEmbedding, 1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := anomalyclip.New(anomalyclip.Options{Learned: learned})
	if err != nil {
		t.Fatal(err)
	}
	m := *env.Model
	man := *m.Manifest
	man.Variant = clip.Plain
	m.Manifest = &man
	if _, err := s.ImageInputs(&m); err == nil || !strings.Contains(err.Error(), "plain") {
		t.Errorf("plain model: error %v", err)
	}
	if _, err := s.Prepare(context.Background(), &m, bench.Category{Name: "bottle"}); err == nil {
		t.Error("Prepare on a plain model: no error")
	}
}
