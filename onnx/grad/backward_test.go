package grad_test

import (
	"context"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/grad"
	"github.com/dapobench/dapobench/onnx/gradcheck"
	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
)

// frozenModel has a learnable input x, a fed but frozen input c and
// frozen weights; only x's path needs gradient nodes:
//
//	h = x·W, s = sigmoid(h), z = sigmoid(c·V), u = exp(c·U)
//	loss = Σ s⊙z + Σ u, other = sigmoid(x) (an output the loss ignores)
func frozenModel(t testing.TB) *pb.ModelProto {
	t.Helper()
	g := graph.New(graph.Float32)
	x := g.Input("x", graph.Float32, graph.Sym("batch"), graph.N(4))
	c := g.Input("c", graph.Float32, graph.Sym("batch"), graph.N(4))
	w := g.Weight("W", []int{4, 4}, random(1, 16, -1, 1))
	v := g.Weight("V", []int{4, 4}, random(2, 16, -1, 1))
	u := g.Weight("U", []int{4, 4}, random(3, 16, -1, 1))
	s := g.Sigmoid(g.MatMul(x, w))
	z := g.Sigmoid(g.MatMul(c, v))
	g.Output(g.Sigmoid(x), "other", graph.Float32, graph.Sym("batch"), graph.N(4))
	m := g.Model("frozen", nil)
	b, err := grad.Extend(m)
	if err != nil {
		t.Fatal(err)
	}
	loss := b.Add(b.ReduceSum(b.Mul(s, z), false), b.ReduceSum(b.Exp(b.MatMul(c, u)), false))
	b.Output(b.Reshape(loss, 1), "loss")
	out, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	// Name the intermediate values for the test.
	for _, n := range out.GetGraph().GetNode() {
		switch {
		case n.GetOutput()[0] == s:
			n.Output[0] = "s"
			retarget(out, s, "s")
		case n.GetOutput()[0] == z:
			n.Output[0] = "z"
			retarget(out, z, "z")
		}
	}
	return out
}

func retarget(m *pb.ModelProto, from, to string) {
	for _, n := range m.GetGraph().GetNode() {
		for i, in := range n.GetInput() {
			if in == from {
				n.Input[i] = to
			}
		}
	}
}

func TestFrozenPathsGetNoNodes(t *testing.T) {
	fwd := frozenModel(t)
	bwd, err := grad.Backward(fwd, "loss", []string{"x"}, grad.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var outs []string
	for _, o := range bwd.GetGraph().GetOutput() {
		outs = append(outs, o.GetName())
	}
	if !slices.Equal(outs, []string{"loss", "grad_x"}) {
		t.Errorf("outputs %v, want [loss grad_x]: no gradient for c or the weights, no unused forward output", outs)
	}
	added := map[string]int{}
	for _, n := range bwd.GetGraph().GetNode() {
		if strings.HasPrefix(n.GetName(), grad.GradPrefix) {
			added[n.GetOpType()]++
		}
	}
	// Reshape (loss), Expand (ReduceSum) to [batch, 4] read off x's shape
	// (Shape, Slice, Concat), Mul (g⊙z), Mul+Sub+Mul (sigmoid'), Gemm
	// (g·Wᵀ), Identity (the output): nothing for the c branches, nothing
	// for W, V, U.
	want := map[string]int{"Reshape": 1, "Expand": 1, "Shape": 1, "Slice": 1, "Concat": 1,
		"Mul": 3, "Sub": 1, "Gemm": 1, "Identity": 1}
	if !maps.Equal(added, want) {
		t.Errorf("backward nodes %v, want %v", added, want)
	}
	fw := countOps(fwd)
	all := countOps(bwd)
	if all["Sigmoid"] != fw["Sigmoid"]-1 {
		t.Errorf("forward nodes no output needs are still there: %v", all)
	}
	st, err := grad.Analyze(bwd, map[string]int64{"batch": 8})
	if err != nil {
		t.Fatal(err)
	}
	// z for g⊙z, s for sigmoid' = s(1−s); not x·W, not x, not c·V.
	if !slices.Equal(st.Saved, []string{"s", "z"}) || st.SavedBytes != 2*8*4*4 {
		t.Errorf("saved activations %v (%d bytes), want [s z] (256 bytes)", st.Saved, st.SavedBytes)
	}
	if st.BackwardNodes != 11 || st.ForwardNodes != len(bwd.GetGraph().GetNode())-11 {
		t.Errorf("stats %+v", st)
	}

	// The pruned gradient is still right.
	feeds := map[string]runner.Tensor{
		"x": {Shape: []int64{3, 4}, Float32: random(5, 12, -1, 1)},
		"c": {Shape: []int64{3, 4}, Float32: random(6, 12, -1, 1)},
	}
	res, err := gradcheck.Check(context.Background(), rt, fwd, "loss", []string{"x"}, feeds, gradcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].MaxRelErr > 1e-3 {
		t.Errorf("%v", res[0])
	}
}

// TestUnusedInputGetsZeros: a wrt input the loss does not depend on has
// a zero gradient of its shape, not a missing output.
func TestUnusedInputGetsZeros(t *testing.T) {
	b := empty(t)
	x := b.Input("x", graph.Float32, graph.Sym("batch"), graph.N(3))
	b.Input("unused", graph.Float32, graph.Sym("batch"), graph.N(2))
	b.Output(b.Reshape(b.ReduceSum(b.Mul(x, x), false), 1), "loss")
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	bwd, err := grad.Backward(m, "loss", []string{"x", "unused"}, grad.Options{GradName: func(s string) string { return "d_" + s }})
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, bwd, map[string]runner.Tensor{
		"x":      {Shape: []int64{2, 3}, Float32: []float32{1, 2, 3, 4, 5, 6}},
		"unused": {Shape: []int64{2, 2}, Float32: []float32{1, 1, 1, 1}},
	})
	if g := out["d_x"].Float32; !slices.Equal(g, []float32{2, 4, 6, 8, 10, 12}) {
		t.Errorf("d_x = %v", g)
	}
	if g := out["d_unused"]; !slices.Equal(g.Shape, []int64{2, 2}) || !slices.Equal(g.Float32, []float32{0, 0, 0, 0}) {
		t.Errorf("d_unused = %v", g)
	}
	if out["loss"].Float32[0] != 91 {
		t.Errorf("loss = %v, want 91", out["loss"].Float32)
	}
}

func TestKeep(t *testing.T) {
	b := empty(t)
	x := b.Input("x", graph.Float32, graph.N(3))
	sq := b.ReduceSum(b.Mul(x, x), true)
	b.Output(b.Add(sq, b.ReduceSum(x, true)), "loss")
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	bwd, err := grad.Backward(m, "loss", []string{"x"}, grad.Options{Keep: []string{sq}})
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, bwd, map[string]runner.Tensor{"x": {Shape: []int64{3}, Float32: []float32{1, 2, 3}}})
	if got := out[sq].Float32; !slices.Equal(got, []float32{14}) {
		t.Errorf("kept %s = %v, want [14]", sq, got)
	}
	if got := out["grad_x"].Float32; !slices.Equal(got, []float32{3, 5, 7}) {
		t.Errorf("grad_x = %v, want [3 5 7]", got)
	}
}

// TestErfDouble checks the double erf of the float64 mode against
// math.Erf, through onnxruntime.
func TestErfDouble(t *testing.T) {
	b := empty(t)
	x := b.Input("x", graph.Float32, graph.N(401))
	w := b.Input("w", graph.Float32, graph.N(401))
	b.Output(b.Reshape(b.ReduceSum(b.Mul(b.Erf(x), w), false), 1), "loss")
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	xs, ws := make([]float32, 401), make([]float32, 401)
	for i := range xs {
		xs[i] = float32(-10 + 0.05*float64(i))
	}
	for k := range 401 { // one element at a time through the weights
		if k%20 != 0 {
			continue
		}
		clear(ws)
		ws[k] = 1
		got, _, err := gradcheck.Gradients(rt, m, "loss", []string{"x"}, map[string]runner.Tensor{
			"x": {Shape: []int64{401}, Float32: xs}, "w": {Shape: []int64{401}, Float32: ws}})
		if err != nil {
			t.Fatal(err)
		}
		if want := math.Erf(float64(xs[k])); math.Abs(got-want) > 1e-14 {
			t.Errorf("erf(%g) = %.17g, want %.17g", xs[k], got, want)
		}
	}
}

func TestErrors(t *testing.T) {
	base := func(t *testing.T) (*grad.Builder, string) {
		b := empty(t)
		x := b.Input("x", graph.Float32, graph.Sym("batch"), graph.N(3))
		b.Input("i", graph.Int64, graph.N(2))
		return b, x
	}
	scalar := func(b *grad.Builder, v string) {
		b.Output(b.Reshape(b.ReduceSum(v, false), 1), "loss")
	}
	for _, tc := range []struct {
		name  string
		build func(t *testing.T) *pb.ModelProto
		loss  string
		wrt   []string
		opts  grad.Options
		want  string
	}{
		{name: "unsupported operation on the path", build: func(t *testing.T) *pb.ModelProto {
			b, x := base(t)
			scalar(b, x)
			m, _ := b.Model()
			addNode(m, "Sin", "x", "sin_x", true)
			return m
		}, loss: "loss", wrt: []string{"x"}, want: `no gradient rule for operation Sin`},
		{name: "non-scalar loss", build: func(t *testing.T) *pb.ModelProto {
			b, x := base(t)
			b.Output(b.Mul(x, x), "loss")
			m, _ := b.Model()
			return m
		}, loss: "loss", wrt: []string{"x"}, want: `want a scalar`},
		{name: "loss of unknown shape", build: func(t *testing.T) *pb.ModelProto {
			b, x := base(t)
			b.Output(b.ReduceSum(x, false, 0), "loss")
			m, _ := b.Model()
			return m
		}, loss: "loss", wrt: []string{"x"}, want: `has shape [3], want a scalar`},
		{name: "loss not an output", build: func(t *testing.T) *pb.ModelProto {
			b, x := base(t)
			scalar(b, x)
			m, _ := b.Model()
			return m
		}, loss: "nope", wrt: []string{"x"}, want: `loss "nope" is not a graph output`},
		{name: "integer loss", build: func(t *testing.T) *pb.ModelProto {
			b, _ := base(t)
			b.Output(b.Reshape(b.ReduceSum("i", false), 1), "loss")
			m, _ := b.Model()
			return m
		}, loss: "loss", wrt: []string{"x"}, want: `element type INT64, want a float type`},
		{name: "wrt a frozen weight", build: func(t *testing.T) *pb.ModelProto {
			g := graph.New(graph.Float32)
			x := g.Input("x", graph.Float32, graph.N(3))
			w := g.Weight("W", []int{3}, []float32{1, 2, 3})
			l := g.Reshape(g.MatMul(x, w), 1)
			g.Output(l, "loss", graph.Float32, graph.N(1))
			return g.Model("m", nil)
		}, loss: "loss", wrt: []string{"W"}, want: `"W" is an initializer (a frozen weight)`},
		{name: "wrt not an input", build: func(t *testing.T) *pb.ModelProto {
			b, x := base(t)
			scalar(b, x)
			m, _ := b.Model()
			return m
		}, loss: "loss", wrt: []string{"y"}, want: `"y" is not a graph input`},
		{name: "wrt an integer input", build: func(t *testing.T) *pb.ModelProto {
			b, x := base(t)
			scalar(b, x)
			m, _ := b.Model()
			return m
		}, loss: "loss", wrt: []string{"i"}, want: `only float inputs have gradients`},
		{name: "wrt twice", build: func(t *testing.T) *pb.ModelProto {
			b, x := base(t)
			scalar(b, x)
			m, _ := b.Model()
			return m
		}, loss: "loss", wrt: []string{"x", "x"}, want: `listed twice`},
		{name: "no wrt", build: func(t *testing.T) *pb.ModelProto {
			b, x := base(t)
			scalar(b, x)
			m, _ := b.Model()
			return m
		}, loss: "loss", want: `no inputs to differentiate`},
		{name: "gradient name taken", build: func(t *testing.T) *pb.ModelProto {
			b, x := base(t)
			scalar(b, x)
			m, _ := b.Model()
			return m
		}, loss: "loss", wrt: []string{"x"}, opts: grad.Options{GradName: func(string) string { return "loss" }}, want: `already taken`},
		{name: "kept value unknown", build: func(t *testing.T) *pb.ModelProto {
			b, x := base(t)
			scalar(b, x)
			m, _ := b.Model()
			return m
		}, loss: "loss", wrt: []string{"x"}, opts: grad.Options{Keep: []string{"nope"}}, want: `kept value "nope"`},
		{name: "Slice with run-time bounds", build: func(t *testing.T) *pb.ModelProto {
			b, x := base(t)
			s := b.Slice(x, 1, 0, 2)
			scalar(b, s)
			m, _ := b.Model()
			for _, n := range m.GetGraph().GetNode() {
				if n.GetOpType() == "Slice" {
					n.Input[1] = "i"
					n.Input[2] = "i"
					n.Input[3] = ""
				}
			}
			return m
		}, loss: "loss", wrt: []string{"x"}, want: `Slice with bounds that are not constants`},
		{name: "old opset", build: func(t *testing.T) *pb.ModelProto {
			b, x := base(t)
			scalar(b, x)
			m, _ := b.Model()
			m.OpsetImport[0].Version = 13
			return m
		}, loss: "loss", wrt: []string{"x"}, want: `opset 13: supported are 16 to 21`},
		{name: "no graph", build: func(t *testing.T) *pb.ModelProto { return &pb.ModelProto{} },
			loss: "loss", wrt: []string{"x"}, want: `no model graph`},
		{name: "undefined value", build: func(t *testing.T) *pb.ModelProto {
			b, x := base(t)
			scalar(b, x)
			m, _ := b.Model()
			addNode(m, "Neg", "ghost", "neg", false)
			return m
		}, loss: "loss", wrt: []string{"x"}, want: `reads "ghost", which nothing defines`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := grad.Backward(tc.build(t), tc.loss, tc.wrt, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// An operation without a gradient rule is fine off the path.
func TestUnsupportedOperationOffPath(t *testing.T) {
	b := empty(t)
	x := b.Input("x", graph.Float32, graph.N(3))
	c := b.Input("c", graph.Float32, graph.N(3))
	b.Output(b.Reshape(b.ReduceSum(b.Mul(x, c), false), 1), "loss")
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	addNode(m, "Sin", "c", "sin_c", true) // c's branch is frozen
	if _, err := grad.Backward(m, "loss", []string{"x"}, grad.Options{}); err != nil {
		t.Fatal(err)
	}
}

// addNode inserts op(in) → out. With onPath, out replaces in as the input
// of the nodes that read in (after the new node).
func addNode(m *pb.ModelProto, op, in, out string, onPath bool) {
	g := m.GetGraph()
	if onPath {
		for _, n := range g.GetNode() {
			for i, v := range n.GetInput() {
				if v == in {
					n.Input[i] = out
				}
			}
		}
	}
	g.Node = append([]*pb.NodeProto{{OpType: op, Name: "my" + op, Input: []string{in}, Output: []string{out}}}, g.Node...)
}

func TestBuilderErrors(t *testing.T) {
	b := empty(t)
	x := b.Input("x", graph.Float32, graph.N(3))
	y := b.Input("y", graph.Float32, graph.N(4))
	b.Add(x, y)
	if _, err := b.Model(); err == nil || !strings.Contains(err.Error(), "cannot broadcast dimension 3 with 4") {
		t.Errorf("error %v, want a broadcast error", err)
	}
	b = empty(t)
	b.Neg("nothing")
	if err := b.Err(); err == nil || !strings.Contains(err.Error(), `input "nothing" is not defined`) {
		t.Errorf("error %v", err)
	}
	b = empty(t)
	b.Input("x", graph.Float32)
	b.Input("x", graph.Float32)
	if err := b.Err(); err == nil || !strings.Contains(err.Error(), `input "x": the name is taken`) {
		t.Errorf("error %v", err)
	}
	if _, err := grad.Extend(nil); err == nil {
		t.Error("Extend(nil): no error")
	}
}
