package train_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/baselines/anomalyclip"
	"github.com/dapobench/dapobench/clip/tokenizer"
	"github.com/dapobench/dapobench/dapo"
	"github.com/dapobench/dapobench/internal/race"

	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/onnx/grad"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/train"
)

// TestLossMatchesReference runs the training graph and recomputes its loss
// in Go from the towers' outputs, the way the official trainers write it:
// every class map upsampled (bench/postproc's PyTorch-exact bilinear),
// the focal loss with the clamped one-hot summed over all classes, the
// two dice terms, the image cross-entropy, 4·local + image. The graph
// upsamples only three maps per layer; the two must agree.
func TestLossMatchesReference(t *testing.T) {
	race.SkipNumeric(t)
	for _, tc := range []struct {
		scheme, variant string
		model           clip.Variant
	}{
		{checkpoints.DAPO, "dapo", clip.DAPO},
		{checkpoints.DAPO, "dapo/no-defect-words", clip.DAPO},
		{checkpoints.DAPO, "dapo/e1", clip.DAPO},
		{checkpoints.DAPO, "dapo/last-layer", clip.DAPO},
		{checkpoints.DAPO, "dapo/handcrafted", clip.DAPO},
		{checkpoints.AnomalyCLIP, "anomalyclip", clip.AnomalyCLIP},
	} {
		t.Run(tc.variant, func(t *testing.T) {
			m := tinyModel(t, tc.model)
			g := graphOf(t, m, tc.scheme, tc.variant)
			f := feeds(t, m, g, 4, 11)
			keep := []string{"text/" + clip.OutTextFeatures, "image/" + clip.OutImageEmbed}
			for _, l := range g.Head.Layers {
				keep = append(keep, "image/"+clip.OutPatch(l))
			}
			step, err := grad.Backward(g.Forward, train.OutLoss, g.Learnable, grad.Options{Keep: append(train.Terms(), keep...)})
			if err != nil {
				t.Fatal(err)
			}
			out := runModel(t, step, m.dir, f)
			towerParity(t, g, m, f, out)
			want := referenceLoss(t, g, m.man, f, out)
			for _, c := range []struct {
				name string
				want float64
			}{{train.OutLoss, want.total}, {train.OutImage, want.image}, {train.OutFocal, want.focal}, {train.OutDice, want.dice}} {
				got := float64(out[c.name].Float32[0])
				t.Logf("%s: graph %.7g, reference %.7g", c.name, got, c.want)
				if math.Abs(got-c.want) > 2e-5*math.Max(1, math.Abs(c.want)) {
					t.Errorf("%s = %.7g, reference %.7g", c.name, got, c.want)
				}
			}
		})
	}
}

// towerParity checks that the merged towers compute what the evaluation
// computes: the text features of the prompts the schemes assemble
// (dapo.PromptSet.Assemble, anomalyclip.Assemble) and the image outputs,
// each from the model directory's own graph.
func towerParity(t testing.TB, g *train.Graph, m tiny, f, out map[string]runner.Tensor) {
	t.Helper()
	table, err := m.man.ReadTokenEmbedding(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := tokenizer.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx := func(name string) clip.Tensor {
		x := f[name]
		if x.Float32 == nil { // handcrafted: no context tensor is read
			return clip.Tensor{Shape: []int{checkpoints.DAPOGroups, dapo.ContextTokens, m.man.Arch.TextWidth},
				Data: make([]float32, checkpoints.DAPOGroups*dapo.ContextTokens*m.man.Arch.TextWidth)}
		}
		shape := make([]int, len(x.Shape))
		for i, d := range x.Shape {
			shape[i] = int(d)
		}
		return clip.Tensor{Shape: shape, Data: x.Float32}
	}
	var embeds clip.Tensor
	var eot []int64
	if g.Head.Scheme == checkpoints.DAPO {
		embeds, eot, err = g.Head.Prompts.Assemble(tk, table, ctx(checkpoints.NormalCtx), ctx(checkpoints.AbnormalCtx))
	} else {
		embeds, eot, err = anomalyclip.Assemble(tk, table, ctx(checkpoints.NormalCtx), ctx(checkpoints.AbnormalCtx))
	}
	if err != nil {
		t.Fatal(err)
	}
	check := func(file string, in map[string]runner.Tensor, names ...string) {
		s, err := rt.Load(context.Background(), filepath.Join(m.dir, file))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		want, err := s.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			a, b := out[name].Float32, want[strings.TrimPrefix(strings.TrimPrefix(name, "text/"), "image/")].Float32
			if len(a) != len(b) || len(a) == 0 {
				t.Fatalf("%s: %d values, the tower gives %d", name, len(a), len(b))
			}
			var d float64
			for i := range a {
				d = math.Max(d, math.Abs(float64(a[i]-b[i])))
			}
			if d > 1e-5 {
				t.Errorf("%s differs from %s's by %.3g", name, file, d)
			}
		}
	}
	check(clip.TextFile, map[string]runner.Tensor{
		clip.InEmbeds:     {Shape: []int64{int64(embeds.Shape[0]), int64(embeds.Shape[1]), int64(embeds.Shape[2])}, Float32: embeds.Data},
		clip.InEOTIndex:   {Shape: []int64{int64(len(eot))}, Int64: eot},
		clip.InDeepTokens: f[checkpoints.TextDeep],
	}, "text/"+clip.OutTextFeatures)
	in := map[string]runner.Tensor{clip.InPixels: f[train.InPixels]}
	if g.Head.Scheme == checkpoints.DAPO {
		in[clip.InVisualPrompts] = f[checkpoints.VisualPrompts]
	}
	names := []string{"image/" + clip.OutImageEmbed}
	for _, l := range g.Head.Layers {
		names = append(names, "image/"+clip.OutPatch(l))
	}
	check(clip.ImageFile, in, names...)
}

type refLoss struct{ total, image, focal, dice float64 }

// referenceLoss is the official loss (DAPO train.py/loss.py, AnomalyCLIP
// train.py/loss.py) computed directly.
func referenceLoss(t testing.TB, g *train.Graph, man *clip.Manifest, f, out map[string]runner.Tensor) refLoss {
	t.Helper()
	h := g.Head
	c := h.Classes()
	de := man.EmbedDim
	tf := out["text/"+clip.OutTextFeatures].Float32
	normalize := func(v []float64) []float64 {
		var s float64
		for _, x := range v {
			s += x * x
		}
		n := math.Sqrt(s)
		o := make([]float64, len(v))
		for i, x := range v {
			o[i] = x / n
		}
		return o
	}
	dot := func(a, b []float64) float64 {
		var s float64
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	// Class vectors.
	classT := make([][]float64, c)
	groups := 1
	if h.Scheme == checkpoints.DAPO {
		groups = h.Prompts.Groups
	}
	for k := range c {
		acc := make([]float64, de)
		for e := range groups {
			for i := range de {
				acc[i] += float64(tf[(k*groups+e)*de+i])
			}
		}
		for i := range acc {
			acc[i] /= float64(groups)
		}
		classT[k] = normalize(acc)
	}
	abn := classT[1]
	if h.Scheme == checkpoints.DAPO {
		acc := make([]float64, de)
		for _, v := range classT[1:] {
			for i := range acc {
				acc[i] += v[i] / float64(c-1)
			}
		}
		abn = normalize(acc)
	}
	// Image cross-entropy.
	emb := out["image/"+clip.OutImageEmbed].Float32
	label := f[train.InLabel].Float32
	b := len(label)
	var ce float64
	for i := range b {
		v := make([]float64, de)
		for j := range de {
			v[j] = float64(emb[i*de+j])
		}
		v = normalize(v)
		l0, l1 := dot(v, classT[0])/train.Temperature, dot(v, abn)/train.Temperature
		mx := math.Max(l0, l1)
		lse := mx + math.Log(math.Exp(l0-mx)+math.Exp(l1-mx))
		if label[i] == 1 {
			ce += lse - l1
		} else {
			ce += lse - l0
		}
	}
	ce /= float64(b)
	// Pixel terms.
	gr, s := man.Grid, man.ImageSize
	mask, class := f[train.InMask].Float32, f[train.InClass].Int64
	var focal, dice float64
	for j, layer := range h.Layers {
		patch := out["image/"+clip.OutPatch(layer)].Float32
		skip, width := 0, man.PatchDim
		if man.PatchCLS {
			skip = 1
		}
		tokens := skip + gr*gr
		var layerFocal float64
		diceN, diceA := 0.0, 0.0
		for i := range b {
			planes := make([]float32, c*gr*gr)
			for p := range gr * gr {
				row := patch[(i*tokens+skip+p)*width : (i*tokens+skip+p+1)*width]
				x := make([]float64, de)
				if h.Scheme == checkpoints.DAPO {
					w := f[checkpoints.AdapterWeight(h.Adapters[j])].Float32
					bias := f[checkpoints.AdapterBias(h.Adapters[j])].Float32
					for o := range de {
						acc := float64(bias[o])
						for q := range width {
							acc += float64(w[o*width+q]) * float64(row[q])
						}
						x[o] = acc
					}
				} else {
					for o := range de {
						x[o] = float64(row[o])
					}
				}
				x = normalize(x)
				logits := make([]float64, c)
				mx := math.Inf(-1)
				for k := range c {
					logits[k] = dot(x, classT[k]) / train.Temperature
					mx = math.Max(mx, logits[k])
				}
				var z float64
				for k := range c {
					logits[k] = math.Exp(logits[k] - mx)
					z += logits[k]
				}
				for k := range c {
					planes[k*gr*gr+p] = float32(logits[k] / z)
				}
			}
			up := make([]float32, c*s*s)
			if err := postproc.Upsample(postproc.Grid{C: c, H: s, W: s, Data: up}, postproc.Grid{C: c, H: gr, W: gr, Data: planes}, h.AlignCorners); err != nil {
				t.Fatal(err)
			}
			var i0, s0, y0, ia, sa, ya float64
			for p := range s * s {
				m := float64(mask[i*s*s+p])
				gt := 0
				if m > 0.5 {
					gt = int(class[i])
				}
				var pt float64
				for k := range c {
					oh := 0.0
					if k == gt {
						oh = 1
					}
					oh = math.Min(math.Max(oh, train.FocalSmooth/float64(c-1)), 1-train.FocalSmooth)
					pt += oh * float64(up[k*s*s+p])
				}
				pt += train.FocalSmooth
				layerFocal += -math.Pow(1-pt, train.FocalGamma) * math.Log(pt)
				mn := float64(up[p])
				var ma float64
				for k := 1; k < c; k++ {
					ma += float64(up[k*s*s+p])
				}
				i0 += mn * (1 - m)
				s0 += mn
				y0 += 1 - m
				ia += ma * m
				sa += ma
				ya += m
			}
			diceN += (2*i0 + train.DiceSmooth) / (s0 + y0 + train.DiceSmooth)
			diceA += (2*ia + train.DiceSmooth) / (sa + ya + train.DiceSmooth)
		}
		focal += layerFocal / float64(b*s*s)
		dice += (1 - diceN/float64(b)) + (1 - diceA/float64(b))
	}
	return refLoss{total: train.LocalWeight*(focal+dice) + ce, image: ce, focal: focal, dice: dice}
}

// TestExternalData builds the training step from a model directory whose
// towers keep their weights as ONNX external data (as ViT-L's image tower
// must): the merged graph reads them from the directory and gives the
// loss and gradients of the inline build of the same weights.
func TestExternalData(t *testing.T) {
	race.SkipNumeric(t)
	inline := tinyModel(t, clip.DAPO)
	dir := t.TempDir()
	man, err := clip.BuildTiny(context.Background(), dir, 3, clip.Options{Variant: clip.DAPO, External: true})
	if err != nil {
		t.Fatal(err)
	}
	ext := tiny{dir, man}
	if _, err := os.Stat(filepath.Join(dir, clip.ImageFile+".data")); err != nil {
		t.Fatal(err)
	}
	var outs []map[string]runner.Tensor
	for _, m := range []tiny{inline, ext} {
		g := graphOf(t, m, checkpoints.DAPO, "")
		step, err := grad.Backward(g.Forward, train.OutLoss, g.Learnable, grad.Options{GradName: train.GradName})
		if err != nil {
			t.Fatal(err)
		}
		external := 0
		for _, init := range step.GetGraph().GetInitializer() {
			if len(init.GetExternalData()) > 0 {
				external++
			}
		}
		if (m.dir == dir) != (external > 0) {
			t.Errorf("%s: %d initializers stored as external data", m.dir, external)
		}
		outs = append(outs, runModel(t, step, m.dir, feeds(t, m, g, 2, 5)))
	}
	for name, a := range outs[0] {
		if !slices.Equal(a.Float32, outs[1][name].Float32) {
			t.Errorf("%s differs between the inline and the external-data model", name)
		}
	}
}

// TestRecompute checks that a recomputing step (the residual stream of
// every block kept, the rest recomputed) returns the same loss and
// gradients, bit for bit, as the step that keeps every activation, for
// both schemes; and that auto keeps the tiny model's small step as it is.
func TestRecompute(t *testing.T) {
	race.SkipNumeric(t)
	for _, scheme := range []string{checkpoints.DAPO, checkpoints.AnomalyCLIP} {
		v := clip.DAPO
		if scheme == checkpoints.AnomalyCLIP {
			v = clip.AnomalyCLIP
		}
		m := tinyModel(t, v)
		g := graphOf(t, m, scheme, "")
		if n := len(train.BlockInputs(g.Forward)); n != 8 {
			t.Fatalf("%s: %d block inputs, want 8 (4 per tower)", scheme, n)
		}
		f := feeds(t, m, g, 2, 5)
		var outs []map[string]runner.Tensor
		for _, r := range []train.Recompute{train.RecomputeOff, train.RecomputeOn, train.RecomputeAuto} {
			step, recomputes, err := train.Step(g, 2, r)
			if err != nil {
				t.Fatal(err)
			}
			if recomputes != (r == train.RecomputeOn) {
				t.Errorf("%s %s: recomputes %v", scheme, r, recomputes)
			}
			outs = append(outs, runModel(t, step, m.dir, f))
		}
		for name, a := range outs[0] {
			if !slices.Equal(a.Float32, outs[1][name].Float32) {
				t.Errorf("%s: %s differs with recomputation", scheme, name)
			}
		}
	}
	if _, err := train.ParseRecompute("sometimes"); err == nil {
		t.Error("no error for a bad recompute mode")
	}
}
