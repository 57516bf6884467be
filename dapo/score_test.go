package dapo

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/onnx/runner"
)

// TestScoreReference checks the scorer's image score, anomaly map, class
// maps and class probabilities against testdata/gen_scoring.py, a float64
// numpy computation of docs/methods.md#dapo-image-score,
// docs/methods.md#dapo-pixel-map and docs/methods.md#dapo-multitype.
func TestScoreReference(t *testing.T) {
	b, err := os.ReadFile("testdata/scoring.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Grid, Size, VisionDim, EmbedDim, Layers, Classes, Defects int
		ImageEmbed                                                []float32 `json:"image_embed"`
		Patches                                                   []float32
		AdapterWeight                                             []float32 `json:"adapter_weight"`
		AdapterBias                                               []float32 `json:"adapter_bias"`
		Binary, Multi                                             []float32
		Score                                                     float64
		Map                                                       []float64
		ClassMaps                                                 []float64 `json:"class_maps"`
		ClassScores                                               []float64 `json:"class_scores"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	// The JSON keys of the dimensions use snake case.
	var dims map[string]any
	json.Unmarshal(b, &dims)
	ref.VisionDim, ref.EmbedDim = int(dims["vision_dim"].(float64)), int(dims["embed_dim"].(float64))

	rt, err := runner.Open(runner.Options{Device: "cpu", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx := context.Background()
	g, size, dv, de := ref.Grid, ref.Size, ref.VisionDim, ref.EmbedDim
	man := &clip.Manifest{Grid: g, ImageSize: size, PatchDim: dv, EmbedDim: de, FeatureLayers: []int{1, 2}}
	rows := func(flat []float32, n int) [][]float32 {
		var out [][]float32
		for i := range n {
			out = append(out, flat[i*de:(i+1)*de])
		}
		return out
	}
	v, _ := DefaultVocabularies()
	sc := &scorer{s: &Scheme{vocab: v}, m: &bench.Model{Manifest: man}, layers: []int{1, 2},
		binary: rows(ref.Binary, 1+ref.Defects), multi: rows(ref.Multi, ref.Classes), classes: []string{"good", "a", "b"}}
	for l := range ref.Layers {
		lin, err := bench.NewLinear(ctx, rt, ref.AdapterWeight[l*de*dv:(l+1)*de*dv], ref.AdapterBias[l*de:(l+1)*de], dv, de)
		if err != nil {
			t.Fatal(err)
		}
		sc.adapters = append(sc.adapters, lin)
	}
	defer sc.Close()
	if sc.up, err = postproc.NewBilinear(g, g, size, size, true); err != nil {
		t.Fatal(err)
	}
	f := bench.Features{Tensors: []featcache.Tensor{{Name: clip.OutImageEmbed, Shape: []int{de}, Data: ref.ImageEmbed}}}
	for l := range ref.Layers {
		f.Tensors = append(f.Tensors, featcache.Tensor{Name: clip.OutPatch(l + 1), Shape: []int{g * g, dv}, Data: ref.Patches[l*g*g*dv : (l+1)*g*g*dv]})
	}
	out, err := sc.Score(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	const tol = 2e-5 // float32 computation against a float64 reference
	near := func(what string, got, want float64) {
		if math.Abs(got-want) > tol*max(1, math.Abs(want)) {
			t.Errorf("%s: %.8g, want %.8g", what, got, want)
		}
	}
	near("image score", float64(out.Image), ref.Score)
	for i, w := range ref.Map {
		near("map", float64(out.Map[i]), w)
	}
	for c := range ref.Classes {
		for i := range size * size {
			near("class map", float64(out.ClassMaps[c][i]), ref.ClassMaps[c*size*size+i])
		}
		near("class score", out.ClassScores[c], ref.ClassScores[c])
	}
}
