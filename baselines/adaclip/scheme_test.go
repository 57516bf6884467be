package adaclip

import (
	"math"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/baselines/adaclip/kmeans"
)

func TestParse(t *testing.T) {
	for _, v := range Variants() {
		o, err := Parse(v.Name, Options{})
		if err != nil || o.Name != v.Name {
			t.Errorf("Parse(%q): %+v, %v", v.Name, o, err)
		}
	}
	if o, err := Parse("", Options{}); err != nil || o.Name != "adaclip" {
		t.Errorf(`Parse(""): %+v, %v`, o, err)
	}
	if o, _ := Parse("adaclip/sklearn-1.3", Options{}); o.First != kmeans.ChoiceUnitWeights {
		t.Error("sklearn-1.3 does not draw the first centre by choice")
	}
	if _, err := Parse("adaclip/nope", Options{}); err == nil || !strings.Contains(err.Error(), "adaclip/no-hsf") {
		t.Errorf("unknown variant: error %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, v := range Variants() {
		f.Add(v.Name)
	}
	f.Add("adaclip/")
	f.Fuzz(func(t *testing.T, name string) {
		o, err := Parse(name, Options{})
		if err != nil {
			return
		}
		if o.Name != name && name != "" {
			t.Fatalf("Parse(%q) named the options %q", name, o.Name)
		}
	})
}

// TestHSFWeights checks that the fusion's weights give its feature: each
// of the 20 clusters weighs 1/20, each member's layers share its cluster's
// weight equally.
func TestHSFWeights(t *testing.T) {
	const l, e, layers = 40, 3, 2
	patches := make([][]float32, layers)
	logits := make([][]float32, layers)
	for k := range patches {
		patches[k] = make([]float32, l*e)
		logits[k] = make([]float32, 2*l)
		for i := range l {
			for j := range e {
				patches[k][i*e+j] = float32(math.Sin(float64(1 + i*7 + j*3 + k*11)))
			}
			logits[k][2*i+1] = float32(i) / 10 // patch i more anomalous with i
		}
		if err := normalizeRows(patches[k], e); err != nil {
			t.Fatal(err)
		}
	}
	d := kmeans.Draw(kmeans.NewMT19937(KMeansSeed), TopK(l), kmeans.Options{K: Clusters})
	f, err := HSF(patches, logits, e, kmeans.RandInt, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Indices) != TopK(l) || f.Indices[0] != l-1 {
		t.Errorf("top patches %v, want %d of them, most anomalous (%d) first", f.Indices, TopK(l), l-1)
	}
	var sum float64
	h := make([]float64, e)
	for i, w := range f.Weights {
		sum += float64(w)
		for k := range layers {
			for j := range e {
				h[j] += float64(w) * float64(patches[k][i*e+j])
			}
		}
	}
	if math.Abs(sum*layers-1) > 1e-6 {
		t.Errorf("weights sum to %v per layer, want 1/%d", sum, layers)
	}
	u := unit(h)
	for j := range u {
		if math.Abs(float64(u[j]-f.Feature[j])) > 1e-6 {
			t.Fatalf("feature %v, weights give %v", f.Feature, u)
		}
	}
	if _, err := HSF(patches, logits[:1], e, kmeans.RandInt, d); err == nil {
		t.Error("layers of tokens and logits disagree: no error")
	}
}

func TestTextFeatures(t *testing.T) {
	raw := make([]float32, 5*2)
	for i := range raw {
		raw[i] = float32(i + 1)
	}
	tf, err := TextFeatures(raw, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range tf {
		if n := math.Hypot(float64(row[0]), float64(row[1])); math.Abs(n-1) > 1e-6 {
			t.Errorf("row %v has norm %v", row, n)
		}
	}
	if _, err := TextFeatures(raw, 5, 2); err == nil {
		t.Error("no abnormal sentences: no error")
	}
}
