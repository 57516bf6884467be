package winclip

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/internal/npy"
)

// The expected values come from testdata/windows/reference.py (NumPy).
// Regenerate them with that script, never from this package's output.

// windowCase is one entry of testdata/windows/cases.json.
type windowCase struct {
	Kind, Name string
	Want       string
	Rows       []int
	GridH      int `json:"grid_h"`
	GridW      int `json:"grid_w"`
	K, Stride  int
	Patches    [][]int
	Scores     string
	Image      float64
	Scores2    string
	Scores3    string
	Multiscale string
	Maps       []string
}

func loadCases(t *testing.T, kind string) []windowCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "windows", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct{ Cases []windowCase }
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	var out []windowCase
	for _, c := range meta.Cases {
		if c.Kind == kind {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		t.Fatalf("cases.json has no %q cases", kind)
	}
	return out
}

func load(t *testing.T, name string) *npy.Array {
	t.Helper()
	a, err := npy.ReadFile(filepath.Join("testdata", "windows", name))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// compare checks got against want element by element, |g−w| ≤ 1e-6·|w|.
func compare(t *testing.T, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d values, want %d", len(got), len(want))
	}
	bad := 0
	for i, w := range want {
		if d := math.Abs(float64(got[i]) - float64(w)); !(d <= 1e-6*math.Abs(float64(w))) {
			if bad++; bad <= 5 {
				t.Errorf("value %d: got %v, want %v", i, got[i], w)
			}
		}
	}
}

// pick keeps the listed rows of a one-channel grid.
func pick(g postproc.Grid, rows []int) []float32 {
	if rows == nil {
		return g.Data
	}
	var out []float32
	for _, y := range rows {
		out = append(out, g.Data[y*g.W:(y+1)*g.W]...)
	}
	return out
}

// TestWindowErrors: bad geometry and mismatched slices are errors wrapping
// postproc.ErrShape where a size is at fault.
func TestWindowErrors(t *testing.T) {
	w2, err := NewWindows(3, 3, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		err   error
		shape bool // the error must wrap ErrShape
	}{
		{"windows: too large", func() error { _, err := NewWindows(3, 3, 4, 1); return err }(), true},
		{"windows: zero stride", func() error { _, err := NewWindows(3, 3, 2, 0); return err }(), true},
		{"windows: zero grid", func() error { _, err := NewWindows(0, 3, 1, 1); return err }(), true},
		{"harmonic: score count", HarmonicAggregate(make([]float32, 9), make([]float32, 3), w2), true},
		{"harmonic: dst size", HarmonicAggregate(make([]float32, 8), make([]float32, 4), w2), true},
		{"harmonic: hand-built windows out of range", HarmonicAggregate(make([]float32, 9), make([]float32, 1),
			Windows{GridH: 3, GridW: 3, K: 1, Stride: 1, N: 1, Patches: []int{9}}), true},
		{"harmonic: inconsistent windows", HarmonicAggregate(make([]float32, 9), make([]float32, 2),
			Windows{GridH: 3, GridW: 3, K: 2, Stride: 1, N: 2, Patches: []int{0, 1, 3}}), true},
		{"multi-scale: no maps", MultiScaleHarmonic(make([]float32, 4), 0.5), false},
		{"multi-scale: map size", MultiScaleHarmonic(make([]float32, 4), 0.5, make([]float32, 4), make([]float32, 3)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("no error")
			}
			if tt.shape != errors.Is(tt.err, postproc.ErrShape) {
				t.Errorf("errors.Is(ErrShape) = %v: %v", !tt.shape, tt.err)
			}
		})
	}
}

// TestAnomalibExamples checks the examples in anomalib's winclip/utils.py
// docstrings (make_masks, harmonic_aggregation), which the reference prints
// to four decimals.
func TestAnomalibExamples(t *testing.T) {
	masks := []struct {
		h, w, k, s int
		want       [][]int // make_masks(...) as printed: one row per position in the window
	}{
		{3, 3, 2, 1, [][]int{{0, 1, 3, 4}, {1, 2, 4, 5}, {3, 4, 6, 7}, {4, 5, 7, 8}}},
		{4, 4, 2, 1, [][]int{
			{0, 1, 2, 4, 5, 6, 8, 9, 10},
			{1, 2, 3, 5, 6, 7, 9, 10, 11},
			{4, 5, 6, 8, 9, 10, 12, 13, 14},
			{5, 6, 7, 9, 10, 11, 13, 14, 15}}},
		{4, 4, 2, 2, [][]int{{0, 2, 8, 10}, {1, 3, 9, 11}, {4, 6, 12, 14}, {5, 7, 13, 15}}},
	}
	for _, m := range masks {
		w, err := NewWindows(m.h, m.w, m.k, m.s)
		if err != nil {
			t.Fatal(err)
		}
		for j, row := range m.want { // make_masks is (k·k, n_windows): row j is patch j of every window
			for i, want := range row {
				if got := w.Window(i)[j]; got != want {
					t.Errorf("make_masks((%d,%d),%d,%d)[%d][%d] = %d, want %d", m.h, m.w, m.k, m.s, j, i, got, want)
				}
			}
		}
	}

	w, _ := NewWindows(3, 3, 2, 1)
	got := make([]float32, 9)
	if err := HarmonicAggregate(got, []float32{1, 0.75, 0.5, 0.25}, w); err != nil {
		t.Fatal(err)
	}
	want := []float64{1.0000, 0.8571, 0.7500, 0.6667, 0.4800, 0.3750, 0.5000, 0.3333, 0.2500}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 0.5e-4 {
			t.Errorf("patch %d: %.4f, anomalib prints %.4f", i, got[i], want[i])
		}
	}
}

func TestWindowTokens(t *testing.T) {
	w, err := NewWindows(Grid, Grid, Large, Stride)
	if err != nil {
		t.Fatal(err)
	}
	if w.N != 13*13 { // docs/methods.md#winclip-windows: 169 windows of 3×3
		t.Fatalf("%d windows of 3×3, docs/methods.md#winclip-windows says 169", w.N)
	}
	tok := w.Tokens()
	if len(tok) != w.N*10 {
		t.Fatalf("%d tokens, want %d", len(tok), w.N*10)
	}
	// The last window covers rows 12–14, columns 12–14: patches 192…224,
	// tokens 193…225 of the 226-token sequence.
	last := tok[len(tok)-10:]
	if want := []int{0, 193, 194, 195, 208, 209, 210, 223, 224, 225}; !slices.Equal(last, want) {
		t.Errorf("last window's tokens %v, want %v", last, want)
	}
	for i := range w.N {
		if tok[i*10] != 0 {
			t.Fatalf("window %d does not start with CLS", i)
		}
	}
	w2, _ := NewWindows(Grid, Grid, Small, Stride)
	if w2.N != 14*14 { // docs/methods.md#winclip-windows: 196 windows of 2×2
		t.Errorf("%d windows of 2×2, docs/methods.md#winclip-windows says 196", w2.N)
	}
}

// TestHarmonicEdges covers nan_to_num: uncovered patches and zero scores
// give 0; a NaN score gives 0 on its patches.
func TestHarmonicEdges(t *testing.T) {
	w, _ := NewWindows(3, 3, 1, 2) // windows on patches 0, 2, 6, 8
	dst := make([]float32, 9)
	nan := float32(math.NaN())
	if err := HarmonicAggregate(dst, []float32{0.5, 0, nan, 0.25}, w); err != nil {
		t.Fatal(err)
	}
	want := []float32{0.5, 0, 0, 0, 0, 0, 0, 0, 0.25}
	if !slices.Equal(dst, want) {
		t.Errorf("got %v, want %v", dst, want)
	}
}

func TestWindowsReference(t *testing.T) {
	for _, c := range loadCases(t, "windows") {
		t.Run(c.Name, func(t *testing.T) {
			w, err := NewWindows(c.GridH, c.GridW, c.K, c.Stride)
			if err != nil {
				t.Fatal(err)
			}
			if w.N != len(c.Patches) {
				t.Fatalf("%d windows, want %d", w.N, len(c.Patches))
			}
			for i, want := range c.Patches {
				if got := w.Window(i); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("window %d: %v, want %v", i, got, want)
				}
			}
		})
	}
}

func TestHarmonicReference(t *testing.T) {
	for _, c := range loadCases(t, "harmonic") {
		t.Run(c.Name, func(t *testing.T) {
			w, err := NewWindows(c.GridH, c.GridW, c.K, c.Stride)
			if err != nil {
				t.Fatal(err)
			}
			dst := make([]float32, c.GridH*c.GridW)
			if err := HarmonicAggregate(dst, load(t, c.Scores).Data, w); err != nil {
				t.Fatal(err)
			}
			compare(t, dst, load(t, c.Want).Data)
		})
	}
}

func TestMultiScaleReference(t *testing.T) {
	for _, c := range loadCases(t, "multiscale") {
		t.Run(c.Name, func(t *testing.T) {
			var maps [][]float32
			for _, m := range c.Maps {
				maps = append(maps, load(t, m).Data)
			}
			dst := make([]float32, len(maps[0]))
			if err := MultiScaleHarmonic(dst, float32(c.Image), maps...); err != nil {
				t.Fatal(err)
			}
			compare(t, dst, load(t, c.Want).Data)
		})
	}
}

// TestWinCLIPReference chains the WinCLIP steps as the scheme will: window
// scores → per-scale harmonic maps → multi-scale mean → 240×240.
func TestWinCLIPReference(t *testing.T) {
	for _, c := range loadCases(t, "winclip") {
		t.Run(c.Name, func(t *testing.T) {
			const g = Grid
			var maps [][]float32
			for _, s := range []struct {
				k      int
				scores string
			}{{Small, c.Scores2}, {Large, c.Scores3}} {
				w, err := NewWindows(g, g, s.k, Stride)
				if err != nil {
					t.Fatal(err)
				}
				m := make([]float32, g*g)
				if err := HarmonicAggregate(m, load(t, s.scores).Data, w); err != nil {
					t.Fatal(err)
				}
				maps = append(maps, m)
			}
			ms := make([]float32, g*g)
			if err := MultiScaleHarmonic(ms, float32(c.Image), maps...); err != nil {
				t.Fatal(err)
			}
			compare(t, ms, load(t, c.Multiscale).Data)
			out := postproc.Grid{C: 1, H: 240, W: 240, Data: make([]float32, 240*240)}
			if err := postproc.Upsample(out, postproc.Grid{C: 1, H: g, W: g, Data: ms}, false); err != nil {
				t.Fatal(err)
			}
			compare(t, pick(out, c.Rows), load(t, c.Want).Data)
		})
	}
}

// BenchmarkHarmonic is WinCLIP's per-image aggregation on the 15×15 grid.
func BenchmarkHarmonic(b *testing.B) {
	w2, _ := NewWindows(Grid, Grid, Small, Stride)
	w3, _ := NewWindows(Grid, Grid, Large, Stride)
	s2, s3 := make([]float32, w2.N), make([]float32, w3.N)
	for i := range s2 {
		s2[i] = 0.1 + float32(i%7)/10
	}
	for i := range s3 {
		s3[i] = 0.1 + float32(i%5)/10
	}
	m2, m3 := make([]float32, 225), make([]float32, 225)
	b.ReportAllocs()
	for b.Loop() {
		if err := HarmonicAggregate(m2, s2, w2); err != nil {
			b.Fatal(err)
		}
		if err := HarmonicAggregate(m3, s3, w3); err != nil {
			b.Fatal(err)
		}
		if err := MultiScaleHarmonic(m2, 0.4, m2, m3); err != nil {
			b.Fatal(err)
		}
	}
}
