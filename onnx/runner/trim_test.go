package runner_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/dapobench/dapobench/internal/memstat"
	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
)

// vmRSS is the process's resident memory in bytes (Linux).
func vmRSS(t *testing.T) int64 {
	t.Helper()
	b, ok := memstat.Current()
	if !ok {
		t.Skip("no /proc/self/status")
	}
	return b
}

// TestTrimHeap loads, runs and closes a session with 96 MB of weights in
// 4 MB matrices (blocks the C allocator may keep once freed): after
// TrimHeap the process's resident memory is back where it was before the
// load, within a third of the weights.
func TestTrimHeap(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("malloc_trim is glibc's")
	}
	const width, layers = 1024, 24
	b := graph.New(graph.Float32)
	x := b.In(b.Input("x", graph.Float32, graph.N(1), graph.N(width)))
	w := make([]float32, width*width)
	for i := range w {
		w[i] = float32(i%7) * 1e-4
	}
	for l := range layers {
		x = b.MatMul(x, b.Weight(fmt.Sprintf("w%d", l), []int{width, width}, w))
	}
	b.Output(b.Out(x), "y", graph.Float32, graph.N(1), graph.N(width))
	path := filepath.Join(t.TempDir(), "trim.onnx")
	if err := graph.WriteFile(path, b.Model("trim", nil), false); err != nil {
		t.Fatal(err)
	}
	b, w = nil, nil
	rt := open(t, "cpu")
	ctx := context.Background()
	debug.FreeOSMemory()
	base := vmRSS(t)
	s, err := rt.Load(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(ctx, map[string]runner.Tensor{"x": {Shape: []int64{1, width}, Float32: make([]float32, width)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	debug.FreeOSMemory()
	closed := vmRSS(t)
	runner.TrimHeap()
	after := vmRSS(t)
	t.Logf("resident memory %d MB before loading, %d MB after closing, %d MB after TrimHeap", base>>20, closed>>20, after>>20)
	if after-base > 32<<20 {
		t.Errorf("after TrimHeap the process holds %d MB more than before loading 96 MB of weights", (after-base)>>20)
	}
}
