package adaclip_test

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dapobench/dapobench/baselines/adaclip"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/runner"
)

// benchArch keeps ViT-L@518's proportions between AdaCLIP's per-image
// costs at a size a benchmark can run: two passes of a 12-block image tower
// (width 384, 197 tokens) and one text pass over the 48 sentences (12
// blocks of width 96) cost about 8.4 and 4.9 GMAC, so the text tower is
// 37% of an image's forward pass (ViT-L at 518 with its 768-wide text
// tower: 31%).
var benchArch = clip.Arch{
	Name: "adaclip-bench", ImageSize: 224, PatchSize: 16,
	VisionWidth: 384, VisionLayers: 12, VisionHeads: 6,
	TextWidth: 96, TextLayers: 12, TextHeads: 4,
	ContextLength: 77, VocabSize: 49408, EmbedDim: 96, Act: clip.GELU,
}

// BenchmarkSecondScheme measures what the feature cache saves AdaCLIP. The
// first run over the MVTec fixture runs the image tower (both passes) and
// the per-image text tower on every image and caches both; a second
// variant (adaclip/no-smoothing) reads both from the cache. A third run
// with other text prompts (one static text prompt changed) reads the image
// features but must run the text tower again: what every variant would
// cost without cached text features. It reports the three times and the
// ratios to the first.
func BenchmarkSecondScheme(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	if _, err := fixtures.Generate(ctx, filepath.Join(dir, "data"), fixtures.DefaultSeed); err != nil {
		b.Fatal(err)
	}
	seed := uint64(1)
	if _, err := clip.Build(ctx, filepath.Join(dir, "model"), benchArch, clip.TinyWeights(benchArch, seed),
		clip.Options{Variant: clip.AdaCLIP}, clip.SourceInfo{Seed: &seed}); err != nil {
		b.Fatal(err)
	}
	rt, err := runner.Open(runner.Options{Device: "cpu"})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	m, err := bench.OpenModel(ctx, rt, filepath.Join(dir, "model"))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	l, err := checkpoints.Untrained(checkpoints.AdaCLIP, m.Manifest, m.TokenEmbedding, 1)
	if err != nil {
		b.Fatal(err)
	}
	// other text prompts, the same image tower inputs
	other := &checkpoints.Learned{Scheme: l.Scheme, Seed: l.Seed, Tensors: maps.Clone(l.Tensors)}
	st := other.Tensors[clip.AdaCLIPTextStatic(1)]
	st.Data = slices.Clone(st.Data)
	st.Data[0] += 0.01
	other.Tensors[clip.AdaCLIPTextStatic(1)] = st
	run := func(variant string, learned *checkpoints.Learned, cacheDir, out string) time.Duration {
		o, err := adaclip.Parse(variant, adaclip.Options{Learned: learned})
		if err != nil {
			b.Fatal(err)
		}
		s, err := adaclip.New(o)
		if err != nil {
			b.Fatal(err)
		}
		cache, err := featcache.Open(cacheDir)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := bench.Run(ctx, bench.Config{Dataset: "mvtec", Loader: loaders.Options{Root: filepath.Join(dir, "data", "mvtec")},
			Model: m, Scheme: s, Out: out, Cache: cache}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var first, second, text time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		cacheDir := filepath.Join(dir, "cache", strconv.Itoa(i))
		first += run("adaclip", l, cacheDir, filepath.Join(cacheDir, "run1"))
		second += run("adaclip/no-smoothing", l, cacheDir, filepath.Join(cacheDir, "run2"))
		text += run("adaclip", other, cacheDir, filepath.Join(cacheDir, "run3"))
	}
	n := float64(b.N)
	b.ReportMetric(first.Seconds()/n, "first-s")
	b.ReportMetric(second.Seconds()/n, "second-s")
	b.ReportMetric(text.Seconds()/n, "new-text-s")
	b.ReportMetric(second.Seconds()/first.Seconds(), "ratio")
	b.ReportMetric(text.Seconds()/first.Seconds(), "new-text-ratio")
}
