package winclip

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/baselines/internal/e2e"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/race"
	"github.com/dapobench/dapobench/onnx/runner"
)

// TestExtract runs the tiny model's image tower on three images and checks
// that the window embeddings do not depend on how the windows are split
// into runs of the window graph, and that bad tower outputs are errors.
func TestExtract(t *testing.T) {
	race.SkipNumeric(t)
	env := e2e.Setup(t, clip.Options{Variant: clip.WinCLIP})
	m := env.Model
	ctx := context.Background()
	n, size := 3, m.Manifest.ImageSize
	pixels := make([]float32, n*3*size*size)
	for i := range pixels {
		pixels[i] = float32(math.Cos(float64(i) * 0.11))
	}
	out, err := m.Image.Run(ctx, map[string]runner.Tensor{clip.InPixels: {Shape: []int64{int64(n), 3, int64(size), int64(size)}, Float32: pixels}})
	if err != nil {
		t.Fatal(err)
	}
	whole, err := extract(ctx, m, out, n, windowChunk)
	if err != nil {
		t.Fatal(err)
	}
	split, err := extract(ctx, m, out, n, 1) // one image per run
	if err != nil {
		t.Fatal(err)
	}
	g := m.Manifest.Grid
	for i := range n {
		var names []string
		for _, x := range whole[i].Tensors {
			names = append(names, x.Name)
		}
		if want := []string{clip.OutImageEmbed, WindowFeature(2), WindowFeature(3)}; !slices.Equal(names, want) {
			t.Fatalf("image %d: features %v, want %v", i, names, want)
		}
		for _, k := range DefaultScales() {
			a, _ := whole[i].Tensor(WindowFeature(k))
			b, _ := split[i].Tensor(WindowFeature(k))
			if want := []int{(g - k + 1) * (g - k + 1), m.Manifest.EmbedDim}; !slices.Equal(a.Shape, want) {
				t.Errorf("image %d, scale %d: shape %v, want %v", i, k, a.Shape, want)
			}
			for j := range a.Data {
				if math.Abs(float64(a.Data[j]-b.Data[j])) > 1e-6 {
					t.Fatalf("image %d, scale %d: value %d is %v in one run, %v per image", i, k, j, a.Data[j], b.Data[j])
				}
			}
		}
	}

	drop := func(name string) map[string]runner.Tensor {
		o := map[string]runner.Tensor{}
		for k, v := range out {
			if k != name {
				o[k] = v
			}
		}
		return o
	}
	bad := drop(clip.OutTokens)
	bad[clip.OutTokens] = runner.Tensor{Shape: []int64{int64(n), 5, 32}, Float32: make([]float32, n*5*32)}
	noWindow := *m
	noWindow.Window = nil
	for _, c := range []struct {
		name string
		out  map[string]runner.Tensor
		want string
	}{
		{"no tokens", drop(clip.OutTokens), "no \"tokens\" output"},
		{"no image embedding", drop(clip.OutImageEmbed), "image_embed"},
		{"short token sequence", bad, "want [3 17"},
	} {
		if _, err := extract(ctx, m, c.out, n, windowChunk); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if _, err := extract(ctx, &noWindow, out, n, windowChunk); err == nil || !strings.Contains(err.Error(), "no window graph") {
		t.Errorf("model without a window graph: error %v", err)
	}
}
