package gradcheck_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/grad"
	"github.com/dapobench/dapobench/onnx/gradcheck"
	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
)

var rt *runner.Runtime

func TestMain(m *testing.M) {
	var err error
	rt, err = runner.Open(runner.Options{Device: "cpu", Threads: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gradcheck tests need onnxruntime (make setup):", err)
		os.Exit(1)
	}
	code := m.Run()
	rt.Close()
	os.Exit(code)
}

// model builds loss = Σ f(x) for x [3], with the loss of shape [] or [1].
func model(t *testing.T, f func(b *grad.Builder, x string) string, rank0 bool) *pb.ModelProto {
	t.Helper()
	b, err := grad.Extend(graph.New(graph.Float32).Model("m", nil))
	if err != nil {
		t.Fatal(err)
	}
	x := b.Input("x", graph.Float32, graph.N(3))
	l := b.ReduceSum(f(b, x), false)
	if !rank0 {
		l = b.Reshape(l, 1)
	}
	b.Output(l, "loss")
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCheck(t *testing.T) {
	feeds := map[string]runner.Tensor{"x": {Shape: []int64{3}, Float32: []float32{0.5, -1, 2}}}
	for _, rank0 := range []bool{false, true} {
		m := model(t, func(b *grad.Builder, x string) string { return b.Mul(b.Mul(x, x), x) }, rank0)
		res, err := gradcheck.Check(context.Background(), rt, m, "loss", []string{"x"}, feeds, gradcheck.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || res[0].Checked != 3 || res[0].MaxRelErr > 1e-8 {
			t.Errorf("rank0=%v: %v", rank0, res)
		}
		loss, g, err := gradcheck.Gradients(rt, m, "loss", []string{"x"}, feeds)
		if err != nil {
			t.Fatal(err)
		}
		if loss != 0.125-1+8 || g["x"][0] != 0.75 || g["x"][1] != 3 || g["x"][2] != 12 {
			t.Errorf("rank0=%v: loss %v, gradient %v", rank0, loss, g["x"])
		}
	}
}

// TestCheckFindsMismatch: at a kink the one-sided slopes differ and the
// check must say so. Relu at 0 has gradient 0 by convention; the central
// difference sees ½.
func TestCheckFindsMismatch(t *testing.T) {
	m := model(t, func(b *grad.Builder, x string) string { return b.Relu(x) }, false)
	feeds := map[string]runner.Tensor{"x": {Shape: []int64{3}, Float32: []float32{0, 1, -1}}}
	res, err := gradcheck.Check(context.Background(), rt, m, "loss", []string{"x"}, feeds, gradcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if r.Worst != 0 || r.MaxRelErr != 1 || r.Analytic != 0 || math.Abs(r.Numeric-0.5) > 1e-9 {
		t.Errorf("%v: want element 0 flagged (backward 0, finite difference 0.5)", r)
	}
}

func TestCheckSample(t *testing.T) {
	b, err := grad.Extend(graph.New(graph.Float32).Model("m", nil))
	if err != nil {
		t.Fatal(err)
	}
	x := b.Input("x", graph.Float32, graph.N(100))
	b.Output(b.Reshape(b.ReduceSum(b.Exp(x), false), 1), "loss")
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	feeds := map[string]runner.Tensor{"x": {Shape: []int64{100}, Float32: make([]float32, 100)}}
	res, err := gradcheck.Check(context.Background(), rt, m, "loss", []string{"x"}, feeds, gradcheck.Options{MaxPerInput: 7, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Checked != 7 || res[0].MaxRelErr > 1e-8 {
		t.Errorf("%v", res[0])
	}
}

func TestCheckErrors(t *testing.T) {
	m := model(t, func(b *grad.Builder, x string) string { return b.Exp(x) }, false)
	ok := map[string]runner.Tensor{"x": {Shape: []int64{3}, Float32: []float32{1, 2, 3}}}
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"no runtime", func() error {
			_, err := gradcheck.Check(ctx, nil, m, "loss", []string{"x"}, ok, gradcheck.Options{})
			return err
		}, "no runtime"},
		{"missing feed", func() error {
			_, err := gradcheck.Check(ctx, rt, m, "loss", []string{"x"}, nil, gradcheck.Options{})
			return err
		}, `no feed for input "x"`},
		{"unknown feed", func() error {
			f := map[string]runner.Tensor{"x": ok["x"], "y": ok["x"]}
			_, err := gradcheck.Check(ctx, rt, m, "loss", []string{"x"}, f, gradcheck.Options{})
			return err
		}, `feed "y" is not a graph input`},
		{"wrong feed type", func() error {
			f := map[string]runner.Tensor{"x": {Shape: []int64{3}, Int64: []int64{1, 2, 3}}}
			_, err := gradcheck.Check(ctx, rt, m, "loss", []string{"x"}, f, gradcheck.Options{})
			return err
		}, `does not match the input's element type`},
		{"negative option", func() error {
			_, err := gradcheck.Check(ctx, rt, m, "loss", []string{"x"}, ok, gradcheck.Options{Step: -1})
			return err
		}, "negative option"},
		{"bad loss", func() error {
			_, err := gradcheck.Check(ctx, rt, m, "nope", []string{"x"}, ok, gradcheck.Options{})
			return err
		}, `loss "nope" is not a graph output`},
		{"cancelled", func() error {
			_, err := gradcheck.Check(cancelled, rt, m, "loss", []string{"x"}, ok, gradcheck.Options{})
			return err
		}, "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
