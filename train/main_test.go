package train_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/train"
)

// rt is the one onnxruntime of the test binary: the runner keeps a
// process-wide environment.
var rt *runner.Runtime

func TestMain(m *testing.M) {
	var err error
	rt, err = runner.Open(runner.Options{Device: "cpu", Threads: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "train tests need onnxruntime (make setup):", err)
		os.Exit(1)
	}
	code := m.Run()
	rt.Close()
	os.Exit(code)
}

// tiny is a seeded tiny model directory of a variant.
type tiny struct {
	dir string
	man *clip.Manifest
}

func tinyModel(t testing.TB, v clip.Variant) tiny {
	t.Helper()
	dir := t.TempDir()
	man, err := clip.BuildTiny(context.Background(), dir, 3, clip.Options{Variant: v})
	if err != nil {
		t.Fatal(err)
	}
	return tiny{dir, man}
}

// graphOf builds the training graph of a scheme variant on the tiny model.
func graphOf(t testing.TB, m tiny, scheme, variant string) *train.Graph {
	t.Helper()
	h, err := train.NewHead(scheme, variant, "mvtec", m.man)
	if err != nil {
		t.Fatal(err)
	}
	g, err := train.ReadGraph(m.dir, m.man, h)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// feeds are seeded inputs of a batch of n images: random pixels, a
// random defect blob on the odd images with a class from 1..K, and the
// scheme's untrained tensors.
func feeds(t testing.TB, m tiny, g *train.Graph, n int, seed uint64) map[string]runner.Tensor {
	t.Helper()
	s := m.man.ImageSize
	px := clip.SeededUniform(seed, n*3*s*s)
	mask := make([]float32, n*s*s)
	class := make([]int64, n)
	label := make([]float32, n)
	u := clip.SeededUniform(seed+1, n*4)
	k := g.Head.Classes() - 1
	for i := range n {
		if i%2 == 0 {
			continue
		}
		label[i] = 1
		class[i] = 1 + int64(float64(k)*float64(u[4*i]+1)/2)%int64(k)
		cx, cy := int(float64(s)*float64(u[4*i+1]+1)/2), int(float64(s)*float64(u[4*i+2]+1)/2)
		r := 3 + int(4*(u[4*i+3]+1))
		for y := range s {
			for x := range s {
				if (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r {
					mask[i*s*s+y*s+x] = 1
				}
			}
		}
	}
	table, err := m.man.ReadTokenEmbedding(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := checkpoints.Untrained(g.Head.Scheme, m.man, table, seed)
	if err != nil {
		t.Fatal(err)
	}
	f := map[string]runner.Tensor{
		train.InPixels: {Shape: []int64{int64(n), 3, int64(s), int64(s)}, Float32: px},
		train.InMask:   {Shape: []int64{int64(n), int64(s), int64(s)}, Float32: mask},
		train.InClass:  {Shape: []int64{int64(n)}, Int64: class},
		train.InLabel:  {Shape: []int64{int64(n)}, Float32: label},
	}
	for _, name := range g.Learnable {
		x := l.Tensors[name]
		shape := make([]int64, len(x.Shape))
		for i, d := range x.Shape {
			shape[i] = int64(d)
		}
		f[name] = runner.Tensor{Shape: shape, Float32: x.Data}
	}
	return f
}

// runModel evaluates a model in onnxruntime through the runner, external
// data resolved in dir.
func runModel(t testing.TB, m *pb.ModelProto, dir string, f map[string]runner.Tensor) map[string]runner.Tensor {
	t.Helper()
	data, err := graph.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.LoadBytes(context.Background(), m.GetGraph().GetName(), data, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
