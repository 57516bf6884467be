package anomalyclip

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/tokenizer"
)

// tolMap bounds |Go − reference| for scores and maps. Both round the
// float64 logits to float32 and then follow the same float32 steps
// (PyTorch's bilinear kernel, the map formula, scipy's two Gaussian
// passes); what differs is the order of the float64 sums in the norms,
// a few float32 ulps at most (values reach 4 with four layers).
const tolMap = 1.5e-6

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type promptRef struct {
	Texts    []string
	IDs      [][]int64
	EOT      []int64
	Assembly struct {
		Dim         int
		TableRows   map[string][]float32 `json:"table_rows"`
		NormalCtx   []float32            `json:"normal_ctx"`
		AbnormalCtx []float32            `json:"abnormal_ctx"`
		Embeds      []float32
	}
}

// TestPromptTokens checks the two prompts, their token ids and their
// end-of-text indices (15 and 16, docs/methods.md#anomalyclip-eot-index)
// against the reference
// tokenizer.
func TestPromptTokens(t *testing.T) {
	var ref promptRef
	readJSON(t, "prompts.json", &ref)
	texts := Texts()
	if !slices.Equal(texts[:], ref.Texts) {
		t.Fatalf("prompts %q, want %q", texts, ref.Texts)
	}
	tk, err := tokenizer.New()
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range texts {
		ids, err := tk.Tokenize(text, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.DeleteFunc(slices.Clone(ids), func(v int64) bool { return v == 0 }); !slices.Equal(got, ref.IDs[i]) {
			t.Errorf("%q: ids %v, want %v", text, got, ref.IDs[i])
		}
		if e := int64(tokenizer.EOTIndex(ids)); e != ref.EOT[i] {
			t.Errorf("%q: EOT index %d, want %d", text, e, ref.EOT[i])
		}
	}
	if !slices.Equal(ref.EOT, []int64{15, 16}) {
		t.Errorf("reference EOT indices %v, docs/methods.md#anomalyclip-eot-index says [15 16]", ref.EOT)
	}
}

// TestAssemble checks the spliced token embeddings against the prompt
// learner's cat([prefix, ctx, suffix]) in NumPy.
func TestAssemble(t *testing.T) {
	var ref promptRef
	readJSON(t, "prompts.json", &ref)
	a := ref.Assembly
	tk, err := tokenizer.New()
	if err != nil {
		t.Fatal(err)
	}
	table := clip.NewTensor(49408, a.Dim)
	for k, row := range a.TableRows {
		id, _ := strconv.Atoi(k)
		copy(table.Data[id*a.Dim:], row)
	}
	nctx := clip.Tensor{Shape: []int{ContextTokens, a.Dim}, Data: a.NormalCtx}
	actx := clip.Tensor{Shape: []int{ContextTokens, a.Dim}, Data: a.AbnormalCtx}
	embeds, eot, err := Assemble(tk, table, nctx, actx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(embeds.Shape, []int{2, tokenizer.ContextLength, a.Dim}) {
		t.Errorf("embeds shape %v", embeds.Shape)
	}
	if !slices.Equal(embeds.Data, a.Embeds) {
		t.Error("assembled embeddings differ from the reference")
	}
	if !slices.Equal(eot, ref.EOT) {
		t.Errorf("EOT %v, want %v", eot, ref.EOT)
	}
	for name, c := range map[string][2]clip.Tensor{
		"short normal context":    {{Shape: []int{11, a.Dim}, Data: a.NormalCtx[:11*a.Dim]}, actx},
		"wide abnormal context":   {nctx, {Shape: []int{ContextTokens, a.Dim + 1}, Data: make([]float32, ContextTokens*(a.Dim+1))}},
		"grouped context":         {{Shape: []int{1, ContextTokens, a.Dim}, Data: a.NormalCtx}, actx},
		"data shorter than shape": {{Shape: []int{ContextTokens, a.Dim}, Data: a.NormalCtx[:5]}, actx},
	} {
		if _, _, err := Assemble(tk, table, c[0], c[1]); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

type scoringCase struct {
	Name       string
	Grid, Size int
	Dim        int
	Layers     []int
	Smooth     bool
	Text       []float32
	ImageEmbed []float32 `json:"image_embed"`
	Patches    map[string][]float32
	ImageScore float32 `json:"image_score"`
	Sum        []float32
	Map        []float32
}

func readScoring(t *testing.T) []scoringCase {
	var ref struct{ Cases []scoringCase }
	readJSON(t, "scoring.json", &ref)
	if len(ref.Cases) == 0 {
		t.Fatal("no scoring cases")
	}
	return ref.Cases
}

func (c scoringCase) features() bench.Features {
	f := bench.Features{Tensors: []featcache.Tensor{{Name: clip.OutImageEmbed, Shape: []int{c.Dim}, Data: c.ImageEmbed}}}
	for k, p := range c.Patches {
		l, _ := strconv.Atoi(k)
		f.Tensors = append(f.Tensors, featcache.Tensor{Name: clip.OutPatch(l), Shape: []int{len(p) / c.Dim, c.Dim}, Data: p})
	}
	return f
}

// textMat normalises the raw text features as textFeatures does.
func (c scoringCase) textMat(t *testing.T) postproc.Mat {
	m := postproc.Mat{Rows: 2, Cols: c.Dim, Data: slices.Clone(c.Text)}
	if err := postproc.NormalizeRows(m); err != nil {
		t.Fatal(err)
	}
	return m
}

var untrained = &checkpoints.Learned{Scheme: checkpoints.AnomalyCLIP, Seed: 1}

func maxAbs(a, b []float32) (float64, int) {
	worst, at := 0.0, -1
	for i := range a {
		if d := math.Abs(float64(a[i]) - float64(b[i])); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	return worst, at
}

// TestScoring runs the scorer on given features and checks the image
// score, the summed map before smoothing and the final map against
// test.py's formulas in NumPy/SciPy.
func TestScoring(t *testing.T) {
	ctx := context.Background()
	for _, c := range readScoring(t) {
		t.Run(c.Name, func(t *testing.T) {
			for _, smooth := range []bool{false, true} {
				want := c.Sum
				if smooth {
					if !c.Smooth {
						continue
					}
					want = c.Map
				}
				s, err := New(Options{Learned: untrained, Layers: c.Layers, NoSmoothing: !smooth})
				if err != nil {
					t.Fatal(err)
				}
				sc, err := s.newScorer(c.textMat(t), c.Layers, c.Grid, c.Size, true)
				if err != nil {
					t.Fatal(err)
				}
				out, err := sc.Score(ctx, c.features())
				if err != nil {
					t.Fatal(err)
				}
				if d := math.Abs(float64(out.Image - c.ImageScore)); d > tolMap {
					t.Errorf("image score %v, want %v", out.Image, c.ImageScore)
				}
				if len(out.Map) != c.Size*c.Size {
					t.Fatalf("map has %d values, want %d", len(out.Map), c.Size*c.Size)
				}
				d, i := maxAbs(out.Map, want)
				if d > tolMap {
					t.Errorf("smoothing %v: map[%d] = %v, want %v (|Δ| %.3g)", smooth, i, out.Map[i], want[i], d)
				}
				t.Logf("smoothing %v: max |Δ| %.3g", smooth, d)
				if out.ClassMaps != nil || out.ClassScores != nil {
					t.Error("AnomalyCLIP has no multi-type output")
				}
			}
		})
	}
}

func TestScoreErrors(t *testing.T) {
	c := readScoring(t)[0]
	s, err := New(Options{Learned: untrained})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.newScorer(postproc.Mat{Rows: 3, Cols: 2, Data: make([]float32, 6)}, []int{24}, 6, 40, true); err == nil {
		t.Error("three text rows: no error")
	}
	if _, err := s.newScorer(c.textMat(t), nil, 6, 40, true); err == nil {
		t.Error("no layers: no error")
	}
	sc, err := s.newScorer(c.textMat(t), c.Layers, c.Grid, c.Size, true)
	if err != nil {
		t.Fatal(err)
	}
	full := c.features()
	without := func(name string) bench.Features {
		var f bench.Features
		for _, x := range full.Tensors {
			if x.Name != name {
				f.Tensors = append(f.Tensors, x)
			}
		}
		return f
	}
	noCLS := c.features()
	for i, x := range noCLS.Tensors {
		if x.Name == clip.OutPatch(24) {
			noCLS.Tensors[i].Data = x.Data[c.Dim:]
		}
	}
	for name, f := range map[string]bench.Features{
		"no image feature":                without(clip.OutImageEmbed),
		"no layer 24":                     without(clip.OutPatch(24)),
		"patches without the class token": noCLS,
		"empty":                           {},
	} {
		if _, err := sc.Score(context.Background(), f); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  Options
		want string
	}{
		{"no learned tensors", Options{}, "no learned tensors"},
		{"DAPO tensors", Options{Learned: &checkpoints.Learned{Scheme: checkpoints.DAPO}}, "for dapo"},
		{"empty layers", Options{Learned: untrained, Layers: []int{}}, "empty layer list"},
		{"layer 0", Options{Learned: untrained, Layers: []int{0}}, "1-indexed"},
		{"layer twice", Options{Learned: untrained, Layers: []int{24, 24}}, "twice"},
	} {
		_, err := New(c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestVariants(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Variants() {
		if seen[v.Name] {
			t.Errorf("variant %s listed twice", v.Name)
		}
		seen[v.Name] = true
		o, err := Parse(v.Name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if o.Learned != nil {
			t.Errorf("%s: Parse set learned tensors", v.Name)
		}
		o.Learned = untrained
		s, err := New(o)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if s.Name() != v.Name {
			t.Errorf("scheme name %q, want %q", s.Name(), v.Name)
		}
		if got := s.Settings()["prompts"]; got != "untrained (seed 1)" {
			t.Errorf("%s: prompts setting %q, want the untrained label", v.Name, got)
		}
	}
	for _, c := range []struct {
		name   string
		layers []int
		ok     bool
	}{
		{"anomalyclip/layers-24", []int{24}, true},
		{"anomalyclip/layers-12-24", []int{12, 24}, true},
		{"anomalyclip/layers-", nil, false},
		{"anomalyclip/layers-6-x", nil, false},
		{"anomalyclip/layers-06", nil, false},
		{"anomalyclip/layers-0", nil, false},
		{"anomalyclip/few-shot", nil, false},
	} {
		o, err := Parse(c.name, Options{})
		if (err == nil) != c.ok || !slices.Equal(o.Layers, c.layers) {
			t.Errorf("Parse(%q) = %v, %v", c.name, o.Layers, err)
		}
	}
	s, _ := New(Options{Learned: untrained})
	if s.Name() != "anomalyclip" || s.Settings()["layers"] != "model feature layers" {
		t.Errorf("default: name %q, settings %v", s.Name(), s.Settings())
	}
}
