package multiads_test

import (
	"testing"

	"github.com/dapobench/dapobench/baselines/internal/parity"
	"github.com/dapobench/dapobench/baselines/multiads"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
)

// BenchmarkSecondScheme measures a second MultiADS variant over the
// images of a first one: its image features come from the cache, so it
// costs the linear layers, the maps and the text ensemble alone (read
// from the text cache). Each run starts without the in-process memo of
// encoded ensembles, as a separate `dapobench run` does.
func BenchmarkSecondScheme(b *testing.B) {
	parity.SecondScheme(b, clip.MultiADS, "multiads", "multiads/softmax-score", func(m *bench.Model, variant string) bench.Scheme {
		multiads.ForgetTexts()
		l, err := checkpoints.Untrained(checkpoints.MultiADS, m.Manifest, m.TokenEmbedding, 1)
		if err != nil {
			b.Fatal(err)
		}
		o, err := multiads.Parse(variant, multiads.Options{Learned: l})
		if err != nil {
			b.Fatal(err)
		}
		s, err := multiads.New(o)
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}
