package clip_test

import (
	"context"
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
