package dapo_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/dapo"
	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/runner"
)

// mediumArch has ViT-B/16's image tower (86 M parameters at 224 px), so
// that the image tower dominates a run as it does with real backbones; the
// text tower is small to keep the build short.
var mediumArch = clip.Arch{
	Name: "vit-b16-bench", ImageSize: 224, PatchSize: 16,
	VisionWidth: 768, VisionLayers: 12, VisionHeads: 12,
	TextWidth: 128, TextLayers: 2, TextHeads: 2,
	ContextLength: 77, VocabSize: 49408, EmbedDim: 256, Act: clip.QuickGELU,
}

// BenchmarkSecondScheme measures what the feature cache saves: the first
// scheme over the MVTec fixture runs the image tower on every image, a
// second scheme (another prompt variant) over the same images only scores
// them. It reports both times and their ratio.
func BenchmarkSecondScheme(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	if _, err := fixtures.Generate(ctx, filepath.Join(dir, "data"), fixtures.DefaultSeed); err != nil {
		b.Fatal(err)
	}
	seed := uint64(1)
	if _, err := clip.Build(ctx, filepath.Join(dir, "model"), mediumArch, clip.TinyWeights(mediumArch, seed),
		clip.Options{Variant: clip.DAPO}, clip.SourceInfo{Seed: &seed}); err != nil {
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
	l, err := checkpoints.Untrained(checkpoints.DAPO, m.Manifest, m.TokenEmbedding, 1)
	if err != nil {
		b.Fatal(err)
	}
	run := func(variant, cacheDir, out string) time.Duration {
		opt, err := dapo.Parse(variant, dapo.Options{Learned: l})
		if err != nil {
			b.Fatal(err)
		}
		s, err := dapo.New(opt)
		if err != nil {
			b.Fatal(err)
		}
		cache, err := featcache.Open(cacheDir)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		_, err = bench.Run(ctx, bench.Config{Dataset: "mvtec", Loader: loaders.Options{Root: filepath.Join(dir, "data", "mvtec")},
			Model: m, Scheme: s, Out: out, Cache: cache})
		if err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var first, second time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		cacheDir := filepath.Join(dir, "cache", string(rune('a'+i%26)), time.Now().Format("150405.000000000"))
		first += run("dapo", cacheDir, filepath.Join(cacheDir, "run1"))
		second += run("dapo/e1", cacheDir, filepath.Join(cacheDir, "run2"))
	}
	n := float64(b.N)
	b.ReportMetric(first.Seconds()/n, "first-s")
	b.ReportMetric(second.Seconds()/n, "second-s")
	b.ReportMetric(second.Seconds()/first.Seconds(), "ratio")
}
