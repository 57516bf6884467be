package bench

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/onnx/runner"
)

func TestSplitBatch(t *testing.T) {
	out := map[string]runner.Tensor{
		"a": {Shape: []int64{2, 3}, Float32: []float32{1, 2, 3, 4, 5, 6}},
		"b": {Shape: []int64{2, 1, 2}, Float32: []float32{7, 8, 9, 10}},
	}
	f, err := SplitBatch(out, []string{"a", "b"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := f[1].Tensor("a")
	b0, _ := f[0].Tensor("b")
	if len(f) != 2 || a1.Data[0] != 4 || len(a1.Shape) != 1 || a1.Shape[0] != 3 || b0.Data[1] != 8 || len(b0.Shape) != 2 {
		t.Errorf("%+v", f)
	}
	if _, err := SplitBatch(out, []string{"c"}, 2); err == nil || !strings.Contains(err.Error(), `no output "c"`) {
		t.Errorf("missing output: %v", err)
	}
	if _, err := SplitBatch(out, []string{"a"}, 3); err == nil {
		t.Error("no error for a batch mismatch")
	}
}

// TestLinear checks the onnxruntime head against a Go loop.
func TestLinear(t *testing.T) {
	rt, err := runner.Open(runner.Options{Device: "cpu", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	const in, out, n = 5, 3, 4
	w := make([]float32, out*in) // PyTorch layout [out, in]
	b := []float32{0.5, -1, 2}
	x := make([]float32, n*in)
	for i := range w {
		w[i] = float32(i%7) - 3
	}
	for i := range x {
		x[i] = float32(i%5) * 0.25
	}
	l, err := NewLinear(context.Background(), rt, w, b, in, out)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	y, err := l.Apply(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	for r := range n {
		for o := range out {
			want := float64(b[o])
			for i := range in {
				want += float64(x[r*in+i]) * float64(w[o*in+i])
			}
			if math.Abs(float64(y[r*out+o])-want) > 1e-5 {
				t.Errorf("y[%d][%d] = %v, want %v", r, o, y[r*out+o], want)
			}
		}
	}
	if _, err := l.Apply(context.Background(), x[:7]); err == nil {
		t.Error("no error for a partial row")
	}
	if _, err := NewLinear(context.Background(), rt, w[:3], b, in, out); err == nil {
		t.Error("no error for a short weight")
	}
}

func TestWriteTowerOutputs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	res := map[string]runner.Tensor{
		"text_embed":  {Shape: []int64{2, 2}, Float32: []float32{1, 2, 3, 4}},
		"image_embed": {Shape: []int64{1, 3}, Float32: []float32{5, 6, 7}},
	}
	var list strings.Builder
	if err := WriteTowerOutputs(dir, res, &list); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "image_embed.npy") + " [1 3]\n" + filepath.Join(dir, "text_embed.npy") + " [2 2]\n"
	if list.String() != want {
		t.Errorf("listed %q, want %q", list.String(), want)
	}
	a, err := npy.ReadFile(filepath.Join(dir, "text_embed.npy"))
	if err != nil || !slices.Equal(a.Shape, []int{2, 2}) || !slices.Equal(a.Data, res["text_embed"].Float32) {
		t.Errorf("text_embed.npy: %+v, %v", a, err)
	}
}

func TestOpenCaches(t *testing.T) {
	if f, txt, err := OpenCaches(""); f != nil || txt != nil || err != nil {
		t.Errorf("no folder: %v %v %v", f, txt, err)
	}
	dir := filepath.Join(t.TempDir(), "cache")
	f, txt, err := OpenCaches(dir)
	if err != nil || f.Dir() != dir || txt.Dir() != filepath.Join(dir, "text") {
		t.Fatalf("%v", err)
	}
	if st, err := os.Stat(txt.Dir()); err != nil || !st.IsDir() {
		t.Errorf("text cache folder: %v", err)
	}
}
