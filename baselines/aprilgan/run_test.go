package aprilgan_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/baselines/aprilgan"
	"github.com/dapobench/dapobench/baselines/internal/e2e"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/race"
	"github.com/dapobench/dapobench/results"
)

func newScheme(t *testing.T, m *bench.Model, variant string) *aprilgan.Scheme {
	t.Helper()
	l, err := checkpoints.Untrained(checkpoints.APRILGAN, m.Manifest, m.TokenEmbedding, 1)
	if err != nil {
		t.Fatal(err)
	}
	o, err := aprilgan.Parse(variant, aprilgan.Options{Learned: l})
	if err != nil {
		t.Fatal(err)
	}
	s, err := aprilgan.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRun evaluates APRIL-GAN (untrained linear layers) on two fixture
// datasets with a tiny model, checks the results and the range of the
// maps, then runs aprilgan/map-max over the same images: its features
// come from the cache, its maps are APRIL-GAN's and its image scores
// their maxima.
func TestRun(t *testing.T) {
	race.SkipNumeric(t)
	env := e2e.Setup(t, clip.Options{Variant: clip.APRILGAN})
	if env.Model.Manifest.Arch.Act != clip.GELU {
		t.Errorf("the tiny aprilgan model runs %s, want exact GELU", env.Model.Manifest.Arch.Act)
	}
	size, layers := env.Model.Manifest.ImageSize, len(env.Model.Manifest.FeatureLayers)
	s := newScheme(t, env.Model, "")
	if !strings.Contains(s.Settings()["prompts"], "untrained") {
		t.Errorf("settings do not say untrained: %v", s.Settings())
	}
	first := env.Run(t, s, "first", 0, "mvtec", "mad-sim")
	e2e.CheckMetrics(t, first)
	maps := env.Maps(t, "first", size)
	e2e.CheckRange(t, maps, 0, float32(layers)) // a probability per layer

	second := env.Run(t, newScheme(t, env.Model, "aprilgan/map-max"), "second", 0, "mvtec", "mad-sim")
	if computed, cached := second.Counts(); computed != 0 || cached == 0 {
		t.Errorf("the second variant computed %d feature sets and read %d from the cache; want all from the cache", computed, cached)
	}
	for p, m := range env.Maps(t, "second", size) {
		if !strings.Contains(p, "/maps/") {
			continue // examples follow the image scores
		}
		if !slices.Equal(m, maps[p]) {
			t.Errorf("%s: aprilgan/map-max has another map", p)
		}
	}
	for ds, cats := range second {
		for _, c := range cats {
			imgs, _, _, scores, err := results.ReadScores(env.Dir+"/second/"+ds, c.Category)
			if err != nil {
				t.Fatal(err)
			}
			for i, img := range imgs {
				m := maps[ds+"/maps/"+strings.TrimSuffix(img, pathExt(img))+".npy"]
				if m == nil {
					t.Fatalf("%s: no saved map", img)
				}
				if want := float64(slices.Max(m)); scores[i] != want {
					t.Errorf("%s: image score %v, want the map maximum %v", img, scores[i], want)
				}
			}
		}
	}
}

func pathExt(p string) string {
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[i:]
	}
	return ""
}

// TestSchemeChecks: wrong or missing learned tensors and a model of
// another variant are refused before any image is read.
func TestSchemeChecks(t *testing.T) {
	if _, err := aprilgan.New(aprilgan.Options{}); err == nil {
		t.Error("no learned tensors: no error")
	}
	env := e2e.Setup(t, clip.Options{Variant: clip.Plain})
	l, err := checkpoints.Untrained(checkpoints.APRILGAN, nil, clip.Tensor{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := checkpoints.Untrained(checkpoints.MultiADS, nil, clip.Tensor{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aprilgan.New(aprilgan.Options{Learned: wrong}); err == nil || !strings.Contains(err.Error(), "multiads") {
		t.Errorf("multiads tensors: %v", err)
	}
	s, err := aprilgan.New(aprilgan.Options{Learned: l})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImageInputs(env.Model); err == nil || !strings.Contains(err.Error(), "plain model") {
		t.Errorf("a plain model: %v", err)
	}
	if _, err := s.Prepare(context.Background(), env.Model, bench.Category{Dataset: "mvtec", Name: "bottle", PromptName: "bottle"}); err == nil {
		t.Error("Prepare on a plain model: no error")
	}
	if _, err := aprilgan.Parse("aprilgan/nope", aprilgan.Options{}); err == nil || !strings.Contains(err.Error(), "aprilgan/last-layer") {
		t.Errorf("unknown variant: %v", err)
	}
}

// TestEnsemble pins APRIL-GAN's prompt ensemble: 7 normal and 5 abnormal
// states in 35 templates, 420 prompts per object, built state-major.
func TestEnsemble(t *testing.T) {
	e, err := aprilgan.Ensemble()
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Templates) != 35 || len(e.Groups[0].States) != 7 || len(e.Groups[1].States) != 5 || e.Size() != 420 {
		t.Fatalf("%d templates, %d + %d states, %d prompts", len(e.Templates), len(e.Groups[0].States), len(e.Groups[1].States), e.Size())
	}
	s := e.Sentences("metal_nut")
	if s[0][0] != "a bad photo of a metal_nut." || s[0][35] != "a bad photo of a flawless metal_nut." ||
		s[1][len(s[1])-1] != "this is one metal_nut with damage in the scene." {
		t.Errorf("sentences %q, %q, %q", s[0][0], s[0][35], s[1][len(s[1])-1])
	}
}

// TestGELUTowersShareNoCache: two aprilgan towers from the same weights
// that differ only in their activation (exact GELU, as the factory runs
// ViT-L at 518 px, and QuickGELU) never read each other's cached
// features: the activation is part of model.json, which is part of the
// cache key.
func TestGELUTowersShareNoCache(t *testing.T) {
	race.SkipNumeric(t)
	ctx := context.Background()
	env := e2e.Setup(t, clip.Options{Variant: clip.APRILGAN}) // GELU
	a := clip.TinyArch(clip.APRILGAN)
	a.Act = clip.QuickGELU
	dir := t.TempDir()
	if _, err := clip.Build(ctx, dir, a, clip.TinyWeights(a, 1), clip.Options{Variant: clip.APRILGAN}, clip.SourceInfo{}); err != nil {
		t.Fatal(err)
	}
	quick, err := bench.OpenModel(ctx, env.Model.Runtime, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer quick.Close()
	if quick.Manifest.Arch.Act != clip.QuickGELU || quick.ImageHash == env.Model.ImageHash {
		t.Fatalf("act %s, image hashes %s and %s", quick.Manifest.Arch.Act, quick.ImageHash, env.Model.ImageHash)
	}
	first := env.Run(t, newScheme(t, env.Model, ""), "gelu", 0, "mvtec")
	other := *env
	other.Model = quick
	second := other.Run(t, newScheme(t, quick, ""), "quick", 0, "mvtec")
	c1, _ := first.Counts()
	c2, k2 := second.Counts()
	if c1 == 0 || c2 != c1 || k2 != 0 {
		t.Errorf("the QuickGELU tower computed %d and read %d cached feature sets after the GELU tower computed %d; want none shared", c2, k2, c1)
	}
	if first.JSON(t) == second.JSON(t) {
		t.Error("the two activations give the same results")
	}
}
