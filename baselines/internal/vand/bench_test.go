package vand

import (
	"math/rand/v2"
	"testing"

	"github.com/dapobench/dapobench/bench/postproc"
)

// BenchmarkDefectMass is one MultiADS layer's softmax at 224 px: 21
// classes over 224² pixels.
func BenchmarkDefectMass(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	g := postproc.Grid{C: 21, H: 224, W: 224, Data: make([]float32, 21*224*224)}
	for i := range g.Data {
		g.Data[i] = float32(r.NormFloat64() * 30)
	}
	for b.Loop() {
		if _, err := DefectMass(g, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}
