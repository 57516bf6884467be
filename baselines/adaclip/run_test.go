package adaclip_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/baselines/adaclip"
	"github.com/dapobench/dapobench/baselines/internal/e2e"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/race"
	"github.com/dapobench/dapobench/loaders"
)

// newScheme parses a variant and gives it the seeded untrained tensors of
// the environment's model.
func newScheme(t *testing.T, env *e2e.Env, variant string) *adaclip.Scheme {
	t.Helper()
	o, err := adaclip.Parse(variant, adaclip.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Learned, err = checkpoints.Untrained(checkpoints.AdaCLIP, env.Model.Manifest, env.Model.TokenEmbedding, 1); err != nil {
		t.Fatal(err)
	}
	s, err := adaclip.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRun evaluates AdaCLIP (untrained tensors) on three fixture datasets
// with the tiny AdaCLIP model and checks the results' structure and range,
// determinism, the reuse of cached image and text features by a second
// run and a second variant, and that the scores do not depend on the
// number of scoring goroutines although every image gets its own k-means
// seeds of one stream.
func TestRun(t *testing.T) {
	env := e2e.Setup(t, clip.Options{Variant: clip.AdaCLIP})
	size := env.Model.Manifest.ImageSize
	s := newScheme(t, env, "adaclip")
	if !strings.Contains(s.Settings()["prompts"], "untrained") {
		t.Errorf("settings do not say untrained: %v", s.Settings())
	}
	sets := []string{"mvtec", "visa", "real-iad"}
	first := env.Run(t, s, "first", 1, sets...)
	if len(first) != len(sets) {
		t.Fatalf("results of %d datasets, want %d", len(first), len(sets))
	}
	e2e.CheckMetrics(t, first)
	maps := env.Maps(t, "first", size)
	// (p_abnormal + 1 − p_normal)/2 is a probability; the Gaussian is a
	// weighted mean.
	e2e.CheckRange(t, maps, 0, 1)
	computed, cached := s.TextCounts()
	if computed == 0 || cached != 0 {
		t.Errorf("first run: %d text features computed, %d cached; want all computed", computed, cached)
	}

	again := newScheme(t, env, "adaclip")
	second := env.Run(t, again, "again", 4, sets...)
	if c, _ := second.Counts(); c != 0 {
		t.Errorf("second run computed %d image feature sets, want all from the cache", c)
	}
	if c, k := again.TextCounts(); c != 0 || k == 0 {
		t.Errorf("second run: %d text features computed, %d cached; want all cached", c, k)
	}
	if a, b := first.JSON(t), second.JSON(t); a != b {
		t.Errorf("results differ between a run with one scoring goroutine and one with four:\n%s\n%s", a, b)
	}
	fresh := *env
	fresh.Cache = nil
	if a, b := first.Only("mvtec").JSON(t), fresh.Run(t, newScheme(t, env, "adaclip"), "fresh", 2, "mvtec").JSON(t); a != b {
		t.Errorf("results differ after recomputing the features:\n%s\n%s", a, b)
	}

	// Other visual prompts make other image features: never read from
	// the entries of the first tensors.
	o, err := adaclip.Parse("adaclip", adaclip.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Learned, err = checkpoints.Untrained(checkpoints.AdaCLIP, env.Model.Manifest, env.Model.TokenEmbedding, 2); err != nil {
		t.Fatal(err)
	}
	seed2, err := adaclip.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if c, k := env.Run(t, seed2, "seed2", 0, "mvtec").Counts(); c == 0 || k != 0 {
		t.Errorf("other learned tensors: %d image feature sets computed, %d cached; want none cached", c, k)
	}

	raw := newScheme(t, env, "adaclip/no-smoothing")
	unsmoothed := env.Run(t, raw, "raw", 0, "mvtec", "visa")
	e2e.CheckMetrics(t, unsmoothed)
	if c, _ := unsmoothed.Counts(); c != 0 {
		t.Errorf("no-smoothing variant computed %d image feature sets, want all from the cache", c)
	}
	if c, _ := raw.TextCounts(); c != 0 {
		t.Errorf("no-smoothing variant ran the text tower %d times, want all text features from the cache", c)
	}
	e2e.CheckRange(t, env.Maps(t, "raw", size), 0, 1)
	for id, cats := range unsmoothed {
		for i, c := range cats {
			if f := first[id][i]; *c.Image.AUROC.Value != *f.Image.AUROC.Value {
				t.Errorf("%s/%s: image metrics change with the smoothing", id, c.Category)
			}
		}
	}
}

// TestSeeding checks the two k-means seedings on real runs: in the
// default, an image's score depends on its position in the run (one
// stream), so scoring a category alone changes the scores of a later
// category's images; per-image seeding does not depend on it.
func TestSeeding(t *testing.T) {
	race.SkipNumeric(t)
	env := e2e.Setup(t, clip.Options{Variant: clip.AdaCLIP})
	root := filepath.Join(env.Dir, "data", "mvtec")
	scores := func(variant, category, out string) map[string]string {
		t.Helper()
		_, err := bench.Run(context.Background(), bench.Config{Dataset: "mvtec", Loader: loaders.Options{Root: root, Category: category},
			Model: env.Model, Scheme: newScheme(t, env, variant), Out: filepath.Join(env.Dir, out), Cache: env.Cache})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		files, _ := filepath.Glob(filepath.Join(env.Dir, out, "scores", "*"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got[filepath.Base(f)] = string(b)
		}
		return got
	}
	set, err := loaders.Load(context.Background(), loaders.MVTec, loaders.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	last := set.Categories[len(set.Categories)-1]
	for _, c := range []struct {
		variant string
		same    bool
	}{{"adaclip", false}, {"adaclip/kmeans-per-image", true}} {
		all := scores(c.variant, "", c.variant+"-all")
		alone := scores(c.variant, last, c.variant+"-alone")
		var name string
		for k := range alone {
			name = k
		}
		if (all[name] == alone[name]) != c.same {
			t.Errorf("%s: %s scored after the other categories and alone: same scores %v, want %v", c.variant, last, all[name] == alone[name], c.same)
		}
	}
}

// TestWrongModel checks that the scheme refuses a model of another variant
// and a model too small for 20 clusters.
func TestWrongModel(t *testing.T) {
	race.SkipNumeric(t)
	env := e2e.Setup(t, clip.Options{Variant: clip.AdaCLIP})
	s := newScheme(t, env, "adaclip")
	m := *env.Model
	man := *m.Manifest
	man.Variant = clip.Plain
	m.Manifest = &man
	if _, err := s.ImageInputs(&m); err == nil || !strings.Contains(err.Error(), "plain") {
		t.Errorf("plain model: error %v", err)
	}
	if _, err := s.Prepare(context.Background(), &m, bench.Category{Name: "bottle", PromptName: "bottle"}); err == nil {
		t.Error("Prepare on a plain model: no error")
	}
	small := *env.Model.Manifest
	small.Grid = 4
	m.Manifest = &small
	if _, err := s.ImageInputs(&m); err == nil || !strings.Contains(err.Error(), "n_clusters") {
		t.Errorf("16 patches: error %v", err)
	}
	if _, err := adaclip.New(adaclip.Options{}); err == nil {
		t.Error("no learned tensors: no error")
	}
	if l, err := checkpoints.Untrained(checkpoints.AnomalyCLIP, nil, env.Model.TokenEmbedding, 1); err != nil {
		t.Fatal(err)
	} else if _, err := adaclip.New(adaclip.Options{Learned: l}); err == nil {
		t.Error("anomalyclip tensors: no error")
	}
}

// TestImportWrongScheme checks that a DAPO checkpoint is refused as an
// AdaCLIP one, naming what is missing.
func TestImportWrongScheme(t *testing.T) {
	_, err := checkpoints.Import(filepath.Join("..", "..", "checkpoints", "testdata", "dapo_train.pth"), checkpoints.AdaCLIP, nil)
	if err == nil || !strings.Contains(err.Error(), "clip_model") {
		t.Errorf("DAPO checkpoint imported as AdaCLIP: error %v", err)
	}
}

func TestSentences(t *testing.T) {
	normal, abnormal := adaclip.Sentences("tabby-cat")
	if len(normal) != 28 || len(abnormal) != 20 {
		t.Fatalf("%d normal and %d abnormal sentences, want 28 and 20", len(normal), len(abnormal))
	}
	for _, want := range []string{"a bad photo of a tabby cat.", "a cropped photo of the tabby cat without damage."} {
		if !slices.Contains(normal, want) {
			t.Errorf("normal sentences lack %q", want)
		}
	}
	if abnormal[0] != "a bad photo of a damaged tabby cat." || abnormal[19] != "a cropped photo of the tabby cat with damage." {
		t.Errorf("abnormal sentences %q … %q", abnormal[0], abnormal[19])
	}
	if n, _ := adaclip.Sentences("metal_nut"); n[0] != "a bad photo of a metal_nut." {
		t.Errorf("underscore: %q", n[0])
	}
}
