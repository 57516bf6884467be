package grad_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dapobench/dapobench/clip"
	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/grad"
	"github.com/dapobench/dapobench/onnx/gradcheck"
	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
)

// tinyTowers builds the seeded tiny model of a variant the way `dapobench
// build` does and reads its graphs back: the tower builders are not
// exported, and the files are exactly what the harness runs.
func tinyTowers(t testing.TB, v clip.Variant) (image, text *pb.ModelProto) {
	t.Helper()
	dir := t.TempDir()
	if _, err := clip.BuildTiny(context.Background(), dir, 3, clip.Options{Variant: v}); err != nil {
		t.Fatal(err)
	}
	read := func(name string) *pb.ModelProto {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var m pb.ModelProto
		if err := proto.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return &m
	}
	return read(clip.ImageFile), read(clip.TextFile)
}

// towerLoss appends loss = Σ over outputs o of Σ (w_o⊙o + ½o²), with each
// w_o a fed input, and makes feeds for every input (symbolic sizes 2).
func towerLoss(t testing.TB, m *pb.ModelProto, seed uint64) (*pb.ModelProto, map[string]runner.Tensor) {
	t.Helper()
	b, err := grad.Extend(m)
	if err != nil {
		t.Fatal(err)
	}
	feeds := map[string]runner.Tensor{}
	dimsOf := func(vi *pb.ValueInfoProto) ([]graph.Dim, []int64) {
		var dims []graph.Dim
		var shape []int64
		for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
			if p := d.GetDimParam(); p != "" {
				dims, shape = append(dims, graph.Sym(p)), append(shape, 2)
			} else {
				dims, shape = append(dims, graph.N(int(d.GetDimValue()))), append(shape, d.GetDimValue())
			}
		}
		return dims, shape
	}
	for i, in := range m.GetGraph().GetInput() {
		_, shape := dimsOf(in)
		switch in.GetName() {
		case clip.InEOTIndex:
			feeds[in.GetName()] = runner.Tensor{Shape: shape, Int64: []int64{5, 9}}
		default:
			feeds[in.GetName()] = runner.Tensor{Shape: shape, Float32: random(seed+uint64(i), size(shape), -0.5, 0.5)}
		}
	}
	var terms []string
	for i, o := range m.GetGraph().GetOutput() {
		dims, shape := dimsOf(o)
		w := b.Input("loss_w_"+o.GetName(), graph.Float32, dims...)
		feeds[w] = runner.Tensor{Shape: shape, Float32: random(seed+100+uint64(i), size(shape), -1, 1)}
		y := o.GetName()
		terms = append(terms, b.ReduceSum(b.Add(b.Mul(y, w), b.Mul(b.Mul(y, y), b.Scalar(y, 0.5))), false))
	}
	b.Output(b.Reshape(b.Sum(terms...), 1), "loss")
	out, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return out, feeds
}

// TestTowers checks gradients through the tiny CLIP towers: DAPO's deep
// visual and text prompts (Gather, Expand, Concat, Slice, the 0.01
// blend), the context embeddings, the pixels (patch reshape and
// projection), AnomalyCLIP's V-V path and float16 round trip, and
// WinCLIP's exact GELU (Erf).
func TestTowers(t *testing.T) {
	type tower struct {
		name  string
		model func(img, txt *pb.ModelProto) *pb.ModelProto
		wrt   []string
	}
	pick := func(image bool) func(img, txt *pb.ModelProto) *pb.ModelProto {
		return func(img, txt *pb.ModelProto) *pb.ModelProto {
			if image {
				return img
			}
			return txt
		}
	}
	for _, tc := range []struct {
		variant clip.Variant
		towers  []tower
	}{
		{clip.DAPO, []tower{
			{"image", pick(true), []string{clip.InVisualPrompts, clip.InPixels}},
			{"text", pick(false), []string{clip.InDeepTokens, clip.InEmbeds}},
		}},
		{clip.AnomalyCLIP, []tower{
			{"image", pick(true), []string{clip.InPixels}},
			{"text", pick(false), []string{clip.InDeepTokens, clip.InEmbeds}},
		}},
		{clip.WinCLIP, []tower{
			{"image", pick(true), []string{clip.InPixels}},
		}},
	} {
		img, txt := tinyTowers(t, tc.variant)
		for i, tw := range tc.towers {
			t.Run(string(tc.variant)+"/"+tw.name, func(t *testing.T) {
				m, feeds := towerLoss(t, tw.model(img, txt), uint64(10*i))
				res, err := gradcheck.Check(context.Background(), rt, m, "loss", tw.wrt, feeds,
					gradcheck.Options{MaxPerInput: 40, Seed: 1})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range res {
					t.Log(r)
					if r.Checked == 0 || r.MaxRelErr > 1e-3 || math.IsNaN(r.MaxRelErr) {
						t.Errorf("%s: max relative error %.3g > 1e-3", r.Input, r.MaxRelErr)
					}
				}
				// The float32 model, as training runs it, against double.
				_, want, err := gradcheck.Gradients(rt, m, "loss", tw.wrt, feeds)
				if err != nil {
					t.Fatal(err)
				}
				bwd, err := grad.Backward(m, "loss", tw.wrt, grad.Options{})
				if err != nil {
					t.Fatal(err)
				}
				got := run(t, bwd, feeds)
				for _, x := range tw.wrt {
					e := relNorm(got["grad_"+x].Float32, want[x])
					t.Logf("grad_%s: float32 vs float64 relative 2-norm difference %.2e", x, e)
					if e > 1e-3 {
						t.Errorf("grad_%s: float32 gradient differs from float64 by %.3g", x, e)
					}
				}
				// No activation is kept alive only for its shape.
				for _, n := range bwd.GetGraph().GetNode() {
					if n.GetOpType() == "Shape" && strings.HasPrefix(n.GetName(), grad.GradPrefix) && !isInput(bwd, n.GetInput()[0]) {
						t.Errorf("%s reads the shape of activation %q", n.GetName(), n.GetInput()[0])
					}
				}
			})
		}
	}
}

func isInput(m *pb.ModelProto, v string) bool {
	for _, in := range m.GetGraph().GetInput() {
		if in.GetName() == v {
			return true
		}
	}
	return false
}

// TestFloat16Towers runs the backward model of the float16 build (weights
// and computation in half precision, as `--fp16` builds them) and
// compares its gradients with the double gradients of the same weights:
// they agree to half precision (about 1e-3 measured; the test allows
// 1e-2), which a wrong rule would not.
func TestFloat16Towers(t *testing.T) {
	dir := t.TempDir()
	if _, err := clip.BuildTiny(context.Background(), dir, 3, clip.Options{Variant: clip.DAPO, FP16: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		wrt  []string
	}{
		{clip.ImageFile, []string{clip.InVisualPrompts}},
		{clip.TextFile, []string{clip.InDeepTokens, clip.InEmbeds}},
	} {
		data, err := os.ReadFile(filepath.Join(dir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		var m pb.ModelProto
		if err := proto.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		fwd, feeds := towerLoss(t, &m, 1)
		bwd, err := grad.Backward(fwd, "loss", tc.wrt, grad.Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := run(t, bwd, feeds)
		_, want, err := gradcheck.Gradients(rt, fwd, "loss", tc.wrt, feeds)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range tc.wrt {
			e := relNorm(got["grad_"+x].Float32, want[x])
			t.Logf("%s: grad_%s: float16 vs float64 relative 2-norm difference %.2e", tc.file, x, e)
			if e > 1e-2 {
				t.Errorf("%s: grad_%s differs from float64 by %.3g", tc.file, x, e)
			}
		}
	}
}

// TestCheckpoints differentiates the tiny DAPO towers with the residual
// stream of every block as checkpoints: the step returns the same loss and
// bit-identical gradients, recomputes what it no longer keeps, and keeps
// less.
func TestCheckpoints(t *testing.T) {
	img, txt := tinyTowers(t, clip.DAPO)
	for _, tc := range []struct {
		name  string
		model *pb.ModelProto
		wrt   []string
	}{
		{"image", img, []string{clip.InVisualPrompts}},
		{"text", txt, []string{clip.InDeepTokens, clip.InEmbeds}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, feeds := towerLoss(t, tc.model, 7)
			var cks []string
			for _, n := range m.GetGraph().GetNode() {
				if n.GetOpType() == "LayerNormalization" && strings.HasSuffix(n.GetInput()[1], ".ln_1.weight") {
					cks = append(cks, n.GetInput()[0])
				}
			}
			if len(cks) != 4 {
				t.Fatalf("%d block inputs, want 4", len(cks))
			}
			plain, err := grad.Backward(m, "loss", tc.wrt, grad.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ck, err := grad.Backward(m, "loss", tc.wrt, grad.Options{Checkpoints: cks})
			if err != nil {
				t.Fatal(err)
			}
			recomputed := 0
			for _, n := range ck.GetGraph().GetNode() {
				if strings.HasPrefix(n.GetName(), grad.GradPrefix+"recompute/") {
					recomputed++
				}
			}
			sizes := map[string]int64{"batch": 2, "prompts": 2}
			sp, err := grad.Analyze(plain, sizes)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := grad.Analyze(ck, sizes)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("saved %d → %d bytes, %d nodes recomputed", sp.SavedBytes, sc.SavedBytes, recomputed)
			if recomputed == 0 || sc.SavedBytes >= sp.SavedBytes/2 {
				t.Errorf("saved %d → %d bytes with %d nodes recomputed: want less than half", sp.SavedBytes, sc.SavedBytes, recomputed)
			}
			want, got := run(t, plain, feeds), run(t, ck, feeds)
			for name, w := range want {
				g := got[name]
				if len(g.Float32) != len(w.Float32) {
					t.Fatalf("%s: %d values, want %d", name, len(g.Float32), len(w.Float32))
				}
				for i := range w.Float32 {
					if math.Float32bits(g.Float32[i]) != math.Float32bits(w.Float32[i]) {
						t.Fatalf("%s[%d] = %v with checkpoints, %v without", name, i, g.Float32[i], w.Float32[i])
					}
				}
			}
		})
	}
	m, _ := towerLoss(t, img, 7)
	if _, err := grad.Backward(m, "loss", []string{clip.InVisualPrompts}, grad.Options{Checkpoints: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown checkpoint: %v", err)
	}
}
