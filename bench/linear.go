package bench

import (
	"context"
	"fmt"

	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Linear computes y = x·W + b in onnxruntime. Schemes use it for learned
// heads that are not part of the frozen image tower (DAPO's four patch
// adapters, 1024→768 on 1369 tokens per layer): onnxruntime's GEMM is an
// order of magnitude faster than a Go loop, and runs on the GPU where the
// image tower does. W and b are inputs, so one graph serves every layer
// and checkpoint.
type Linear struct {
	sess    *runner.Session
	in, out int
	w, b    runner.Tensor
}

// NewLinear builds the graph for weight w [out, in] (PyTorch's nn.Linear
// layout) and bias [out].
func NewLinear(ctx context.Context, rt *runner.Runtime, w []float32, bias []float32, in, out int) (*Linear, error) {
	if len(w) != in*out || len(bias) != out {
		return nil, fmt.Errorf("bench: linear %d→%d: weight has %d values, bias %d", in, out, len(w), len(bias))
	}
	g := graph.New(graph.Float32)
	x := g.Input("x", graph.Float32, graph.Sym("n"), graph.N(in))
	wt := g.Input("w", graph.Float32, graph.N(in), graph.N(out))
	bb := g.Input("b", graph.Float32, graph.N(out))
	g.Output(g.Add(g.MatMul(x, wt), bb), "y", graph.Float32, graph.Sym("n"), graph.N(out))
	data, err := graph.Marshal(g.Model("linear", nil))
	if err != nil {
		return nil, err
	}
	sess, err := rt.LoadBytes(ctx, fmt.Sprintf("linear %d→%d", in, out), data, "")
	if err != nil {
		return nil, err
	}
	// Transpose once: the graph multiplies x [n, in] by W [in, out].
	wt32 := make([]float32, in*out)
	for o := range out {
		for i := range in {
			wt32[i*out+o] = w[o*in+i]
		}
	}
	return &Linear{
		sess: sess, in: in, out: out,
		w: runner.Tensor{Shape: []int64{int64(in), int64(out)}, Float32: wt32},
		b: runner.Tensor{Shape: []int64{int64(out)}, Float32: append([]float32(nil), bias...)},
	}, nil
}

// Apply returns x·W + b for x [n, in], as [n, out].
func (l *Linear) Apply(ctx context.Context, x []float32) ([]float32, error) {
	if len(x)%l.in != 0 || len(x) == 0 {
		return nil, fmt.Errorf("bench: linear: %d inputs are not rows of %d", len(x), l.in)
	}
	n := int64(len(x) / l.in)
	out, err := l.sess.Run(ctx, map[string]runner.Tensor{
		"x": {Shape: []int64{n, int64(l.in)}, Float32: x},
		"w": l.w,
		"b": l.b,
	})
	if err != nil {
		return nil, err
	}
	return out["y"].Float32, nil
}

// Close releases the session.
func (l *Linear) Close() error { return l.sess.Close() }
