package grad_test

import (
	"context"
	"flag"
	"fmt"
	"math"
	"slices"
	"testing"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/grad"
	"github.com/dapobench/dapobench/onnx/gradcheck"
	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
)

// The block-stack size; the defaults keep `go test -bench` quick, and
// -grad.width=768 -grad.layers=12 -grad.heads=12 -grad.tokens=197
// -grad.batch=8 is ViT-B/16 at 224 px.
var (
	benchWidth  = flag.Int("grad.width", 64, "block-stack benchmark: width")
	benchLayers = flag.Int("grad.layers", 4, "block-stack benchmark: blocks")
	benchHeads  = flag.Int("grad.heads", 4, "block-stack benchmark: attention heads")
	benchTokens = flag.Int("grad.tokens", 50, "block-stack benchmark: tokens per example (CLS included)")
	benchBatch  = flag.Int("grad.batch", 2, "block-stack benchmark: batch")
)

const promptTokens = 4 // deep prompt tokens per block, as DAPO's

// blockStack is a CLIP-style residual stack written with onnx/graph's
// operations the way clip/towers.go writes its blocks (pre-norm attention
// and QuickGELU MLP, frozen weights as initializers), with DAPO's
// learnable parts as inputs: deep prompts inserted after the class token
// and blended before each later block, and an adapter on the output
// tokens. loss = mean((tokens·adapter)²).
func blockStack(width, layers, heads, tokens int) (*pb.ModelProto, error) {
	b := graph.New(graph.Float32)
	batch := graph.Sym("batch")
	x := b.Input("x", graph.Float32, batch, graph.N(tokens), graph.N(width))
	prompts := b.Input("prompts", graph.Float32, graph.N(layers), graph.N(promptTokens), graph.N(width))
	adapter := b.Input("adapter", graph.Float32, graph.N(width), graph.N(width/2))
	seed := uint64(0)
	weight := func(name string, shape ...int) string {
		seed++
		n := 1
		for _, d := range shape {
			n *= d
		}
		s := 1 / math.Sqrt(float64(shape[0]))
		return b.Weight(name, shape, random(seed, n, -s, s))
	}
	ones := func(name string) string {
		v := make([]float32, width)
		for i := range v {
			v[i] = 1
		}
		return b.Weight(name, []int{width}, v)
	}
	zeros := func(name string, n int) string { return b.Weight(name, []int{n}, make([]float32, n)) }
	linear := func(x, name string, in, out int) string {
		return b.Add(b.MatMul(x, weight(name+".w", in, out)), zeros(name+".b", out))
	}
	ln := func(x, name string) string { return b.LayerNorm(x, ones(name+".g"), zeros(name+".b", width), 1e-5) }
	d := width / heads
	split := func(v string, keyT bool) string {
		v = b.Reshape(v, 0, 0, int64(heads), int64(d))
		if keyT {
			return b.Transpose(v, 0, 2, 3, 1)
		}
		return b.Transpose(v, 0, 2, 1, 3)
	}
	batchShape := b.Concat(0, b.Slice(b.Shape(x), 0, 0, 1), b.Ints(false, promptTokens, int64(width)))
	for i := range layers {
		p := b.Gather(prompts, b.Ints(true, int64(i)), 0)
		if i == 0 {
			x = b.Concat(1, b.Slice(x, 1, 0, 1), b.Expand(p, batchShape), b.Slice(x, 1, 1, math.MaxInt64))
		} else {
			mid := b.Add(b.Mul(b.Slice(x, 1, 1, 1+promptTokens), b.Scalar(0.01)), b.Mul(p, b.Scalar(0.99)))
			x = b.Concat(1, b.Slice(x, 1, 0, 1), mid, b.Slice(x, 1, 1+promptTokens, math.MaxInt64))
		}
		name := fmt.Sprintf("block%d", i)
		y := ln(x, name+".ln1")
		q := b.Mul(linear(y, name+".q", width, width), b.Scalar(float32(1/math.Sqrt(float64(d)))))
		k, v := linear(y, name+".k", width, width), linear(y, name+".v", width, width)
		a := b.MatMul(b.Softmax(b.MatMul(split(q, false), split(k, true)), -1), split(v, false))
		a = b.Reshape(b.Transpose(a, 0, 2, 1, 3), 0, 0, int64(width))
		x = b.Add(x, linear(a, name+".o", width, width))
		h := linear(ln(x, name+".ln2"), name+".fc", width, 4*width)
		h = b.Mul(h, b.Sigmoid(b.Mul(h, b.Scalar(1.702))))
		x = b.Add(x, linear(h, name+".proj", 4*width, width))
	}
	out := b.MatMul(b.Slice(x, 1, 1+promptTokens, math.MaxInt64), adapter)
	sq := b.Mul(out, out)
	// onnx/graph has no reductions: the loss is written with this package.
	e, err := grad.Extend(b.Model("blocks", nil))
	if err != nil {
		return nil, err
	}
	e.Output(e.Reshape(e.ReduceMean(sq, false), 1), "loss")
	return e.Model()
}

func stackFeeds(width, layers, tokens, batch int) map[string]runner.Tensor {
	return map[string]runner.Tensor{
		"x":       {Shape: []int64{int64(batch), int64(tokens), int64(width)}, Float32: random(11, batch*tokens*width, -1, 1)},
		"prompts": {Shape: []int64{int64(layers), promptTokens, int64(width)}, Float32: random(12, layers*promptTokens*width, -0.5, 0.5)},
		"adapter": {Shape: []int64{int64(width), int64(width / 2)}, Float32: random(13, width*width/2, -0.1, 0.1)},
	}
}

// BenchmarkBlockStack reports, for forward+backward of the block stack
// with respect to the prompts and the adapter: graph sizes, the forward
// activations the backward part keeps (saved_MB, at the benchmark batch),
// and onnxruntime's time per step on the CPU against the forward pass
// alone.
func BenchmarkBlockStack(b *testing.B) {
	w, l, h, t, n := *benchWidth, *benchLayers, *benchHeads, *benchTokens, *benchBatch
	fwd, err := blockStack(w, l, h, t)
	if err != nil {
		b.Fatal(err)
	}
	wrt := []string{"prompts", "adapter"}
	bwd, err := grad.Backward(fwd, "loss", wrt, grad.Options{})
	if err != nil {
		b.Fatal(err)
	}
	st, err := grad.Analyze(bwd, map[string]int64{"batch": int64(n)})
	if err != nil {
		b.Fatal(err)
	}
	feeds := stackFeeds(w, l, t, n)
	name := fmt.Sprintf("w%d_l%d_t%d_b%d", w, l, t, n)
	b.Run(name+"/build", func(b *testing.B) {
		for b.Loop() {
			if _, err := grad.Backward(fwd, "loss", wrt, grad.Options{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(fwd.GetGraph().GetNode())), "fwd_nodes")
		b.ReportMetric(float64(st.BackwardNodes), "bwd_nodes")
	})
	for _, tc := range []struct {
		name  string
		model *pb.ModelProto
	}{{"forward", fwd}, {"step", bwd}} {
		b.Run(name+"/"+tc.name, func(b *testing.B) {
			data, err := graph.Marshal(tc.model)
			if err != nil {
				b.Fatal(err)
			}
			r, err := runner.Open(runner.Options{Device: "cpu"})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			sess, err := r.LoadBytes(context.Background(), tc.name, data, "")
			if err != nil {
				b.Fatal(err)
			}
			defer sess.Close()
			for b.Loop() {
				if _, err := sess.Run(context.Background(), feeds); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(tc.model.GetGraph().GetNode())), "nodes")
			if tc.name == "step" {
				b.ReportMetric(float64(st.SavedBytes)/(1<<20), "saved_MB")
			}
		})
	}
}

// TestBlockStack checks the benchmark's model: gradients of the prompts
// and the adapter through two blocks, and which activations the backward
// part keeps: per block the input of each layer norm, the attention's
// per-head q, kᵀ, v and probabilities, the MLP's hidden layer and its
// sigmoid; then the adapter's input and output. Nothing for the frozen
// weights (layer-norm outputs, linear inputs) is kept.
func TestBlockStack(t *testing.T) {
	fwd, err := blockStack(16, 2, 2, 10)
	if err != nil {
		t.Fatal(err)
	}
	wrt := []string{"prompts", "adapter"}
	res, err := gradcheck.Check(context.Background(), rt, fwd, "loss", wrt, stackFeeds(16, 2, 10, 2), gradcheck.Options{MaxPerInput: 64})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		t.Log(r)
		if r.Checked == 0 || r.MaxRelErr > 1e-3 || math.IsNaN(r.MaxRelErr) {
			t.Errorf("%s: max relative error %.3g > 1e-3", r.Input, r.MaxRelErr)
		}
	}
	bwd, err := grad.Backward(fwd, "loss", wrt, grad.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := grad.Analyze(bwd, map[string]int64{"batch": 2})
	if err != nil {
		t.Fatal(err)
	}
	producer := map[string]string{}
	for _, n := range bwd.GetGraph().GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = n.GetOpType()
		}
	}
	var got []string
	for _, s := range st.Saved {
		got = append(got, producer[s])
	}
	block := []string{"Concat", "Transpose", "Transpose", "Softmax", "Transpose", "Add", "Add", "Sigmoid"}
	want := slices.Concat(block, block, []string{"Slice", "MatMul"})
	if !slices.Equal(got, want) {
		t.Errorf("saved activations made by %v, want %v", got, want)
	}
	// Per example: 2 blocks × (2 × 14×16 residual + 3 × 2×14×8 heads
	// + 2×14×14 probabilities + 2 × 14×64 MLP) + 9×16 + 9×8 (the tokens
	// after the class and prompt tokens), float32.
	perExample := 2*(2*14*16+3*2*14*8+2*14*14+2*14*64) + 9*16 + 9*8
	if st.SavedBytes != int64(2*4*perExample) {
		t.Errorf("saved %d bytes, want %d", st.SavedBytes, 2*4*perExample)
	}
}
