package vand

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dapobench/dapobench/bench/postproc"
)

// naive is the per-pixel softmax in float64 with math.Exp.
func naive(g postproc.Grid) [][]float64 {
	n := g.H * g.W
	out := make([][]float64, g.C)
	for c := range out {
		out[c] = make([]float64, n)
	}
	for i := range n {
		hi := math.Inf(-1)
		for c := range g.C {
			hi = math.Max(hi, float64(g.Data[c*n+i]))
		}
		var s float64
		for c := range g.C {
			s += math.Exp(float64(g.Data[c*n+i]) - hi)
		}
		for c := range g.C {
			out[c][i] = math.Exp(float64(g.Data[c*n+i])-hi) / s
		}
	}
	return out
}

func TestSoftmaxAndDefectMass(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []int{2, 5, 21} {
		g := postproc.Grid{C: c, H: 13, W: 17, Data: make([]float32, c*13*17)} // not a multiple of the block
		for i := range g.Data {
			g.Data[i] = float32(r.NormFloat64() * 40)
		}
		want := naive(g)
		local := []int{0, c - 1}
		acc := [][]float32{make([]float32, 13*17), make([]float32, 13*17)}
		mass, err := DefectMass(g, local, acc)
		if err != nil {
			t.Fatal(err)
		}
		for i := range acc[0] {
			a, b := float64(g.Data[i]), float64(g.Data[(c-1)*13*17+i])
			w := 1 / (1 + math.Exp(b-a))
			if math.Abs(float64(acc[0][i])-w) > 1e-7 || math.Abs(float64(acc[1][i])-(1-w)) > 1e-7 {
				t.Fatalf("C=%d pixel %d: local softmax %v %v, want %v %v", c, i, acc[0][i], acc[1][i], w, 1-w)
			}
		}
		for i, v := range mass {
			var w float64
			for k := 1; k < c; k++ {
				w += want[k][i]
			}
			if math.Abs(float64(v)-w) > 1e-6 {
				t.Fatalf("C=%d pixel %d: defect mass %v, want %v", c, i, v, w)
			}
		}
		if err := SoftmaxPlanes(g); err != nil {
			t.Fatal(err)
		}
		for k := range c {
			for i, v := range g.Plane(k) {
				if math.Abs(float64(v)-want[k][i]) > 1e-7 {
					t.Fatalf("C=%d class %d pixel %d: %v, want %v", c, k, i, v, want[k][i])
				}
			}
		}
	}
	bad := postproc.Grid{C: 3, H: 1, W: 2, Data: []float32{0, 1, float32(math.NaN()), 2, 3, 4}}
	if _, err := DefectMass(bad, nil, nil); err == nil {
		t.Error("a NaN logit gave no error")
	}
	if err := SoftmaxPlanes(postproc.Grid{C: 2, H: 1, W: 1, Data: []float32{0, float32(math.Inf(1))}}); err == nil {
		t.Error("an infinite logit gave no error")
	}
}
