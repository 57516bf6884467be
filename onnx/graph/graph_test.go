package graph_test

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
)

func run(t *testing.T, b *graph.Builder, in map[string]runner.Tensor, external bool) (map[string]runner.Tensor, error) {
	t.Helper()
	rt, err := runner.Open(runner.Options{Device: "cpu", Threads: 1})
	if err != nil {
		t.Fatalf("onnxruntime is needed (make setup): %v", err)
	}
	defer rt.Close()
	path := filepath.Join(t.TempDir(), "g.onnx")
	if err := graph.WriteFile(path, b.Model("test", nil), external); err != nil {
		t.Fatal(err)
	}
	s, err := rt.Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return s.Run(context.Background(), in)
}

// TestOps checks each operation against values computed here by hand.
func TestOps(t *testing.T) {
	b := graph.New(graph.Float32)
	x := b.Input("x", graph.Float32, graph.Sym("n"), graph.N(3))
	idx := b.Input("idx", graph.Int64, graph.Sym("n"))
	sm := b.Softmax(x, -1)
	b.Output(sm, "softmax", graph.Float32, graph.Sym("n"), graph.N(3))
	ln := b.LayerNorm(x, b.Const([]int{3}, 1, 2, 3), b.Const([]int{3}, 0, 0, 1), 1e-5)
	b.Output(ln, "ln", graph.Float32, graph.Sym("n"), graph.N(3))
	lin := b.Add(b.MatMul(x, b.Weight("w", []int{3, 2}, []float32{1, 0, 0, 1, 1, 1})), b.Scalar(0.5))
	b.Output(lin, "linear", graph.Float32, graph.Sym("n"), graph.N(2))
	g := b.Reshape(b.GatherElements(x, b.Reshape(idx, -1, 1), 1), -1)
	b.Output(g, "picked", graph.Float32, graph.Sym("n"))
	cat := b.Concat(1, b.Slice(x, 1, 2, 3), b.Slice(x, 1, 0, 1))
	b.Output(b.Transpose(cat, 1, 0), "swapped", graph.Float32, graph.N(2), graph.Sym("n"))
	fp := b.Cast(b.Cast(x, graph.Float16), graph.Float32)
	b.Output(fp, "half", graph.Float32, graph.Sym("n"), graph.N(3))
	e := b.Expand(b.Const([]int{1, 3}, 7, 8, 9), b.Concat(0, b.Slice(b.Shape(x), 0, 0, 1), b.Ints(false, 3)))
	b.Output(b.Sub(b.Div(b.Mul(e, b.Scalar(2)), b.Scalar(2)), b.Sigmoid(b.Erf(x))), "misc", graph.Float32, graph.Sym("n"), graph.N(3))

	xs := []float32{1, 2, 3, -1, 0, 1.0001}
	out, err := run(t, b, map[string]runner.Tensor{
		"x":   {Shape: []int64{2, 3}, Float32: xs},
		"idx": {Shape: []int64{2}, Int64: []int64{2, 0}},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	near := func(name string, got []float32, want []float64) {
		t.Helper()
		for i := range want {
			if math.Abs(float64(got[i])-want[i]) > 1e-5 {
				t.Errorf("%s = %v, want %v", name, got, want)
				return
			}
		}
	}
	e1 := []float64{math.Exp(1), math.Exp(2), math.Exp(3)}
	s := e1[0] + e1[1] + e1[2]
	near("softmax", out["softmax"].Float32[:3], []float64{e1[0] / s, e1[1] / s, e1[2] / s})
	sd := math.Sqrt(2.0/3 + 1e-5)
	near("ln", out["ln"].Float32[:3], []float64{-1 / sd, 0, 3/sd + 1})
	near("linear", out["linear"].Float32, []float64{1 + 3 + 0.5, 2 + 3 + 0.5, -1 + 1.0001 + 0.5, 0 + 1.0001 + 0.5})
	near("picked", out["picked"].Float32, []float64{3, -1})
	near("swapped", out["swapped"].Float32, []float64{3, 1.0001, 1, -1})
	near("half", out["half"].Float32, []float64{1, 2, 3, -1, 0, 1}) // 1.0001 rounds to 1 in float16
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-math.Erf(v))) }
	near("misc", out["misc"].Float32, []float64{7 - sig(1), 8 - sig(2), 9 - sig(3), 7 - sig(-1), 8 - sig(0), 9 - sig(1.0001)})

	// an out-of-range gather index is a run-time error, not a silent zero
	_, err = run(t, b, map[string]runner.Tensor{
		"x":   {Shape: []int64{1, 3}, Float32: xs[:3]},
		"idx": {Shape: []int64{1}, Int64: []int64{5}},
	}, false)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "index") {
		t.Errorf("out-of-range index: %v", err)
	}
}

func TestMarshalDeterministic(t *testing.T) {
	build := func() []byte {
		b := graph.New(graph.Float16)
		x := b.In(b.Input("x", graph.Float32, graph.N(2)))
		b.Output(b.Out(b.Add(x, b.Const([]int{2}, 1, 2))), "y", graph.Float32, graph.N(2))
		m := b.Model("g", [][2]string{{"k", "v"}, {"a", "b"}})
		data, err := graph.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if string(build()) != string(build()) {
		t.Error("Marshal is not deterministic")
	}
}

// TestStreamTo checks that a builder streaming its initializers writes the
// same model and external-data bytes as WriteFile(external) of the same
// graph held in memory, in float32 and float16, small tensors inline.
func TestStreamTo(t *testing.T) {
	build := func(b *graph.Builder) {
		x := b.In(b.Input("x", graph.Float32, graph.Sym("n"), graph.N(700)))
		w := make([]float32, 700*300)
		for i := range w {
			w[i] = float32(math.Sin(float64(i)))
		}
		y := b.MatMul(x, b.Weight("w", []int{700, 300}, w))
		y = b.Add(y, b.Weight("bias", []int{3}, []float32{1, 2, 3})) // small: inline
		ids := make([]int64, 200)
		for i := range ids {
			ids[i] = int64(i % 300)
		}
		y = b.Gather(y, b.Ints(false, ids...), 1)
		b.Output(b.Out(y), "y", graph.Float32, graph.Sym("n"), graph.N(200))
	}
	for _, dt := range []graph.DType{graph.Float32, graph.Float16} {
		dir := t.TempDir()
		held := graph.New(dt)
		build(held)
		if err := graph.WriteFile(filepath.Join(dir, "held.onnx"), held.Model("m", nil), true); err != nil {
			t.Fatal(err)
		}
		var data bytes.Buffer
		streamed := graph.New(dt)
		x := graph.NewExternal(&data, "held.onnx.data")
		streamed.StreamTo(x)
		build(streamed)
		if x.Err() != nil {
			t.Fatal(x.Err())
		}
		if err := graph.WriteFile(filepath.Join(dir, "streamed.onnx"), streamed.Model("m", nil), false); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			held string
			got  []byte
		}{{"held.onnx", read(t, filepath.Join(dir, "streamed.onnx"))}, {"held.onnx.data", data.Bytes()}} {
			if want := read(t, filepath.Join(dir, c.held)); !bytes.Equal(c.got, want) {
				t.Errorf("%v: streamed %s differs (%d bytes, want %d)", dt, c.held, len(c.got), len(want))
			}
		}
	}
}

func read(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
