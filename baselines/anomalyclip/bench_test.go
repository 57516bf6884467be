package anomalyclip

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/clip"
)

// BenchmarkScore scores one image at the official geometry (ViT-L/14 at
// 518: 37×37 patches plus CLS, 768-dimensional tokens, layer 24, 518×518
// map smoothed with σ = 4; docs/methods.md#anomalyclip-scoring).
func BenchmarkScore(b *testing.B) {
	const g, size, de = 37, 518, 768
	r := rand.New(rand.NewPCG(1, 2))
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	for _, smooth := range []bool{true, false} {
		name := "smoothed"
		if !smooth {
			name = "raw"
		}
		b.Run(name, func(b *testing.B) {
			s, err := New(Options{Learned: untrained, NoSmoothing: !smooth})
			if err != nil {
				b.Fatal(err)
			}
			text := postproc.Mat{Rows: 2, Cols: de, Data: vec(2 * de)}
			sc, err := s.newScorer(text, []int{24}, g, size, true)
			if err != nil {
				b.Fatal(err)
			}
			f := bench.Features{Tensors: []featcache.Tensor{
				{Name: clip.OutImageEmbed, Shape: []int{de}, Data: vec(de)},
				{Name: clip.OutPatch(24), Shape: []int{1 + g*g, de}, Data: vec((1 + g*g) * de)},
			}}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sc.Score(ctx, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, v := range Variants() {
		f.Add(v.Name)
	}
	f.Add("anomalyclip/layers-1-2-3")
	f.Add("anomalyclip/layers-99999999999999999999")
	f.Fuzz(func(t *testing.T, name string) {
		o, err := Parse(name, Options{})
		if err != nil {
			return
		}
		o.Learned = untrained
		s, err := New(o)
		if err != nil {
			return // e.g. a layer given twice: refused with an error
		}
		if s.Name() != name {
			t.Fatalf("Parse(%q) named the scheme %q", name, s.Name())
		}
	})
}
