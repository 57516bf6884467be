package postproc

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/dapobench/dapobench/internal/npy"
)

// The expected values come from testdata/reference.py (NumPy and SciPy; a
// NumPy re-implementation of PyTorch's bilinear kernel). Regenerate them
// with that script, never from this package's output.

// relTol is the largest relative error accepted on any float32 output.
const relTol = 1e-6

// refCase is one entry of testdata/cases.json; each kind uses some fields.
type refCase struct {
	Kind, Name   string
	X, T, Want   string
	Probs        string
	Temperature  float64
	AlignCorners bool `json:"align_corners"`
	C            int
	InH          int `json:"in_h"`
	InW          int `json:"in_w"`
	OutH         int `json:"out_h"`
	OutW         int `json:"out_w"`
	Rows         []int
	Sigma        float64
	Truncate     float64
	H, W         int
	Pattern      string
	Weights      []float64
	GridH        int `json:"grid_h"`
	GridW        int `json:"grid_w"`
	K, Stride    int
	Patches      [][]int
	Scores       string
	Image        float64
	Scores2      string
	Scores3      string
	Multiscale   string
	Maps         []string
}

func loadCases(t *testing.T, kind string) []refCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct{ Cases []refCase }
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	var out []refCase
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
	a, err := npy.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// ulps is the distance between a and b in units in the last place.
func ulps(a, b float32) int64 {
	ia, ib := int64(math.Float32bits(a)), int64(math.Float32bits(b))
	if ia < 0x80000000 != (ib < 0x80000000) { // opposite signs: distance through zero
		return (ia & 0x7fffffff) + (ib & 0x7fffffff)
	}
	d := ia - ib
	if d < 0 {
		d = -d
	}
	return d
}

// compare checks got against want element by element, |g−w| ≤ relTol·|w|,
// and logs the largest relative error and ULP distance.
func compare(t *testing.T, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d values, want %d", len(got), len(want))
	}
	var worstRel float64
	var worstULP int64
	bad := 0
	for i, w := range want {
		g := got[i]
		if g == w {
			continue
		}
		d := math.Abs(float64(g) - float64(w))
		rel := d / math.Abs(float64(w))
		worstRel = max(worstRel, rel)
		worstULP = max(worstULP, ulps(g, w))
		if !(d <= relTol*math.Abs(float64(w))) {
			if bad++; bad <= 5 {
				t.Errorf("value %d: got %v, want %v (relative error %.3g)", i, g, w, rel)
			}
		}
	}
	if bad > 5 {
		t.Errorf("… %d values out of tolerance in all", bad)
	}
	t.Logf("%d values: max relative error %.3g, max %d ulp", len(want), worstRel, worstULP)
}

func TestNormalizeRowsReference(t *testing.T) {
	for _, c := range loadCases(t, "normalize") {
		t.Run(c.Name, func(t *testing.T) {
			x := load(t, c.X)
			m := Mat{Rows: x.Shape[0], Cols: x.Shape[1], Data: x.Data}
			if err := NormalizeRows(m); err != nil {
				t.Fatal(err)
			}
			compare(t, m.Data, load(t, c.Want).Data)
		})
	}
}

func TestLogitsReference(t *testing.T) {
	for _, c := range loadCases(t, "logits") {
		t.Run(c.Name, func(t *testing.T) {
			x, tt := load(t, c.X), load(t, c.T)
			xm := Mat{Rows: x.Shape[0], Cols: x.Shape[1], Data: x.Data}
			tm := Mat{Rows: tt.Shape[0], Cols: tt.Shape[1], Data: tt.Data}
			dst := Mat{Rows: xm.Rows, Cols: tm.Rows, Data: make([]float32, xm.Rows*tm.Rows)}
			if err := CosineLogits(dst, xm, tm, c.Temperature); err != nil {
				t.Fatal(err)
			}
			compare(t, dst.Data, load(t, c.Want).Data)
			if err := Softmax(dst); err != nil {
				t.Fatal(err)
			}
			compare(t, dst.Data, load(t, c.Probs).Data)
		})
	}
}

func TestSoftmaxReference(t *testing.T) {
	for _, c := range loadCases(t, "softmax") {
		t.Run(c.Name, func(t *testing.T) {
			x := load(t, c.X)
			m := Mat{Rows: x.Shape[0], Cols: x.Shape[1], Data: x.Data}
			if err := Softmax(m); err != nil {
				t.Fatal(err)
			}
			compare(t, m.Data, load(t, c.Want).Data)
		})
	}
}

// pick keeps the given rows of every map of a [C, H, W] grid.
func pick(g Grid, rows []int) []float32 {
	if rows == nil {
		return g.Data
	}
	out := make([]float32, 0, g.C*len(rows)*g.W)
	for c := range g.C {
		p := g.Plane(c)
		for _, y := range rows {
			out = append(out, p[y*g.W:(y+1)*g.W]...)
		}
	}
	return out
}

func TestBilinearReference(t *testing.T) {
	for _, c := range loadCases(t, "bilinear") {
		t.Run(c.Name, func(t *testing.T) {
			x := load(t, c.X)
			src := Grid{C: c.C, H: c.InH, W: c.InW, Data: x.Data}
			dst := Grid{C: c.C, H: c.OutH, W: c.OutW, Data: make([]float32, c.C*c.OutH*c.OutW)}
			if err := Upsample(dst, src, c.AlignCorners); err != nil {
				t.Fatal(err)
			}
			compare(t, pick(dst, c.Rows), load(t, c.Want).Data)
		})
	}
}

// pattern518 rebuilds reference.py's pattern518 input exactly.
func pattern518() []float32 {
	x := make([]float32, 518*518)
	for i := range 518 {
		for j := range 518 {
			x[i*518+j] = float32(float64((i*131+j*71+(i*j)%97)%1009) / 1009.0)
		}
	}
	return x
}

func TestGaussianReference(t *testing.T) {
	for _, c := range loadCases(t, "gaussian") {
		t.Run(c.Name, func(t *testing.T) {
			var x []float32
			switch {
			case c.Pattern == "518":
				x = pattern518()
			case c.X != "":
				x = load(t, c.X).Data
			default:
				t.Fatal("case has no input")
			}
			g, err := NewGaussian(c.Sigma, c.Truncate)
			if err != nil {
				t.Fatal(err)
			}
			dst := make([]float32, len(x))
			if err := g.Filter(dst, x, c.H, c.W); err != nil {
				t.Fatal(err)
			}
			compare(t, pick(Grid{C: 1, H: c.H, W: c.W, Data: dst}, c.Rows), load(t, c.Want).Data)
			// In place gives the same bits.
			if err := g.Filter(x, x, c.H, c.W); err != nil {
				t.Fatal(err)
			}
			for i := range x {
				if math.Float32bits(x[i]) != math.Float32bits(dst[i]) {
					t.Fatalf("in place: value %d is %v, out of place %v", i, x[i], dst[i])
				}
			}
		})
	}
}

func TestGaussianKernelReference(t *testing.T) {
	for _, c := range loadCases(t, "kernel") {
		t.Run(c.Name, func(t *testing.T) {
			g, err := NewGaussian(c.Sigma, c.Truncate)
			if err != nil {
				t.Fatal(err)
			}
			k := g.Kernel()
			if len(k) != len(c.Weights) {
				t.Fatalf("radius %d gives %d weights, scipy has %d", g.Radius(), len(k), len(c.Weights))
			}
			worst := 0.0
			for i, w := range c.Weights {
				rel := math.Abs(k[i]-w) / w
				worst = max(worst, rel)
				if rel > 1e-14 {
					t.Errorf("weight %d: got %v, scipy %v", i, k[i], w)
				}
			}
			t.Logf("radius %d, max relative difference from scipy %.3g", g.Radius(), worst)
		})
	}
}
