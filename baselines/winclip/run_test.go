package winclip_test

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/dapobench/dapobench/baselines/internal/e2e"
	"github.com/dapobench/dapobench/baselines/winclip"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/internal/race"
	"github.com/dapobench/dapobench/onnx/runner"
)

// TestRun evaluates WinCLIP and its no-windows variant on every fixture
// dataset with a tiny WinCLIP model (4×4 patch grid, so both window
// scales fit) and checks the structure of the results, the range of the
// maps, determinism, and that the second variant reuses the cached
// window embeddings.
func TestRun(t *testing.T) {
	env := e2e.Setup(t, clip.Options{Variant: clip.WinCLIP})
	size := env.Model.Manifest.ImageSize
	s, err := winclip.New(winclip.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	first := env.Run(t, s, "first", 0)
	if len(first) != len(fixtures.IDs) {
		t.Fatalf("results of %d datasets, want %d", len(first), len(fixtures.IDs))
	}
	t.Logf("first run (features computed): %v", time.Since(start))
	e2e.CheckMetrics(t, first)
	maps := env.Maps(t, "first", size)
	e2e.CheckRange(t, maps, 0, 1) // harmonic means of probabilities
	if computed, _ := first.Counts(); computed == 0 {
		t.Error("the first run computed no features")
	}

	// Same features from the cache, one scoring goroutine: same bytes.
	start = time.Now()
	again := env.Run(t, s, "again", 1)
	t.Logf("second run (features cached): %v", time.Since(start))
	if computed, _ := again.Counts(); computed != 0 {
		t.Errorf("second run computed %d feature sets, want all from the cache", computed)
	}
	if a, b := first.JSON(t), again.JSON(t); a != b {
		t.Errorf("results differ between identical runs:\n%s\n%s", a, b)
	}
	// Recomputed features without a cache: same bytes.
	fresh := *env
	fresh.Cache = nil
	if a, b := first.Only("mvtec", "visa").JSON(t), fresh.Run(t, s, "fresh", 2, "mvtec", "visa").JSON(t); a != b {
		t.Errorf("results differ after recomputing the features:\n%s\n%s", a, b)
	}
	for p, m := range env.Maps(t, "again", size) {
		if !slices.Equal(m, maps[p]) {
			t.Errorf("%s: map differs between identical runs", p)
		}
	}

	// The no-windows variant reads the same cache entries; its maps are
	// the image score everywhere.
	o, err := winclip.Parse("winclip/no-windows", winclip.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nw, err := winclip.New(o)
	if err != nil {
		t.Fatal(err)
	}
	flat := env.Run(t, nw, "no-windows", 0, "mvtec", "visa", "real-iad")
	e2e.CheckMetrics(t, flat, "pixel AU-PRO")
	if computed, _ := flat.Counts(); computed != 0 {
		t.Errorf("no-windows variant computed %d feature sets, want all from the cache", computed)
	}
	flatMaps := env.Maps(t, "no-windows", size)
	e2e.CheckRange(t, flatMaps, 0, 1)
	for p, m := range flatMaps {
		// A constant grid upsampled with PyTorch's float32 weights varies
		// in the last bits (x·λ0 + x·λ1 ≠ x), as in anomalib.
		if lo, hi := slices.Min(m), slices.Max(m); hi-lo > 1e-6*hi {
			t.Errorf("%s: no-windows map spans [%v, %v], want a constant", p, lo, hi)
		}
	}
	if a, b := first.JSON(t), flat.JSON(t); a == b {
		t.Error("no-windows results equal WinCLIP's")
	}
}

// TestWindowGraph checks the premise of the window embeddings: the window
// graph continues the image tower from the tokens before ln_pre, so the
// whole token sequence through it gives the image embedding.
func TestWindowGraph(t *testing.T) {
	race.SkipNumeric(t)
	env := e2e.Setup(t, clip.Options{Variant: clip.WinCLIP})
	man := env.Model.Manifest
	s := man.ImageSize
	pixels := make([]float32, 2*3*s*s)
	for i := range pixels {
		pixels[i] = float32(math.Sin(float64(i) * 0.37))
	}
	ctx := context.Background()
	out, err := env.Model.Image.Run(ctx, map[string]runner.Tensor{clip.InPixels: {Shape: []int64{2, 3, int64(s), int64(s)}, Float32: pixels}})
	if err != nil {
		t.Fatal(err)
	}
	win, err := env.Model.Window.Run(ctx, map[string]runner.Tensor{clip.InTokens: out[clip.OutTokens]})
	if err != nil {
		t.Fatal(err)
	}
	want, got := out[clip.OutImageEmbed].Float32, win[clip.OutImageEmbed].Float32
	if len(got) != len(want) || len(want) != 2*man.EmbedDim {
		t.Fatalf("window graph gave %d values, image tower %d", len(got), len(want))
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-5 {
			t.Fatalf("embedding value %d: window graph %v, image tower %v", i, got[i], want[i])
		}
	}
}
