package metrics

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/metrics/mapio"
)

func loadArray(t *testing.T, name string) *npy.Array {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "reference", name))
	if err != nil {
		t.Fatal(err)
	}
	a, err := mapio.DecodeNPY(b)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParityMultiType(t *testing.T) {
	var ref struct {
		Cases []struct {
			Name     string   `json:"name"`
			Classes  []string `json:"classes"`
			Scores   string   `json:"scores"`
			Truth    string   `json:"truth"`
			PerClass []struct {
				Class  string   `json:"class"`
				Pixels uint64   `json:"pixels"`
				AUROC  *float64 `json:"auroc"`
				AP     *float64 `json:"ap"`
				F1     *float64 `json:"f1"`
			} `json:"per_class"`
			MacroAUROC *float64   `json:"macro_auroc"`
			MacroAP    *float64   `json:"macro_ap"`
			MacroF1    *float64   `json:"macro_f1"`
			Confusion  [][]uint64 `json:"confusion"`
		} `json:"cases"`
	}
	readJSON(t, "multitype.json", &ref)
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			sc, tr := loadArray(t, c.Scores), loadArray(t, c.Truth)
			n, C, h, w := sc.Shape[0], sc.Shape[1], sc.Shape[2], sc.Shape[3]
			m, err := NewMultiType(c.Classes)
			if err != nil {
				t.Fatal(err)
			}
			truth := make([]uint8, h*w)
			for i := 0; i < n; i++ {
				planes := make([][]float32, C)
				for k := range planes {
					off := (i*C + k) * h * w
					planes[k] = sc.Data[off : off+h*w]
				}
				for j := range truth {
					truth[j] = uint8(tr.Data[i*h*w+j])
				}
				if err := m.Add(planes, truth, w, h); err != nil {
					t.Fatal(err)
				}
			}
			got, err := m.Compute(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range c.PerClass {
				g := got.Classes[k]
				if g.Class != want.Class || g.Pixels != want.Pixels {
					t.Errorf("class %d: %s with %d pixels, reference %s with %d", k, g.Class, g.Pixels, want.Class, want.Pixels)
				}
				checkValue(t, want.Class+" AUROC", g.AUROC, want.AUROC, exactTol)
				checkValue(t, want.Class+" AP", g.AP, want.AP, exactTol)
				checkValue(t, want.Class+" F1", g.F1, want.F1, exactTol)
			}
			checkValue(t, "macro AUROC", got.MacroAUROC, c.MacroAUROC, exactTol)
			checkValue(t, "macro AP", got.MacroAP, c.MacroAP, exactTol)
			checkValue(t, "macro F1", got.MacroF1, c.MacroF1, exactTol)
			for i := range c.Confusion {
				for j := range c.Confusion[i] {
					if got.Confusion[i][j] != c.Confusion[i][j] {
						t.Fatalf("confusion %v, sklearn %v", got.Confusion, c.Confusion)
					}
				}
			}
		})
	}
}

func TestParityTypeAccuracy(t *testing.T) {
	var ref struct {
		TypeAccuracy []struct {
			Name             string      `json:"name"`
			Types            int         `json:"types"`
			Truth            []int       `json:"truth"`
			Scores           [][]float64 `json:"scores"`
			Accuracy         float64     `json:"accuracy"`
			BalancedAccuracy float64     `json:"balanced_accuracy"`
		} `json:"type_accuracy"`
	}
	readJSON(t, "multitype.json", &ref)
	for _, c := range ref.TypeAccuracy {
		t.Run(c.Name, func(t *testing.T) {
			types := make([]string, c.Types)
			for i := range types {
				types[i] = string(rune('a' + i))
			}
			a, err := NewTypeAccuracy(types)
			if err != nil {
				t.Fatal(err)
			}
			for i, tr := range c.Truth {
				if err := a.Add(tr, c.Scores[i]); err != nil {
					t.Fatal(err)
				}
			}
			r := a.Result()
			checkValue(t, "accuracy", r.Accuracy, &c.Accuracy, exactTol)
			checkValue(t, "balanced accuracy", r.BalancedAccuracy, &c.BalancedAccuracy, exactTol)
			if r.Images != uint64(len(c.Truth)) {
				t.Errorf("%d images, want %d", r.Images, len(c.Truth))
			}
		})
	}
}

func TestSummariseTypes(t *testing.T) {
	v := func(x float64) Value { return defined(x) }
	u := undefined("no pixels")
	results := []MultiTypeResult{
		{Classes: []ClassResult{
			{Class: "good", AUROC: v(0.9), AP: v(0.8), F1: v(0.7)},
			{Class: "crack", AUROC: v(0.6), AP: v(0.5), F1: v(0.4)},
		}},
		{Classes: []ClassResult{
			{Class: "good", AUROC: v(0.7), AP: v(0.6), F1: v(0.5)},
			{Class: "crack", AUROC: u, AP: u, F1: v(0)},
			{Class: "hole", AUROC: v(0.95), AP: v(0.9), F1: v(0.85)},
		}},
	}
	got := SummariseTypes(results)
	want := []struct {
		name          string
		auroc, ap, f1 float64
		cats, undef   int
	}{
		{"good", 0.8, 0.7, 0.6, 2, 0},
		{"crack", 0.6, 0.5, 0.2, 2, 1},
		{"hole", 0.95, 0.9, 0.85, 1, 0},
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Type != w.name || g.Categories != w.cats || g.Undefined["auroc"] != w.undef ||
			!near(g.AUROC.V, w.auroc, 1e-15) || !near(g.AP.V, w.ap, 1e-15) || !near(g.F1.V, w.f1, 1e-15) {
			t.Errorf("row %d = %+v, want %+v", i, g, w)
		}
	}
}
