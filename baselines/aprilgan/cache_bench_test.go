package aprilgan_test

import (
	"testing"

	"github.com/dapobench/dapobench/baselines/aprilgan"
	"github.com/dapobench/dapobench/baselines/internal/parity"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
)

// BenchmarkSecondScheme measures a second APRIL-GAN variant over the
// images of a first one: its image features come from the cache, so it
// costs the linear layers, the maps and the text ensemble alone.
func BenchmarkSecondScheme(b *testing.B) {
	parity.SecondScheme(b, clip.APRILGAN, "aprilgan", "aprilgan/map-max", func(m *bench.Model, variant string) bench.Scheme {
		l, err := checkpoints.Untrained(checkpoints.APRILGAN, m.Manifest, m.TokenEmbedding, 1)
		if err != nil {
			b.Fatal(err)
		}
		o, err := aprilgan.Parse(variant, aprilgan.Options{Learned: l})
		if err != nil {
			b.Fatal(err)
		}
		s, err := aprilgan.New(o)
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}
