package winclip

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/clip"
)

// BenchmarkScore scores one image at the geometry of ViT-B-16-plus-240
// (15×15 patches, 196 + 169 windows, 640-dimensional embeddings, 240×240
// map; docs/methods.md#winclip-windows).
func BenchmarkScore(b *testing.B) {
	const g, size, de = Grid, 240, 640
	r := rand.New(rand.NewPCG(1, 2))
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	s, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	sc, err := s.newScorer(postproc.Mat{Rows: 2, Cols: de, Data: vec(2 * de)}, g, size)
	if err != nil {
		b.Fatal(err)
	}
	f := bench.Features{Tensors: []featcache.Tensor{{Name: clip.OutImageEmbed, Shape: []int{de}, Data: vec(de)}}}
	for _, k := range DefaultScales() {
		n := (g - k + 1) * (g - k + 1)
		f.Tensors = append(f.Tensors, featcache.Tensor{Name: WindowFeature(k), Shape: []int{n, de}, Data: vec(n * de)})
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sc.Score(ctx, f); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, v := range Variants() {
		f.Add(v.Name)
	}
	f.Add("winclip/scale-4")
	f.Fuzz(func(t *testing.T, name string) {
		o, err := Parse(name, Options{})
		if err != nil {
			return
		}
		s, err := New(o)
		if err != nil {
			t.Fatalf("Parse(%q) gave options New refuses: %v", name, err)
		}
		if s.Name() != name {
			t.Fatalf("Parse(%q) named the scheme %q", name, s.Name())
		}
	})
}
