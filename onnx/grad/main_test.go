package grad_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/grad"
	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
)

// rt is the one onnxruntime of the test binary: the runner keeps a
// process-wide environment, and reopening it per test would reload the
// library each time.
var rt *runner.Runtime

func TestMain(m *testing.M) {
	var err error
	rt, err = runner.Open(runner.Options{Device: "cpu", Threads: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "grad tests need onnxruntime (make setup):", err)
		os.Exit(1)
	}
	code := m.Run()
	rt.Close()
	os.Exit(code)
}

// empty is a model with no nodes at the builder's opset, to extend.
func empty(t testing.TB) *grad.Builder {
	t.Helper()
	b, err := grad.Extend(graph.New(graph.Float32).Model("test", nil))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// random returns n seeded values in [lo, hi).
func random(seed uint64, n int, lo, hi float64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return out
}

func size(shape []int64) int {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	return n
}

// weighted appends loss = Σ out⊙w with w a fed input of out's shape
// (dims as the case declares them, symbols included), and returns the
// model and the feed of w.
func weighted(t testing.TB, b *grad.Builder, out string, dims []graph.Dim, syms map[string]int64, seed uint64) (*pb.ModelProto, runner.Tensor) {
	t.Helper()
	w := b.Input("loss_w", graph.Float32, dims...)
	b.Output(b.Reshape(b.ReduceSum(b.Mul(out, w), false), 1), "loss")
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	shape := make([]int64, len(dims))
	for i, d := range dims {
		if d.Param != "" {
			shape[i] = syms[d.Param]
		} else {
			shape[i] = d.Size
		}
	}
	return m, runner.Tensor{Shape: shape, Float32: random(seed, size(shape), -1, 1)}
}

// run evaluates a float32 model in onnxruntime through the runner.
func run(t testing.TB, m *pb.ModelProto, feeds map[string]runner.Tensor) map[string]runner.Tensor {
	t.Helper()
	data, err := graph.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := rt.LoadBytes(context.Background(), m.GetGraph().GetName(), data, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.Run(context.Background(), feeds)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func countOps(m *pb.ModelProto) map[string]int {
	c := map[string]int{}
	for _, n := range m.GetGraph().GetNode() {
		c[n.GetOpType()]++
	}
	return c
}

func relNorm(a []float32, b []float64) float64 {
	var d, n float64
	for i := range a {
		d += (float64(a[i]) - b[i]) * (float64(a[i]) - b[i])
		n += b[i] * b[i]
	}
	if n == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / n)
}
