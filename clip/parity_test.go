package clip_test

import (
	"context"
	"flag"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/safetensors"
	"github.com/dapobench/dapobench/clip/tokenizer"
	"github.com/dapobench/dapobench/onnx/runner"
)

var update = flag.Bool("update", false, "rewrite testdata/parity inputs and run the numpy reference (needs /usr/bin/python3 with numpy, scipy, PIL)")

// parityTol is the bound for fp32 graphs against the reference
// (docs/methods.md#clip-parity).
const parityTol = 1e-4

// paritySeed seeds the tiny weights and the inputs of the parity cases.
const paritySeed = 1

// parityCases cover each variant; the image sizes exercise the
// positional-embedding resize (grid 4 → 5 or 6) and a size that is not a
// multiple of the patch (44 = 5·8 + 4).
var parityCases = []struct {
	variant clip.Variant
	size    int
	prompts []string
}{
	{clip.Plain, 44, []string{"a photo of a damaged object.", "a photo of a flawless metal nut.", "there is a bottle with flaw in the scene"}},
	{clip.AnomalyCLIP, 48, []string{"X X X X X X X X X X X X object.", "X X X X X X X X X X X X damaged object."}},
	{clip.DAPO, 48, []string{"X X X X X flawless object", "X X X X X bent anomaly object", "X X X X X discoloration anomaly object", "X X X X X defective painting anomaly object"}},
	{clip.WinCLIP, 32, []string{"a cropped photo of the flawless object", "a blurry photo of a object with defect", "damaged object"}},
}

func parityDir() string { return filepath.Join("testdata", "parity") }

// ctxTokens is how many positions after SOT carry learned context in each
// variant's prompts: 5 X's for DAPO (docs/methods.md#dapo-prompt-templates),
// 12 for AnomalyCLIP (docs/methods.md#anomalyclip-prompts).
func ctxTokens(v clip.Variant) int {
	switch v {
	case clip.DAPO:
		return 5
	case clip.AnomalyCLIP:
		return 12
	}
	return 0
}

// makeInputs builds a case's inputs the way the schemes will: prompts are
// tokenized, their token embeddings looked up, and learned context spliced
// over the X positions.
func makeInputs(t *testing.T, m *clip.Manifest, w clip.Weights, prompts []string, seed uint64) []safetensors.Tensor {
	tk, err := tokenizer.New()
	if err != nil {
		t.Fatal(err)
	}
	a := m.Arch
	rnd := clip.SeededUniform
	s := m.ImageSize
	ins := []safetensors.Tensor{safetensors.F32(clip.InPixels, []int{2, 3, s, s}, scale(rnd(seed, 2*3*s*s), 2))}
	if m.VisualPromptDepth > 0 {
		n := m.VisualPromptDepth * clip.DeepTokens * a.VisionWidth
		ins = append(ins, safetensors.F32(clip.InVisualPrompts, []int{m.VisualPromptDepth, clip.DeepTokens, a.VisionWidth}, scale(rnd(seed+1, n), 0.5)))
	}
	if m.TextPromptDepth > 0 {
		n := m.TextPromptDepth * clip.DeepTokens * a.TextWidth
		ins = append(ins, safetensors.F32(clip.InDeepTokens, []int{m.TextPromptDepth, clip.DeepTokens, a.TextWidth}, scale(rnd(seed+2, n), 0.5)))
	}
	te := w["token_embedding.weight"]
	tw := a.TextWidth
	embeds := make([]float32, 0, len(prompts)*a.ContextLength*tw)
	var eot []int64
	ctx := scale(rnd(seed+3, ctxTokens(m.Variant)*tw), 0.5)
	for _, p := range prompts {
		ids, err := tk.Tokenize(p, false)
		if err != nil {
			t.Fatal(err)
		}
		eot = append(eot, int64(tokenizer.EOTIndex(ids)))
		for pos, id := range ids {
			if pos >= 1 && pos <= ctxTokens(m.Variant) {
				embeds = append(embeds, ctx[(pos-1)*tw:pos*tw]...)
			} else {
				embeds = append(embeds, te.Data[int(id)*tw:(int(id)+1)*tw]...)
			}
		}
	}
	ins = append(ins, safetensors.F32(clip.InEmbeds, []int{len(prompts), a.ContextLength, tw}, embeds),
		safetensors.I64(clip.InEOTIndex, []int{len(prompts)}, eot))
	if m.Variant == clip.WinCLIP {
		// WinCLIP windows: CLS plus 2×2 and 3×3 patch blocks
		// (docs/methods.md#winclip-windows).
		g := m.Grid
		win := func(k, y, x int) []int64 {
			idx := []int64{0}
			for dy := range k {
				for dx := range k {
					idx = append(idx, int64(1+(y+dy)*g+x+dx))
				}
			}
			return idx
		}
		w2 := slices.Concat(win(2, 0, 0), win(2, 1, 2), win(2, 2, 1))
		w3 := slices.Concat(win(3, 0, 0), win(3, 1, 1))
		ins = append(ins, safetensors.I64("window2", []int{3, 5}, w2), safetensors.I64("window3", []int{2, 10}, w3))
	}
	return ins
}

func scale(v []float32, s float32) []float32 {
	for i := range v {
		v[i] *= s
	}
	return v
}

func openRuntime(t testing.TB) *runner.Runtime {
	t.Helper()
	rt, err := runner.Open(runner.Options{Device: "cpu", Threads: 1})
	if err != nil {
		t.Fatalf("onnxruntime is needed for the graph tests (make setup): %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// TestParity runs every variant's tiny graphs in onnxruntime and compares
// them with testdata/parity/reference.py, a numpy forward written from the
// method descriptions (not from the graph code), on the same seeded weights.
func TestParity(t *testing.T) {
	dir := parityDir()
	a0 := clip.TinyArch(clip.Plain)
	w := clip.TinyWeights(a0, paritySeed)
	weightsPath := filepath.Join(dir, "weights.safetensors")
	if *update {
		noTable := clip.Weights{}
		for k, v := range w {
			if k != "token_embedding.weight" { // the reference only needs the embeddings it is given
				noTable[k] = v
			}
		}
		if err := noTable.WriteSafetensors(weightsPath); err != nil {
			t.Fatal(err)
		}
	}
	checkCommittedWeights(t, weightsPath, w)
	rt := openRuntime(t)
	ctx := context.Background()
	for _, c := range parityCases {
		t.Run(string(c.variant), func(t *testing.T) {
			md := t.TempDir()
			m, err := clip.BuildTiny(ctx, md, paritySeed, clip.Options{Variant: c.variant, ImageSize: c.size})
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Join(dir, string(c.variant))
			if *update {
				mj, err := os.ReadFile(filepath.Join(md, clip.ManifestFile))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(base+".model.json", mj, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := safetensors.WriteFile(base+".inputs.safetensors", makeInputs(t, m, w, c.prompts, paritySeed), nil); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command("/usr/bin/python3", "reference.py", string(c.variant))
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("reference.py: %v\n%s", err, out)
				}
			}
			if mj, err := os.ReadFile(filepath.Join(md, clip.ManifestFile)); err != nil {
				t.Fatal(err)
			} else if want, err := os.ReadFile(base + ".model.json"); err != nil || string(mj) != string(want) {
				t.Fatalf("model.json differs from %s.model.json (the reference's configuration); rerun with -update if intended (%v)", base, err)
			}
			got := runTiny(t, rt, md, m, base+".inputs.safetensors")
			want, err := safetensors.ReadFile(base + ".expected.safetensors")
			if err != nil {
				t.Fatal(err)
			}
			if len(want.Tensors) != len(got) {
				t.Errorf("reference has %d outputs, graphs gave %d", len(want.Tensors), len(got))
			}
			for _, wt := range want.Tensors {
				g, ok := got[wt.Name]
				if !ok {
					t.Errorf("no graph output for reference %q", wt.Name)
					continue
				}
				wv, _ := wt.Float32()
				if !slices.Equal(g.Shape, wt.Shape) {
					t.Errorf("%s: shape %v, reference %v", wt.Name, g.Shape, wt.Shape)
					continue
				}
				d := maxAbsDiff(g.Data, wv)
				t.Logf("%s %v: max |onnx − numpy| = %.2e", wt.Name, wt.Shape, d)
				if d > parityTol || math.IsNaN(d) {
					t.Errorf("%s: max |onnx − numpy| = %.3g > %g", wt.Name, d, parityTol)
				}
			}
		})
	}
}

func checkCommittedWeights(t *testing.T, path string, w clip.Weights) {
	t.Helper()
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range f.Tensors {
		v, _ := ts.Float32()
		if !slices.Equal(v, w[ts.Name].Data) || !slices.Equal(ts.Shape, w[ts.Name].Shape) {
			t.Fatalf("%s: committed %s differs from TinyWeights(seed %d); regenerate with -update", path, ts.Name, paritySeed)
		}
	}
	if len(f.Tensors) != len(w)-1 {
		t.Fatalf("%s: %d tensors, want %d", path, len(f.Tensors), len(w)-1)
	}
}

// runTiny feeds a case's inputs to the model's graphs and returns every
// output, including WinCLIP's window embeddings under window2/window3.
func runTiny(t *testing.T, rt *runner.Runtime, dir string, m *clip.Manifest, inputs string) map[string]clip.Tensor {
	t.Helper()
	f, err := safetensors.ReadFile(inputs)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]runner.Tensor{}
	for _, ts := range f.Tensors {
		shape := make([]int64, len(ts.Shape))
		for i, d := range ts.Shape {
			shape[i] = int64(d)
		}
		if ts.DType == "I64" {
			v, _ := ts.Int64()
			in[ts.Name] = runner.Tensor{Shape: shape, Int64: v}
		} else {
			v, _ := ts.Float32()
			in[ts.Name] = runner.Tensor{Shape: shape, Float32: v}
		}
	}
	out := map[string]clip.Tensor{}
	ctx := context.Background()
	keys := []string{"image", "text"}
	for _, k := range keys {
		s, err := rt.Load(ctx, m.Path(dir, k))
		if err != nil {
			t.Fatal(err)
		}
		feed := map[string]runner.Tensor{}
		for _, i := range s.Inputs() {
			feed[i.Name] = in[i.Name]
		}
		res, err := s.Run(ctx, feed)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		for name, r := range res {
			out[name] = toTensor(r)
		}
		s.Close()
	}
	if m.Variant == clip.WinCLIP {
		s, err := rt.Load(ctx, m.Path(dir, "window"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		tokens := out[clip.OutTokens]
		for _, name := range []string{"window2", "window3"} {
			idx := in[name]
			batch, n := tokens.Shape[0], len(tokens.Data)/tokens.Shape[0]
			width := tokens.Shape[2]
			var data []float32
			for b := range batch {
				for _, i := range idx.Int64 {
					data = append(data, tokens.Data[b*n+int(i)*width:b*n+(int(i)+1)*width]...)
				}
			}
			shape := []int64{int64(batch) * idx.Shape[0], idx.Shape[1], int64(width)}
			res, err := s.Run(ctx, map[string]runner.Tensor{clip.InTokens: {Shape: shape, Float32: data}})
			if err != nil {
				t.Fatal(err)
			}
			out[name] = toTensor(res[clip.OutImageEmbed])
		}
	}
	return out
}

func toTensor(r runner.Tensor) clip.Tensor {
	shape := make([]int, len(r.Shape))
	for i, d := range r.Shape {
		shape[i] = int(d)
	}
	return clip.Tensor{Shape: shape, Data: r.Float32}
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}
