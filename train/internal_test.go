package train

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/bench/postproc"
	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/graph"
)

// TestInterpolationMatrix checks U·X·Vᵀ against the evaluation's
// resampler on random grids, for both corner conventions and sizes that
// up- and downsample.
func TestInterpolationMatrix(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		g, s  int
		align bool
	}{{4, 32, true}, {4, 32, false}, {37, 518, true}, {37, 518, false}, {7, 7, false}, {5, 3, true}, {1, 9, false}} {
		u, err := interpolationMatrix(tc.g, tc.s, tc.align)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, tc.g*tc.g)
		for i := range x {
			x[i] = r.Float32()
		}
		want := make([]float32, tc.s*tc.s)
		if err := postproc.Upsample(postproc.Grid{C: 1, H: tc.s, W: tc.s, Data: want}, postproc.Grid{C: 1, H: tc.g, W: tc.g, Data: x}, tc.align); err != nil {
			t.Fatal(err)
		}
		ux := make([]float64, tc.s*tc.g) // U·X
		for i := range tc.s {
			for b := range tc.g {
				for a := range tc.g {
					ux[i*tc.g+b] += u[i*tc.g+a] * float64(x[a*tc.g+b])
				}
			}
		}
		var worst float64
		for i := range tc.s {
			for j := range tc.s {
				var v float64
				for b := range tc.g {
					v += ux[i*tc.g+b] * u[j*tc.g+b]
				}
				worst = math.Max(worst, math.Abs(v-float64(want[i*tc.s+j])))
			}
		}
		if worst > 1e-6 {
			t.Errorf("%d→%d align %v: max difference %.3g from postproc", tc.g, tc.s, tc.align, worst)
		}
		for i := range tc.s { // rows of an interpolation sum to one
			var sum float64
			for a := range tc.g {
				sum += u[i*tc.g+a]
			}
			if math.Abs(sum-1) > 1e-6 {
				t.Errorf("%d→%d align %v: row %d sums to %g", tc.g, tc.s, tc.align, i, sum)
			}
		}
	}
}

// TestAdam compares Update with Adam written from Kingma & Ba's
// algorithm (bias-corrected moments, p −= lr·m̂/(√v̂+ε)), which equals
// torch's rearrangement up to rounding.
func TestAdam(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	p := []float32{0.5, -1, 2, 0}
	ref := []float64{0.5, -1, 2, 0}
	m, v := make([]float64, 4), make([]float64, 4)
	a := NewAdam(DefaultLR)
	for step := 1; step <= 20; step++ {
		g := make([]float32, 4)
		for i := range g {
			g[i] = float32(r.NormFloat64())
		}
		if err := a.Update(map[string][]float32{"p": p}, map[string][]float32{"p": g}); err != nil {
			t.Fatal(err)
		}
		for i := range ref {
			gi := float64(g[i])
			m[i] = Beta1*m[i] + (1-Beta1)*gi
			v[i] = Beta2*v[i] + (1-Beta2)*gi*gi
			mh := m[i] / (1 - math.Pow(Beta1, float64(step)))
			vh := v[i] / (1 - math.Pow(Beta2, float64(step)))
			ref[i] -= DefaultLR * mh / (math.Sqrt(vh) + AdamEps)
		}
	}
	for i := range p {
		if math.Abs(float64(p[i])-ref[i]) > 1e-6 {
			t.Errorf("p[%d] = %.8f, reference %.8f", i, p[i], ref[i])
		}
	}
	if a.Step != 20 {
		t.Errorf("step %d", a.Step)
	}
	// Bad gradients change nothing.
	before := append([]float32(nil), p...)
	for _, g := range []map[string][]float32{
		{"p": {1, float32(math.NaN()), 0, 0}},
		{"p": {1, 2}},
		{"q": {1, 2, 3, 4}},
	} {
		if err := a.Update(map[string][]float32{"p": p}, g); err == nil {
			t.Errorf("gradient %v accepted", g)
		}
	}
	if a.Step != 20 || p[0] != before[0] {
		t.Error("a refused update changed the state")
	}
}

func tinyPart(name string, in, out string) *pb.ModelProto {
	b := graph.New(graph.Float32)
	x := b.Input(in, graph.Float32, graph.N(2))
	b.Output(b.Add(x, b.Weight("w", []int{2}, []float32{1, 2})), out, graph.Float32, graph.N(2))
	return b.Model(name, nil)
}

// TestMerge joins two graphs that both name a weight "w": the prefixes
// keep them apart, a bound input reads the other part's output, and the
// linked output is no longer an output.
func TestMerge(t *testing.T) {
	a, b := tinyPart("a", "x", "y"), tinyPart("b", "x", "y")
	m, err := Merge("ab", Part{Model: a, Prefix: "a/", Bind: map[string]string{"x": "in"}},
		Part{Model: b, Prefix: "b/", Bind: map[string]string{"x": "a/y"}})
	if err != nil {
		t.Fatal(err)
	}
	g := m.GetGraph()
	var ins, outs, inits []string
	for _, v := range g.GetInput() {
		ins = append(ins, v.GetName())
	}
	for _, v := range g.GetOutput() {
		outs = append(outs, v.GetName())
	}
	for _, v := range g.GetInitializer() {
		inits = append(inits, v.GetName())
	}
	if strings.Join(ins, ",") != "in" || strings.Join(outs, ",") != "b/y" || strings.Join(inits, ",") != "a/w,b/w" {
		t.Errorf("inputs %v, outputs %v, initializers %v", ins, outs, inits)
	}
	for _, tc := range []struct {
		name  string
		parts []Part
		want  string
	}{
		{"no parts", nil, "no parts"},
		{"unknown bound name", []Part{{Model: a, Bind: map[string]string{"nope": "x"}}}, "not a graph input"},
		{"clash", []Part{{Model: a}, {Model: b}}, "also defined"},
		{"bound to an output", []Part{{Model: a, Prefix: "a/"}, {Model: b, Prefix: "b/", Bind: map[string]string{"x": "a/w"}}}, ""},
	} {
		_, err := Merge("bad", tc.parts...)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	c := tinyPart("c", "x", "y")
	c.OpsetImport[0].Version = 16
	if _, err := Merge("bad", Part{Model: a, Prefix: "a/"}, Part{Model: c, Prefix: "c/"}); err == nil || !strings.Contains(err.Error(), "opset") {
		t.Errorf("opset mismatch: %v", err)
	}
}
