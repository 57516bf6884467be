package clip_test

import (
	"context"
	"os"
	"testing"

	"github.com/dapobench/dapobench/clip"
)

// BenchmarkBuildTiny measures writing a whole tiny model directory.
func BenchmarkBuildTiny(b *testing.B) {
	for _, v := range clip.Variants() {
		b.Run(string(v), func(b *testing.B) {
			dir := b.TempDir()
			for b.Loop() {
				if _, err := clip.BuildTiny(context.Background(), dir, 1, clip.Options{Variant: v}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTinyWeights measures the seeded weights alone (the token table dominates).
func BenchmarkTinyWeights(b *testing.B) {
	a := clip.TinyArch(clip.DAPO)
	for b.Loop() {
		clip.TinyWeights(a, 1)
	}
}

// TestWriteSeededWeights writes seeded random weights of a preset's sizes
// as an F32 safetensors file, the input of `make bench-build`, when
// DAPOBENCH_SEEDED_WEIGHTS names the file (DAPOBENCH_SEEDED_ARCH the
// preset, ViT-L-14-336 by default).
func TestWriteSeededWeights(t *testing.T) {
	path := os.Getenv("DAPOBENCH_SEEDED_WEIGHTS")
	if path == "" {
		t.Skip("DAPOBENCH_SEEDED_WEIGHTS not set")
	}
	name := os.Getenv("DAPOBENCH_SEEDED_ARCH")
	if name == "" {
		name = "ViT-L-14-336"
	}
	a, err := clip.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := clip.TinyWeights(a, 1).WriteSafetensors(path); err != nil {
		t.Fatal(err)
	}
}
