package checkpoints

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/clip"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// twoPointTable is a [vocab, width] table whose column j alternates
// between mu(j)+a(j) and mu(j)−a(j) over an even number of rows, so its
// column mean is exactly mu(j) and its unbiased standard deviation is
// a(j)·sqrt(vocab/(vocab−1)). The columns differ widely, so a draw that
// used one mean and spread for all columns would fail the checks.
func twoPointTable(vocab, width int) (clip.Tensor, []float64, []float64) {
	t := clip.NewTensor(vocab, width)
	mu, sd := make([]float64, width), make([]float64, width)
	for j := range width {
		m, a := float64(j-width/2)/4, float64(j+1)/16 // exact in float32
		mu[j], sd[j] = m, a*math.Sqrt(float64(vocab)/float64(vocab-1))
		for r := range vocab {
			if r%2 == 0 {
				t.Data[r*width+j] = float32(m + a)
			} else {
				t.Data[r*width+j] = float32(m - a)
			}
		}
	}
	return t, mu, sd
}

func TestColumnStats(t *testing.T) {
	table, mu, sd := twoPointTable(6, 5)
	mean, std, err := columnStats(table, 6, 5)
	if err != nil {
		t.Fatal(err)
	}
	for j := range mu {
		if math.Abs(mean[j]-mu[j]) > 1e-12 || math.Abs(std[j]-sd[j]) > 1e-12 {
			t.Errorf("column %d: mean %v std %v, want %v %v", j, mean[j], std[j], mu[j], sd[j])
		}
	}
	for _, c := range []struct {
		t            clip.Tensor
		vocab, width int
		want         string
	}{
		{clip.NewTensor(6, 4), 6, 5, "shape [6 4]"},
		{clip.NewTensor(30), 6, 5, "shape [30]"},
		{clip.Tensor{Shape: []int{6, 5}, Data: make([]float32, 7)}, 6, 5, "7 values"},
		{clip.NewTensor(1, 5), 1, 5, "two"},
	} {
		if _, _, err := columnStats(c.t, c.vocab, c.width); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("columnStats(%v): error %v, want one mentioning %q", c.t.Shape, err, c.want)
		}
	}
}

// TestUntrainedDAPO checks the distributions of DAPO's initial tensors
// against the rules of DAPO's prompt learner and visual prompts
// (docs/methods.md#dapo-prompt-init, docs/methods.md#dapo-visual-prompt-init) and torch.nn.Linear, with bounds of about five standard errors.
func TestUntrainedDAPO(t *testing.T) {
	_, m := tinyModel(t, clip.DAPO)
	table, mu, sd := twoPointTable(m.Arch.VocabSize, m.Arch.TextWidth)
	l, err := Untrained(DAPO, m, table, 7)
	if err != nil {
		t.Fatal(err)
	}
	if l.Trained || l.Seed != 7 || l.Source != "" || l.Label() != "untrained (seed 7)" {
		t.Errorf("provenance: trained=%v seed=%d source=%q label=%q", l.Trained, l.Seed, l.Source, l.Label())
	}
	if err := l.Check(m); err != nil {
		t.Fatal(err)
	}

	// Context and deep text tokens: randn·std + mean per dimension.
	w := m.Arch.TextWidth
	var z []float64
	colSum, colN := make([]float64, w), 0
	for _, name := range []string{NormalCtx, AbnormalCtx, TextDeep} {
		data := l.Tensors[name].Data
		for i, x := range data {
			j := i % w
			z = append(z, (float64(x)-mu[j])/sd[j])
			colSum[j] += float64(x)
		}
		colN += len(data) / w
	}
	mean, std := meanStd(z)
	if n := float64(len(z)); math.Abs(mean) > 5/math.Sqrt(n) || math.Abs(std-1) > 5/math.Sqrt(2*n) {
		t.Errorf("standardised context tokens: mean %.4f std %.4f over %d values, want 0 and 1", mean, std, len(z))
	}
	for j := range w {
		if got := colSum[j] / float64(colN); math.Abs(got-mu[j]) > 5*sd[j]/math.Sqrt(float64(colN)) {
			t.Errorf("dimension %d: context mean %.4f, want the table's %.4f (std %.4f)", j, got, mu[j], sd[j])
		}
	}

	// Visual prompts: U(−v, v), v = sqrt(6/(3·patch²+Dv)).
	v := math.Sqrt(6 / float64(3*m.Arch.PatchSize*m.Arch.PatchSize+m.Arch.VisionWidth))
	checkUniform(t, VisualPrompts, l.Tensors[VisualPrompts].Data, v)

	// Adapters: nn.Linear's kaiming_uniform(a=√5) weight and its bias,
	// both U(−1/sqrt(in), 1/sqrt(in)) with in = Dv.
	var ws, bs []float32
	for i := range len(m.FeatureLayers) {
		ws = append(ws, l.Tensors[AdapterWeight(i)].Data...)
		bs = append(bs, l.Tensors[AdapterBias(i)].Data...)
	}
	bound := 1 / math.Sqrt(float64(m.Arch.VisionWidth))
	checkUniform(t, "adapter weights", ws, bound)
	checkUniform(t, "adapter biases", bs, bound)
}

func TestVisualBound(t *testing.T) {
	// docs/methods.md#dapo-visual-prompt-init: sqrt(6/(3·14·14+1024)) ≈ 0.0610
	// for ViT-L/14.
	if got := visualBound(14, 1024); math.Abs(got-0.0610) > 5e-5 {
		t.Errorf("visualBound(14, 1024) = %v, want ≈ 0.0610", got)
	}
}

func TestUntrainedAnomalyCLIP(t *testing.T) {
	_, m := tinyModel(t, clip.AnomalyCLIP)
	l, err := Untrained(AnomalyCLIP, m, clip.Tensor{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(m); err != nil {
		t.Fatal(err)
	}
	var all []float64
	for _, name := range l.Names() {
		for _, x := range l.Tensors[name].Data {
			all = append(all, float64(x))
		}
	}
	mean, std := meanStd(all)
	n := float64(len(all))
	if math.Abs(mean) > 5*0.02/math.Sqrt(n) || math.Abs(std/0.02-1) > 5/math.Sqrt(2*n) {
		t.Errorf("mean %.5f std %.5f over %d values, want N(0, 0.02²)", mean, std, len(all))
	}
	// the official sizes need no model and no table
	off, err := Untrained(AnomalyCLIP, nil, clip.Tensor{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := off.Check(nil); err != nil {
		t.Error(err)
	}
}

func meanStd(x []float64) (mean, std float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		std += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(std / float64(len(x)-1))
}

// checkUniform checks values drawn from U(−b, b): all within, the extreme
// near b, mean near 0 and variance near b²/3.
func checkUniform(t *testing.T, name string, data []float32, b float64) {
	t.Helper()
	x := make([]float64, len(data))
	maxAbs := 0.0
	for i, v := range data {
		x[i] = float64(v)
		if math.Abs(x[i]) > b {
			t.Errorf("%s[%d] = %v outside ±%v", name, i, v, b)
			return
		}
		maxAbs = max(maxAbs, math.Abs(x[i]))
	}
	n := float64(len(x))
	mean, std := meanStd(x)
	if maxAbs < b*(1-10/n) {
		t.Errorf("%s: largest |value| %v, want near the bound %v", name, maxAbs, b)
	}
	if sigma := b / math.Sqrt(3); math.Abs(mean) > 5*sigma/math.Sqrt(n) || math.Abs(std/sigma-1) > 0.15 {
		t.Errorf("%s: mean %.4f std %.4f, want 0 and %.4f", name, mean, std, sigma)
	}
}

// TestUntrainedDeterministic checks that a seed fixes every byte, and
// pins the bytes with a golden file so that no change of generator goes
// unnoticed.
func TestUntrainedDeterministic(t *testing.T) {
	_, dm := tinyModel(t, clip.DAPO)
	_, am := tinyModel(t, clip.AnomalyCLIP)
	table, _, _ := twoPointTable(dm.Arch.VocabSize, dm.Arch.TextWidth)
	got := map[string]map[string]string{}
	for _, c := range []struct {
		key    string
		scheme string
		m      *clip.Manifest
		seed   uint64
	}{
		{"dapo seed 1", DAPO, dm, 1}, {"dapo seed 2", DAPO, dm, 2}, {"anomalyclip seed 1", AnomalyCLIP, am, 1},
	} {
		a, err := Untrained(c.scheme, c.m, table, c.seed)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Untrained(c.scheme, c.m, table, c.seed)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: two calls differ", c.key)
		}
		got[c.key] = map[string]string{}
		for _, name := range a.Names() {
			got[c.key][name] = tensorSHA256(a.Tensors[name].Data)
		}
	}
	for name, sum := range got["dapo seed 1"] {
		if got["dapo seed 2"][name] == sum {
			t.Errorf("%s: seeds 1 and 2 give the same values", name)
		}
	}
	if got["dapo seed 1"][NormalCtx] == got["dapo seed 1"][AbnormalCtx] {
		t.Error("normal and abnormal contexts drawn from the same stream")
	}
	golden := filepath.Join("testdata", "untrained.golden.json")
	if *update {
		data, _ := json.MarshalIndent(got, "", " ")
		if err := os.WriteFile(golden, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]map[string]string
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("untrained tensors differ from %s (run go test -update if the change is intended):\ngot  %v\nwant %v", golden, got, want)
	}
}

func TestUntrainedErrors(t *testing.T) {
	_, dm := tinyModel(t, clip.DAPO)
	for _, c := range []struct {
		name   string
		scheme string
		m      *clip.Manifest
		table  clip.Tensor
		want   string
	}{
		{"scheme", "winclip", dm, clip.Tensor{}, `unknown scheme "winclip"`},
		{"no table", DAPO, dm, clip.Tensor{}, "token-embedding table has shape []"},
		{"table width", DAPO, dm, clip.NewTensor(dm.Arch.VocabSize, 8), "want [49408 32]"},
		{"variant", AnomalyCLIP, dm, clip.Tensor{}, "scheme anomalyclip needs a model directory of variant anomalyclip, not dapo"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Untrained(c.scheme, c.m, c.table, 1)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}
