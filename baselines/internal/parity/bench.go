package parity

import (
	"context"
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/runner"
)

// MediumArch has ViT-B/16's sizes (86 M image-tower parameters at 224 px,
// and its 12-block text tower), so that both towers weigh in a first run
// as they do with the real backbone: a scheme's first run encodes its
// prompts too, and MultiADS' ensembles are hundreds of sentences.
var MediumArch = clip.Arch{
	Name: "vit-b16-bench", ImageSize: 224, PatchSize: 16,
	VisionWidth: 768, VisionLayers: 12, VisionHeads: 12,
	TextWidth: 512, TextLayers: 12, TextHeads: 8,
	ContextLength: 77, VocabSize: 49408, EmbedDim: 512, Act: clip.QuickGELU,
}

// LargeArch has ViT-L/14@336px's sizes (304 M image-tower parameters):
// SecondScheme uses it when DAPOBENCH_BENCH_ARCH is "vit-l" (minutes per
// iteration on a CPU), to measure the ratio at the real backbone's weight.
var LargeArch = clip.Arch{
	Name: "vit-l14-bench", ImageSize: 336, PatchSize: 14,
	VisionWidth: 1024, VisionLayers: 24, VisionHeads: 16,
	TextWidth: 768, TextLayers: 12, TextHeads: 12,
	ContextLength: 77, VocabSize: 49408, EmbedDim: 768, Act: clip.QuickGELU,
}

// SecondScheme measures what the feature cache saves a scheme's second
// variant: over the MVTec-AD fixture the first variant runs the image
// tower on every image, the second, over the same images and caches, only
// scores them (and encodes only the prompts the first did not). Each run
// opens the model afresh, as a `dapobench run` process does, so the first
// run pays for loading the towers it needs and the second loads none.
// newScheme builds a variant on the opened model. It reports both times
// and their ratio.
func SecondScheme(b *testing.B, v clip.Variant, first, second string, newScheme func(m *bench.Model, variant string) bench.Scheme) {
	ctx := context.Background()
	dir := b.TempDir()
	if _, err := fixtures.Generate(ctx, filepath.Join(dir, "data"), fixtures.DefaultSeed); err != nil {
		b.Fatal(err)
	}
	seed := uint64(1)
	arch := MediumArch
	if os.Getenv("DAPOBENCH_BENCH_ARCH") == "vit-l" {
		arch = LargeArch
	}
	b.Logf("image tower of %s at %d px", arch.Name, arch.ImageSize)
	if _, err := clip.Build(ctx, filepath.Join(dir, "model"), arch, clip.TinyWeights(arch, seed),
		clip.Options{Variant: v}, clip.SourceInfo{Seed: &seed}); err != nil {
		b.Fatal(err)
	}
	// A model is built long before it is run: wait out the clock tick in
	// which run would not trust the files' identities for its hash memo
	// (docs/README.md#model-hash-memo).
	time.Sleep(2100 * time.Millisecond)
	rt, err := runner.Open(runner.Options{Device: "cpu"})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	run := func(variant, cacheDir, out string) (time.Duration, int) {
		start := time.Now()
		// The caches of `dapobench run --cache DIR`: image features, and
		// each prompt's text features under DIR/text.
		cache, text, err := bench.OpenCaches(cacheDir)
		if err != nil {
			b.Fatal(err)
		}
		m, err := bench.OpenModelWith(ctx, rt, filepath.Join(dir, "model"),
			bench.OpenOptions{Lazy: true, TextCache: text, HashMemo: bench.HashMemoDir(cacheDir)})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		recs, err := bench.Run(ctx, bench.Config{Dataset: "mvtec", Loader: loaders.Options{Root: filepath.Join(dir, "data", "mvtec")},
			Model: m, Scheme: newScheme(m, variant), Out: out, Cache: cache})
		if err != nil {
			b.Fatal(err)
		}
		computed := 0
		for _, r := range recs {
			computed += r.Computed
		}
		return time.Since(start), computed
	}
	var t1, t2 time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		cacheDir := filepath.Join(dir, "cache", time.Now().Format("150405.000000000"))
		// The labels let a CPU profile (-cpuprofile) tell the runs apart:
		// go tool pprof -tagfocus run=second.
		var d1, d2 time.Duration
		var c1, c2 int
		pprof.Do(ctx, pprof.Labels("run", "first"), func(context.Context) {
			d1, c1 = run(first, cacheDir, filepath.Join(cacheDir, "run1"))
		})
		pprof.Do(ctx, pprof.Labels("run", "second"), func(context.Context) {
			d2, c2 = run(second, cacheDir, filepath.Join(cacheDir, "run2"))
		})
		if c1 == 0 || c2 != 0 {
			b.Fatalf("the first variant computed %d images' features, the second %d; want all, then none", c1, c2)
		}
		t1, t2 = t1+d1, t2+d2
	}
	n := float64(b.N)
	b.ReportMetric(t1.Seconds()/n, "first-s")
	b.ReportMetric(t2.Seconds()/n, "second-s")
	b.ReportMetric(t2.Seconds()/t1.Seconds(), "ratio")
}
