package grad_test

import (
	"context"
	"math"
	"testing"

	"github.com/dapobench/dapobench/onnx/grad"
	"github.com/dapobench/dapobench/onnx/gradcheck"
	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
)

var (
	n     = graph.N
	batch = graph.Sym("batch")
)

// opCase builds a small forward graph around one operation. Inputs are
// declared with in(...), which also makes their feeds; wrt lists the
// inputs to differentiate; dims is the output's shape for the loss
// weights.
type opCase struct {
	name  string
	syms  map[string]int64 // run-time sizes of symbolic dimensions; batch=2 by default
	build func(c *caseBuilder) (out string, dims []graph.Dim, wrt []string)
}

type caseBuilder struct {
	*grad.Builder
	feeds map[string]runner.Tensor
	syms  map[string]int64
	seed  uint64
}

// in declares a float input with values in [lo, hi).
func (c *caseBuilder) in(name string, lo, hi float64, dims ...graph.Dim) string {
	shape := c.shape(dims)
	c.seed++
	c.feeds[name] = runner.Tensor{Shape: shape, Float32: random(c.seed, size(shape), lo, hi)}
	return c.Input(name, graph.Float32, dims...)
}

// idx declares an int64 input.
func (c *caseBuilder) idx(name string, vals []int64, dims ...graph.Dim) string {
	c.feeds[name] = runner.Tensor{Shape: c.shape(dims), Int64: vals}
	return c.Input(name, graph.Int64, dims...)
}

func (c *caseBuilder) shape(dims []graph.Dim) []int64 {
	s := make([]int64, len(dims))
	for i, d := range dims {
		if d.Param != "" {
			s[i] = c.syms[d.Param]
		} else {
			s[i] = d.Size
		}
	}
	return s
}

// unaryCase applies f to x [batch, 3, 4]; out gives the result's shape
// when it is not x's.
func unaryCase(name string, lo, hi float64, f func(b *grad.Builder, x string) string, out ...graph.Dim) opCase {
	if out == nil {
		out = []graph.Dim{batch, n(3), n(4)}
	}
	return opCase{name: name, build: func(c *caseBuilder) (string, []graph.Dim, []string) {
		x := c.in("x", lo, hi, batch, n(3), n(4))
		return f(c.Builder, x), out, []string{"x"}
	}}
}

func opCases() []opCase {
	return []opCase{
		{name: "MatMul 2-D", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			a, w := c.in("a", -1, 1, n(3), n(4)), c.in("w", -1, 1, n(4), n(5))
			return c.MatMul(a, w), []graph.Dim{n(3), n(5)}, []string{"a", "w"}
		}},
		{name: "MatMul batch by matrix", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			a, w := c.in("a", -1, 1, batch, n(3), n(4)), c.in("w", -1, 1, n(4), n(5))
			return c.MatMul(a, w), []graph.Dim{batch, n(3), n(5)}, []string{"a", "w"}
		}},
		{name: "MatMul broadcast batch", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			a, w := c.in("a", -1, 1, batch, n(1), n(3), n(4)), c.in("w", -1, 1, n(2), n(4), n(5))
			return c.MatMul(a, w), []graph.Dim{batch, n(2), n(3), n(5)}, []string{"a", "w"}
		}},
		{name: "MatMul attention scores", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			q, k := c.in("q", -1, 1, batch, n(2), n(3), n(4)), c.in("k", -1, 1, batch, n(2), n(4), n(3))
			return c.MatMul(q, k), []graph.Dim{batch, n(2), n(3), n(3)}, []string{"q", "k"}
		}},
		{name: "MatMul vector by batch", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			v, m := c.in("v", -1, 1, n(4)), c.in("m", -1, 1, batch, n(4), n(5))
			return c.MatMul(v, m), []graph.Dim{batch, n(5)}, []string{"v", "m"}
		}},
		{name: "MatMul batch by vector", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			m, v := c.in("m", -1, 1, batch, n(3), n(4)), c.in("v", -1, 1, n(4))
			return c.MatMul(m, v), []graph.Dim{batch, n(3)}, []string{"m", "v"}
		}},
		{name: "MatMul vector by vector", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			v, u := c.in("v", -1, 1, n(4)), c.in("u", -1, 1, n(4))
			return c.Reshape(c.MatMul(v, u), 1), []graph.Dim{n(1)}, []string{"v", "u"}
		}},
		{name: "Add broadcast", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			a, b := c.in("a", -1, 1, batch, n(3), n(4)), c.in("b", -1, 1, n(4))
			return c.Add(a, b), []graph.Dim{batch, n(3), n(4)}, []string{"a", "b"}
		}},
		{name: "Add broadcast both ways", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			a, b := c.in("a", -1, 1, batch, n(1), n(4)), c.in("b", -1, 1, n(3), n(1))
			return c.Add(a, b), []graph.Dim{batch, n(3), n(4)}, []string{"a", "b"}
		}},
		{name: "Add symbolic sizes that broadcast at run time", syms: map[string]int64{"p": 1, "q": 3},
			build: func(c *caseBuilder) (string, []graph.Dim, []string) {
				a, b := c.in("a", -1, 1, graph.Sym("p"), n(2)), c.in("b", -1, 1, graph.Sym("q"), n(1))
				return c.Add(a, b), []graph.Dim{graph.Sym("q"), n(2)}, []string{"a", "b"}
			}},
		{name: "Sub broadcast", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			a, b := c.in("a", -1, 1, n(3), n(1)), c.in("b", -1, 1, batch, n(1), n(4))
			return c.Sub(a, b), []graph.Dim{batch, n(3), n(4)}, []string{"a", "b"}
		}},
		{name: "Mul broadcast", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			a, b := c.in("a", -1, 1, batch, n(3), n(4)), c.in("b", -1, 1, n(3), n(1))
			return c.Mul(a, b), []graph.Dim{batch, n(3), n(4)}, []string{"a", "b"}
		}},
		{name: "Div broadcast", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			a, b := c.in("a", -1, 1, batch, n(3), n(4)), c.in("b", 0.5, 1.5, n(4))
			return c.Div(a, b), []graph.Dim{batch, n(3), n(4)}, []string{"a", "b"}
		}},
		unaryCase("Pow constant exponent", 0.5, 1.5, func(b *grad.Builder, x string) string { return b.Pow(x, 2.5) }),
		{name: "Pow tensor exponent", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			a, p := c.in("a", 0.5, 1.5, batch, n(4)), c.in("p", 0.5, 2, n(4))
			return c.PowTensor(a, p), []graph.Dim{batch, n(4)}, []string{"a", "p"}
		}},
		unaryCase("Sigmoid", -2, 2, (*grad.Builder).Sigmoid),
		unaryCase("Erf", -2, 2, (*grad.Builder).Erf),
		unaryCase("Exp", -1, 1, (*grad.Builder).Exp),
		unaryCase("Log", 0.5, 1.5, (*grad.Builder).Log),
		unaryCase("Neg", -1, 1, (*grad.Builder).Neg),
		unaryCase("Sqrt", 0.5, 1.5, (*grad.Builder).Sqrt),
		unaryCase("Tanh", -1, 1, (*grad.Builder).Tanh),
		unaryCase("Reciprocal", 0.5, 1.5, (*grad.Builder).Reciprocal),
		unaryCase("Abs", -1, 1, (*grad.Builder).Abs),
		unaryCase("Relu", -1, 1, (*grad.Builder).Relu),
		unaryCase("Identity", -1, 1, (*grad.Builder).Identity),
		unaryCase("Cast through float16 and back", -1, 1, func(b *grad.Builder, x string) string {
			return b.Cast(b.Cast(x, graph.Float16), graph.Float32)
		}),
		unaryCase("Softmax last axis", -2, 2, func(b *grad.Builder, x string) string { return b.Softmax(x, -1) }),
		unaryCase("Softmax axis 1", -2, 2, func(b *grad.Builder, x string) string { return b.Softmax(x, 1) }),
		unaryCase("LogSoftmax axis 1", -2, 2, func(b *grad.Builder, x string) string { return b.LogSoftmax(x, 1) }),
		{name: "LayerNormalization", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			x := c.in("x", -2, 2, batch, n(3), n(8))
			s, o := c.in("scale", 0.5, 1.5, n(8)), c.in("bias", -1, 1, n(8))
			return c.LayerNorm(x, s, o, 1e-5), []graph.Dim{batch, n(3), n(8)}, []string{"x", "scale", "bias"}
		}},
		unaryCase("Transpose", -1, 1, func(b *grad.Builder, x string) string { return b.Transpose(x, 2, 0, 1) }, n(4), batch, n(3)),
		unaryCase("Reshape with 0 and -1", -1, 1, func(b *grad.Builder, x string) string {
			return b.Transpose(b.Reshape(x, 0, 2, -1), 0, 2, 1)
		}, batch, n(6), n(2)),
		unaryCase("Flatten", -1, 1, func(b *grad.Builder, x string) string { return b.Flatten(x, 1) }, batch, n(12)),
		unaryCase("Unsqueeze and Squeeze", -1, 1, func(b *grad.Builder, x string) string {
			return b.Mul(b.Unsqueeze(x, 1), b.Squeeze(b.Unsqueeze(x, 0, 3), 0))
		}, batch, n(3), n(3), n(4)),
		unaryCase("Slice middle", -1, 1, func(b *grad.Builder, x string) string { return b.Slice(x, 1, 1, 3) }, batch, n(2), n(4)),
		unaryCase("Slice negative start to end", -1, 1, func(b *grad.Builder, x string) string {
			return b.Slice(x, 2, -3, math.MaxInt64)
		}, batch, n(3), n(3)),
		unaryCase("Slice symbolic axis to end", -1, 1, func(b *grad.Builder, x string) string {
			return b.Slice(x, 0, 1, math.MaxInt64)
		}, n(1), n(3), n(4)),
		unaryCase("Slice symbolic axis bounded", -1, 1, func(b *grad.Builder, x string) string {
			return b.Slice(x, 0, 0, 1)
		}, n(1), n(3), n(4)),
		{name: "Concat", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			a, b := c.in("a", -1, 1, batch, n(2), n(4)), c.in("b", -1, 1, batch, n(3), n(4))
			return c.Concat(1, a, c.Mul(b, b), a), []graph.Dim{batch, n(7), n(4)}, []string{"a", "b"}
		}},
		{name: "Concat symbolic axis", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			a, b := c.in("a", -1, 1, batch, n(4)), c.in("b", -1, 1, n(2), n(4))
			return c.Concat(0, a, b, a), []graph.Dim{graph.Sym("rows"), n(4)}, []string{"a", "b"}
		}, syms: map[string]int64{"batch": 2, "rows": 6}},
		{name: "Gather repeated constant indices", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			p := c.in("p", -1, 1, n(5), n(4))
			return c.Gather(p, c.Ints(false, 1, 3, 1, -1), 0), []graph.Dim{n(4), n(4)}, []string{"p"}
		}},
		{name: "Gather 2-D indices inner axis", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			x := c.in("x", -1, 1, batch, n(5), n(3))
			return c.Gather(x, c.Reshape(c.Ints(false, 0, 4, 2, 2), 2, 2), 1), []graph.Dim{batch, n(2), n(2), n(3)}, []string{"x"}
		}},
		{name: "Gather scalar index", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			p := c.in("p", -1, 1, n(3), n(4), n(6))
			return c.Gather(p, c.Ints(true, 1), 0), []graph.Dim{n(4), n(6)}, []string{"p"}
		}},
		{name: "Gather run-time indices", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			x := c.in("x", -1, 1, n(6), n(3))
			i := c.idx("i", []int64{5, 0, 5}, n(3))
			return c.Gather(x, i, 0), []graph.Dim{n(3), n(3)}, []string{"x"}
		}},
		{name: "GatherElements", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			x := c.in("x", -1, 1, batch, n(6), n(4))
			i := c.idx("i", []int64{5, 5, 5, 5, 2, 2, 2, 2}, batch, n(1), n(4))
			return c.GatherElements(x, i, 1), []graph.Dim{batch, n(1), n(4)}, []string{"x"}
		}},
		{name: "Expand to a run-time shape", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			x := c.in("x", -1, 1, n(1), n(4))
			like := c.in("like", -1, 1, batch, n(2))
			shape := c.Concat(0, c.Slice(c.Shape(like), 0, 0, 1), c.Ints(false, 3, 4))
			return c.Expand(x, shape), []graph.Dim{batch, n(3), n(4)}, []string{"x"}
		}},
		{name: "Expand constant shape", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			x := c.in("x", -1, 1, n(3), n(1))
			return c.Expand(x, c.Ints(false, 2, 3, 5)), []graph.Dim{n(2), n(3), n(5)}, []string{"x"}
		}},
		unaryCase("ReduceSum one axis", -1, 1, func(b *grad.Builder, x string) string { return b.ReduceSum(x, false, 1) }, batch, n(4)),
		unaryCase("ReduceSum keep dims", -1, 1, func(b *grad.Builder, x string) string {
			return b.Add(x, b.ReduceSum(b.Mul(x, x), true, -1))
		}),
		unaryCase("ReduceSum all", -1, 1, func(b *grad.Builder, x string) string {
			return b.Mul(x, b.ReduceSum(b.Mul(x, x), false))
		}),
		unaryCase("ReduceMean symbolic axis", -1, 1, func(b *grad.Builder, x string) string {
			return b.Mul(x, b.ReduceMean(b.Mul(x, x), true, 0))
		}),
		unaryCase("ReduceMean two axes", -1, 1, func(b *grad.Builder, x string) string {
			return b.Mul(x, b.Unsqueeze(b.ReduceMean(b.Mul(x, x), false, 1, 2), 1, 2))
		}),
		unaryCase("Clip", -1, 1, func(b *grad.Builder, x string) string { return b.Clip(x, -0.5, 0.5) }),
		unaryCase("Clip lower bound only", -1, 1, func(b *grad.Builder, x string) string { return b.Clip(x, 0.1, math.Inf(1)) }),
		{name: "Max and Min", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			a, b := c.in("a", -1, 1, batch, n(4)), c.in("b", -1, 1, n(4))
			return c.Add(c.Max(a, b), c.Min(c.Mul(a, a), b)), []graph.Dim{batch, n(4)}, []string{"a", "b"}
		}},
		{name: "Where and Less", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			a, b := c.in("a", -1, 1, batch, n(4)), c.in("b", -1, 1, n(4))
			return c.Where(c.Less(a, b), c.Mul(a, a), b), []graph.Dim{batch, n(4)}, []string{"a", "b"}
		}},
		{name: "Sum broadcast", build: func(c *caseBuilder) (string, []graph.Dim, []string) {
			a, b, d := c.in("a", -1, 1, batch, n(3), n(4)), c.in("b", -1, 1, n(4)), c.in("d", -1, 1, n(3), n(1))
			return c.Sum(a, b, d), []graph.Dim{batch, n(3), n(4)}, []string{"a", "b", "d"}
		}},
		unaryCase("value used several times", -1, 1, func(b *grad.Builder, x string) string {
			return b.Add(b.Mul(x, x), b.MatMul(b.MatMul(b.Sigmoid(x), b.Transpose(x, 0, 2, 1)), x))
		}),
		unaryCase("QuickGELU", -2, 2, func(b *grad.Builder, x string) string {
			return b.Mul(x, b.Sigmoid(b.Mul(x, b.Scalar(x, 1.702))))
		}),
		unaryCase("GELU", -2, 2, func(b *grad.Builder, x string) string {
			return b.Mul(b.Mul(x, b.Scalar(x, 0.5)), b.Add(b.Erf(b.Mul(x, b.Scalar(x, 1/math.Sqrt2))), b.Scalar(x, 1)))
		}),
	}
}

// TestOps checks every operation's gradient against central finite
// differences in double, and the float32 backward model (run through the
// runner, as training runs it) against the double gradient.
func TestOps(t *testing.T) {
	for i, tc := range opCases() {
		t.Run(tc.name, func(t *testing.T) {
			syms := tc.syms
			if syms == nil {
				syms = map[string]int64{"batch": 2}
			}
			c := &caseBuilder{Builder: empty(t), feeds: map[string]runner.Tensor{}, syms: syms, seed: uint64(100 * i)}
			out, dims, wrt := tc.build(c)
			m, w := weighted(t, c.Builder, out, dims, syms, uint64(i))
			c.feeds["loss_w"] = w

			res, err := gradcheck.Check(context.Background(), rt, m, "loss", wrt, c.feeds, gradcheck.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				t.Log(r)
				if r.Checked == 0 || r.MaxRelErr > 1e-3 || math.IsNaN(r.MaxRelErr) {
					t.Errorf("%s: max relative error %.3g > 1e-3", r.Input, r.MaxRelErr)
				}
			}

			// float32, through the runner.
			_, want, err := gradcheck.Gradients(rt, m, "loss", wrt, c.feeds)
			if err != nil {
				t.Fatal(err)
			}
			bwd, err := grad.Backward(m, "loss", wrt, grad.Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := run(t, bwd, c.feeds)
			for _, x := range wrt {
				g := got["grad_"+x]
				if len(g.Float32) != len(want[x]) {
					t.Fatalf("grad_%s: %d values, want %d", x, len(g.Float32), len(want[x]))
				}
				if e := relNorm(g.Float32, want[x]); e > 1e-3 {
					t.Errorf("grad_%s: float32 gradient differs from float64 by %.3g (relative, 2-norm)", x, e)
				}
			}
		})
	}
}
