package metrics

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/dapobench/dapobench/metrics/mapio"
)

// The parity tests compare with values computed by scikit-learn 1.2.1,
// scipy 1.10 and scikit-image 0.19 (Debian packages) in
// testdata/gen_reference.py; the values are committed, so no Python runs
// here. Rerun the script after changing a case.

const (
	exactTol = 1e-9 // AUROC, AP, F1-max, MVTec AU-PRO
	cflowTol = 1e-6 // cal_pro_score
)

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "reference", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type refBinary struct {
	AUROC       *float64 `json:"auroc"`
	AP          *float64 `json:"ap"`
	F1Max       *float64 `json:"f1max"`
	F1Threshold *float64 `json:"f1_threshold"`
}

// checkValue compares a metric with the reference: nil means the reference
// raised or has no value, and the metric must then be undefined.
func checkValue(t *testing.T, name string, got Value, want *float64, tol float64) {
	t.Helper()
	if want == nil {
		if got.OK() {
			t.Errorf("%s = %.17g, reference has no value", name, got.V)
		}
		return
	}
	if !got.OK() {
		t.Errorf("%s undefined (%s), reference %.17g", name, got.Reason, *want)
		return
	}
	d := math.Abs(got.V - *want)
	if !(d <= tol) {
		t.Errorf("%s = %.17g, reference %.17g, |Δ| = %.3g > %g", name, got.V, *want, d, tol)
	}
	t.Logf("%s |Δ| = %.3g", name, d)
}

func checkBinary(t *testing.T, got Binary, want refBinary) {
	t.Helper()
	checkValue(t, "AUROC", got.AUROC, want.AUROC, exactTol)
	checkValue(t, "AP", got.AP, want.AP, exactTol)
	checkValue(t, "F1-max", got.F1Max, want.F1Max, exactTol)
	if want.F1Threshold != nil && got.F1Threshold != *want.F1Threshold {
		t.Errorf("F1 threshold = %.17g, reference %.17g", got.F1Threshold, *want.F1Threshold)
	}
}

func TestParityBinary(t *testing.T) {
	var ref struct {
		Cases []struct {
			Name   string    `json:"name"`
			Scores []float64 `json:"scores"`
			Labels []int     `json:"labels"`
			refBinary
		} `json:"cases"`
	}
	readJSON(t, "binary.json", &ref)
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			labels := make([]bool, len(c.Labels))
			for i, l := range c.Labels {
				labels[i] = l == 1
			}
			got, err := BinaryScores(c.Scores, labels)
			if err != nil {
				t.Fatal(err)
			}
			checkBinary(t, got, c.refBinary)
		})
	}
}

type refPixelCase struct {
	Name          string   `json:"name"`
	Maps          string   `json:"maps"`
	Masks         string   `json:"masks"`
	AUPROMVTec    *float64 `json:"aupro_mvtec"`
	AUPROCflow200 *float64 `json:"aupro_cflow200"`
	refBinary
}

// loadStack reads an (N, H, W) .npy written by the reference script.
func loadStack(t testing.TB, name string) ([]float32, []int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "reference", name))
	if err != nil {
		t.Fatal(err)
	}
	a, err := mapio.DecodeNPY(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Shape) != 3 {
		t.Fatalf("%s: shape %v, want (N, H, W)", name, a.Shape)
	}
	return a.Data, a.Shape
}

func TestParityPixels(t *testing.T) {
	var ref struct {
		Cases []refPixelCase `json:"cases"`
	}
	readJSON(t, "pixels.json", &ref)
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			maps, shape := loadStack(t, c.Maps)
			masks, _ := loadStack(t, c.Masks)
			p, err := NewPixels(PixelOptions{})
			if err != nil {
				t.Fatal(err)
			}
			n, h, w := shape[0], shape[1], shape[2]
			mask := make([]uint8, h*w)
			for i := 0; i < n; i++ {
				for j := range mask {
					mask[j] = uint8(masks[i*h*w+j])
				}
				if err := p.Add(maps[i*h*w:(i+1)*h*w], mask, w, h); err != nil {
					t.Fatal(err)
				}
			}
			got, err := p.Compute(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			checkBinary(t, got.Binary, c.refBinary)
			checkValue(t, "AUPRO mvtec", got.AUPROMVTec, c.AUPROMVTec, exactTol)
			checkValue(t, "AUPRO cflow200", got.AUPROCflow200, c.AUPROCflow200, cflowTol)
		})
	}
}

// TestParityCflowGrid checks the float32 thresholds cal_pro_score compares
// maps with against numpy's np.arange, bit for bit, including the ranges
// where arange yields 201 thresholds instead of 200.
func TestParityCflowGrid(t *testing.T) {
	var ref struct {
		Cases []struct {
			Lo   uint32   `json:"lo"`
			Hi   uint32   `json:"hi"`
			Grid []uint32 `json:"grid"`
		} `json:"cases"`
	}
	readJSON(t, "cflow_grid.json", &ref)
	n201 := 0
	for _, c := range ref.Cases {
		lo, hi := math.Float32frombits(c.Lo), math.Float32frombits(c.Hi)
		g, why := cflowGrid(lo, hi, cflowSteps)
		if why != "" {
			t.Fatalf("[%v, %v]: %s", lo, hi, why)
		}
		if len(g) != len(c.Grid) {
			t.Errorf("[%v, %v]: %d thresholds, numpy %d", lo, hi, len(g), len(c.Grid))
			continue
		}
		if len(g) == 201 {
			n201++
		}
		for i := range g {
			if math.Float32bits(g[i]) != c.Grid[i] {
				t.Errorf("[%v, %v]: threshold %d = %v, numpy %v", lo, hi, i, g[i], math.Float32frombits(c.Grid[i]))
				break
			}
		}
	}
	if n201 == 0 {
		t.Error("no 201-threshold range among the cases")
	}
}
