package winclip

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
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/tokenizer"
)

// Tolerances against testdata/reference.py. The reference rounds the
// float64 logits to float32 and upsamples with PyTorch's float32 kernel,
// as the Go code does; what differs is the order of float64 sums in the
// norms and the mean, so scores agree to a few float32 ulps.
const (
	tolEmbedding = 1e-6 // relative, class embeddings (mean of 5–8 rows)
	tolScore     = 2e-6 // absolute, probabilities and maps in [0, 1]
)

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

func TestPrompts(t *testing.T) {
	var ref struct {
		Ensembles []struct {
			Object, Templates string
			Normal, Anomalous []string
		}
	}
	readJSON(t, "prompts.json", &ref)
	if len(ref.Ensembles) == 0 {
		t.Fatal("no reference ensembles")
	}
	for _, e := range ref.Ensembles {
		tpl, err := Templates(e.Templates)
		if err != nil {
			t.Fatal(err)
		}
		n, a, err := Prompts(e.Object, tpl)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(n, e.Normal) {
			t.Errorf("%s/%s: normal prompts differ:\n got %q\nwant %q", e.Object, e.Templates, n, e.Normal)
		}
		if !slices.Equal(a, e.Anomalous) {
			t.Errorf("%s/%s: anomalous prompts differ:\n got %q\nwant %q", e.Object, e.Templates, a, e.Anomalous)
		}
	}
	// The counts of docs/methods.md#winclip-templates: 7 and 4 states × 21 or
	// 22 templates.
	for name, want := range map[string][2]int{TemplatesAnomalib: {147, 84}, TemplatesOfficial: {154, 88}} {
		tpl, _ := Templates(name)
		n, a, _ := Prompts("x", tpl)
		if len(n) != want[0] || len(a) != want[1] {
			t.Errorf("%s: %d normal and %d anomalous prompts, want %v", name, len(n), len(a), want)
		}
	}
}

// TestPromptTokens checks the token ids and end-of-text indices of one
// whole ensemble against the reference tokenizer, and that TextInputs
// gathers at those indices.
func TestPromptTokens(t *testing.T) {
	var ref struct {
		Tokens struct {
			Object, Templates string
			IDs               [][]int64
			EOT               []int64
		}
	}
	readJSON(t, "prompts.json", &ref)
	tk, err := tokenizer.New()
	if err != nil {
		t.Fatal(err)
	}
	tpl, _ := Templates(ref.Tokens.Templates)
	n, a, err := Prompts(ref.Tokens.Object, tpl)
	if err != nil {
		t.Fatal(err)
	}
	all := append(n, a...)
	if len(all) != len(ref.Tokens.IDs) {
		t.Fatalf("%d prompts, reference has %d", len(all), len(ref.Tokens.IDs))
	}
	for i, p := range all {
		ids, err := tk.Tokenize(p, true)
		if err != nil {
			t.Fatal(err)
		}
		got := slices.DeleteFunc(slices.Clone(ids), func(v int64) bool { return v == 0 })
		if !slices.Equal(got, ref.Tokens.IDs[i]) {
			t.Errorf("%q: ids %v, want %v", p, got, ref.Tokens.IDs[i])
		}
		if e := int64(tokenizer.EOTIndex(ids)); e != ref.Tokens.EOT[i] {
			t.Errorf("%q: EOT index %d, want %d", p, e, ref.Tokens.EOT[i])
		}
	}
	table := clip.NewTensor(49408, 2)
	_, eot, err := clip.TextInputs(tk, table, all)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(eot, ref.Tokens.EOT) {
		t.Errorf("TextInputs EOT %v, want %v", eot, ref.Tokens.EOT)
	}
}

type scoringCase struct {
	Name           string
	Grid, Size     int
	Dim            int
	Scales         []int
	NNormal        int       `json:"n_normal"`
	PromptFeatures []float32 `json:"prompt_features"`
	Text           []float32
	ImageEmbed     []float32 `json:"image_embed"`
	Windows        map[string][]float32
	ImageScore     float32              `json:"image_score"`
	WindowScores   map[string][]float32 `json:"window_scores"`
	GridMap        []float32            `json:"grid_map"`
	Map            []float32
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
	for k, w := range c.Windows {
		n, _ := strconv.Atoi(k)
		f.Tensors = append(f.Tensors, featcache.Tensor{Name: WindowFeature(n), Shape: []int{len(w) / c.Dim, c.Dim}, Data: w})
	}
	return f
}

func (c scoringCase) options() Options {
	if len(c.Scales) == 0 {
		return Options{NoWindows: true}
	}
	return Options{Scales: c.Scales}
}

func maxAbs(a, b []float32) (float64, int) {
	worst, at := 0.0, -1
	for i := range a {
		if d := math.Abs(float64(a[i]) - float64(b[i])); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	return worst, at
}

// TestScoring runs the scorer end to end on given embeddings: class
// embeddings from prompt embeddings, window class scores, harmonic maps,
// the multi-scale mean and the upsampled map, against anomalib's formulas
// in NumPy.
func TestScoring(t *testing.T) {
	for _, c := range readScoring(t) {
		t.Run(c.Name, func(t *testing.T) {
			text, err := ClassEmbeddings(clip.Tensor{Shape: []int{len(c.PromptFeatures) / c.Dim, c.Dim}, Data: c.PromptFeatures}, c.NNormal)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range text.Data {
				if d := math.Abs(float64(v - c.Text[i])); d > tolEmbedding*math.Max(1, math.Abs(float64(c.Text[i]))) {
					t.Fatalf("class embedding %d: %v, want %v", i, v, c.Text[i])
				}
			}
			s, err := New(c.options())
			if err != nil {
				t.Fatal(err)
			}
			sc, err := s.newScorer(text, c.Grid, c.Size)
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range c.WindowScores {
				got, err := sc.classScores(c.Windows[k], len(want))
				if err != nil {
					t.Fatal(err)
				}
				if d, i := maxAbs(got, want); d > tolScore {
					t.Errorf("scale %s: window %d score %v, want %v", k, i, got[i], want[i])
				}
			}
			out, err := sc.Score(context.Background(), c.features())
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(float64(out.Image - c.ImageScore)); d > tolScore {
				t.Errorf("image score %v, want %v", out.Image, c.ImageScore)
			}
			if len(out.Map) != c.Size*c.Size {
				t.Fatalf("map has %d values, want %d", len(out.Map), c.Size*c.Size)
			}
			d, i := maxAbs(out.Map, c.Map)
			if d > tolScore {
				t.Errorf("map[%d] = %v, want %v (|Δ| %.3g)", i, out.Map[i], c.Map[i], d)
			}
			t.Logf("max |Δ| map %.3g", d)
			if out.ClassMaps != nil || out.ClassScores != nil {
				t.Error("WinCLIP has no multi-type output")
			}
		})
	}
}

// TestGatherWindows checks the window token sequences against anomalib's
// index_select at [0] + (mask + 1).
func TestGatherWindows(t *testing.T) {
	var ref struct {
		Batch, Grid, Width int
		Tokens             []float32
		Windows            map[string]struct {
			N     int
			Index [][]int
			Want  []float32
		}
	}
	readJSON(t, "gather.json", &ref)
	seq := 1 + ref.Grid*ref.Grid
	for k, r := range ref.Windows {
		n, _ := strconv.Atoi(k)
		w, err := NewWindows(ref.Grid, ref.Grid, n, Stride)
		if err != nil {
			t.Fatal(err)
		}
		if w.N != r.N {
			t.Fatalf("%s: %d windows, want %d", k, w.N, r.N)
		}
		got, err := gatherWindows(ref.Tokens, ref.Batch, seq, ref.Width, w)
		if err != nil {
			t.Fatal(err)
		}
		want := []int64{int64(ref.Batch * r.N), int64(1 + n*n), int64(ref.Width)}
		if !slices.Equal(got.Shape, want) {
			t.Errorf("%s: shape %v, want %v", k, got.Shape, want)
		}
		if !slices.Equal(got.Float32, r.Want) {
			t.Errorf("%s: gathered tokens differ from the reference", k)
		}
	}
	w, _ := NewWindows(4, 4, 2, 1)
	if _, err := gatherWindows(make([]float32, 10), 1, 17, 3, w); err == nil {
		t.Error("short token array: no error")
	}
	if _, err := gatherWindows(make([]float32, 2*5*3), 2, 5, 3, w); err == nil {
		t.Error("windows of a larger grid than the sequence: no error")
	}
}

func TestNewErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  Options
		want string
	}{
		{"unknown templates", Options{Templates: "clip-80"}, "unknown template list"},
		{"scale not extracted", Options{Scales: []int{4}}, "only [2 3]"},
		{"scale twice", Options{Scales: []int{2, 2}}, "given twice"},
		{"empty scales", Options{Scales: []int{}}, "NoWindows"},
		{"scales and no windows", Options{Scales: []int{2}, NoWindows: true}, "no windows"},
		{"blank object", Options{Object: "  "}, "blank object"},
	} {
		_, err := New(c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if _, _, err := Prompts("", []string{"a {}."}); err == nil {
		t.Error("empty object word: no error")
	}
	if _, _, err := Prompts("x", nil); err == nil {
		t.Error("no templates: no error")
	}
}

func TestScoreErrors(t *testing.T) {
	c := readScoring(t)[0]
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	text, _ := ClassEmbeddings(clip.Tensor{Shape: []int{len(c.PromptFeatures) / c.Dim, c.Dim}, Data: c.PromptFeatures}, c.NNormal)
	if _, err := s.newScorer(text, 1, 10); err == nil || !strings.Contains(err.Error(), "patch grid") {
		t.Errorf("2×2 windows on a 1×1 grid: error %v", err)
	}
	if _, err := s.newScorer(postproc.Mat{Rows: 3, Cols: 2, Data: make([]float32, 6)}, 5, 10); err == nil {
		t.Error("three class embeddings: no error")
	}
	sc, err := s.newScorer(text, c.Grid, c.Size)
	if err != nil {
		t.Fatal(err)
	}
	full := c.features()
	drop := func(name string) bench.Features {
		var f bench.Features
		for _, x := range full.Tensors {
			if x.Name != name {
				f.Tensors = append(f.Tensors, x)
			}
		}
		return f
	}
	short := c.features()
	short.Tensors[0].Data = short.Tensors[0].Data[:3]
	for name, f := range map[string]bench.Features{
		"no image embedding":    drop(clip.OutImageEmbed),
		"no 3×3 windows":        drop(WindowFeature(3)),
		"short image embedding": short,
		"empty":                 {},
	} {
		if _, err := sc.Score(context.Background(), f); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := ClassEmbeddings(clip.Tensor{Shape: []int{3, 2}, Data: make([]float32, 6)}, 3); err == nil {
		t.Error("no anomalous rows: no error")
	}
}

func TestVariants(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Variants() {
		if seen[v.Name] {
			t.Errorf("variant %s listed twice", v.Name)
		}
		seen[v.Name] = true
		if v.Name != "winclip" && !strings.HasPrefix(v.Name, "winclip/") {
			t.Errorf("variant %s: name does not start with winclip/", v.Name)
		}
		o, err := Parse(v.Name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(o)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if s.Name() != v.Name {
			t.Errorf("scheme name %q, want %q", s.Name(), v.Name)
		}
		if len(s.Settings()) == 0 {
			t.Errorf("%s: no settings", v.Name)
		}
	}
	if _, err := Parse("winclip/few-shot", Options{}); err == nil || !strings.Contains(err.Error(), "winclip/no-windows") {
		t.Errorf("unknown variant: error %v", err)
	}
	if s, _ := New(Options{}); s.Name() != "winclip" {
		t.Errorf("default name %q", s.Name())
	}
}
