package multiads

import (
	"encoding/json"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/baselines/internal/e2e"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/internal/race"
	"github.com/dapobench/dapobench/results"
)

func newScheme(t *testing.T, m *bench.Model, variant string) *Scheme {
	t.Helper()
	l, err := checkpoints.Untrained(checkpoints.MultiADS, m.Manifest, m.TokenEmbedding, 1)
	if err != nil {
		t.Fatal(err)
	}
	o, err := Parse(variant, Options{Learned: l})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRun evaluates MultiADS (untrained linear layers) on two fixture
// datasets with a tiny model and checks what bench.ScoreFinisher does with
// its scores: each category's scores file holds the min–max normalised
// top-3 means of the saved maps, and the kept examples carry those final
// scores. multiads/softmax-score then runs from the cache with the same
// maps and class maps.
func TestRun(t *testing.T) {
	race.SkipNumeric(t)
	env := e2e.Setup(t, clip.Options{Variant: clip.MultiADS})
	size, layers := env.Model.Manifest.ImageSize, len(env.Model.Manifest.FeatureLayers)
	first := env.Run(t, newScheme(t, env.Model, ""), "first", 0, "mvtec", "mad-sim")
	maps := readMaps(t, filepath.Join(env.Dir, "first"))
	e2e.CheckRange(t, maps, 0, float32(layers))
	typed := 0
	for ds, cats := range first {
		for _, c := range cats {
			if c.MultiType != nil {
				typed++
			}
			dir := filepath.Join(env.Dir, "first", ds)
			imgs, _, _, scores, err := results.ReadScores(dir, c.Category)
			if err != nil {
				t.Fatal(err)
			}
			raw := make([]float64, len(imgs))
			for i, img := range imgs {
				m := maps[ds+"/maps/"+strings.TrimSuffix(img, filepath.Ext(img))+".npy"]
				if m == nil {
					t.Fatalf("%s: no saved map", img)
				}
				raw[i] = topMean(m, TopK)
			}
			want := MinMax(raw)
			if slices.Min(scores) != 0 || slices.Max(scores) != 1 {
				t.Errorf("%s/%s: scores span [%v, %v], want [0, 1]", ds, c.Category, slices.Min(scores), slices.Max(scores))
			}
			for i := range scores {
				if math.Abs(scores[i]-want[i]) > 1e-12 {
					t.Errorf("%s: score %v, want the min–max normalised top-3 mean %v", imgs[i], scores[i], want[i])
				}
			}
			var ex []results.Example
			b, err := os.ReadFile(filepath.Join(dir, results.ExamplesDir, results.CategoryFile(c.Category), "examples.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &ex); err != nil {
				t.Fatal(err)
			}
			for _, e := range ex {
				i := slices.Index(imgs, e.RelImage)
				if i < 0 || float64(e.Score) != float64(float32(scores[i])) {
					t.Errorf("%s: example %s has score %v, its final score is %v", c.Category, e.RelImage, e.Score, scores)
				}
			}
		}
	}
	if typed == 0 {
		t.Error("no category has multi-type results")
	}

	second := env.Run(t, newScheme(t, env.Model, "multiads/softmax-score"), "second", 0, "mvtec", "mad-sim")
	if computed, cached := second.Counts(); computed != 0 || cached == 0 {
		t.Errorf("the second variant computed %d feature sets and read %d from the cache; want all from the cache", computed, cached)
	}
	for p, m := range readMaps(t, filepath.Join(env.Dir, "second")) {
		if len(m) != size*size {
			t.Errorf("%s: %d values", p, len(m))
		}
		if !slices.Equal(m, maps[p]) {
			t.Errorf("%s: multiads/softmax-score has another map", p)
		}
	}
	for ds, cats := range second {
		for i, c := range cats {
			a, _ := json.Marshal(c.MultiType)
			b, _ := json.Marshal(first[ds][i].MultiType)
			if string(a) != string(b) {
				t.Errorf("%s/%s: the softmax variant's multi-type results differ:\n%s\n%s", ds, c.Category, a, b)
			}
			_, _, _, scores, err := results.ReadScores(filepath.Join(env.Dir, "second", ds), c.Category)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range scores {
				if !(s > 0 && s < 1) {
					t.Errorf("%s/%s: softmax score %v outside (0, 1)", ds, c.Category, s)
				}
			}
		}
	}
}

// TestMinMax is test.py's normalisation: (v − min)/(max − min), all zeros
// when the range is at most 1e-12.
func TestMinMax(t *testing.T) {
	if got := MinMax([]float64{2, 4, 3}); !slices.Equal(got, []float64{0, 1, 0.5}) {
		t.Errorf("MinMax = %v", got)
	}
	if got := MinMax([]float64{1, 1 + 1e-13}); !slices.Equal(got, []float64{0, 0}) {
		t.Errorf("a range of 1e-13: %v, want zeros", got)
	}
	if got := MinMax(nil); len(got) != 0 {
		t.Errorf("MinMax(nil) = %v", got)
	}
	if got := topMean([]float32{1, 9, 3, 7, 8}, 3); got != 8 {
		t.Errorf("top-3 mean %v, want 8", got)
	}
}

// TestTables pins the official tables the scheme reads, including two
// quirks it keeps: MAD-Sim's Burrs and Missing swap places between
// dataset.py's ids and the global list, and Real-IAD's multi-type columns
// are indexed by a list in another order than the ensemble's groups.
func TestTables(t *testing.T) {
	tab, err := ReadTables()
	if err != nil {
		t.Fatal(err)
	}
	for ds, want := range map[string][2]int{
		"mvtec": {21, 4550}, "visa": {21, 4480}, "mpdd": {8, 1820}, "mad-sim": {4, 875}, "mad-real": {3, 665}, "real-iad": {9, 630},
	} {
		e, _, err := tab.TestEnsemble(ds)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Groups) != want[0] || e.Size() != want[1] {
			t.Errorf("%s: %d classes, %d prompts per category; want %d, %d", ds, len(e.Groups), e.Size(), want[0], want[1])
		}
	}
	for _, c := range []struct{ ds, defect, want string }{
		{"mvtec", "broken_large", "broken"},
		{"mvtec", "metal_contamination", "contamination"},
		{"mvtec", "faulty_imprint", "faulty imprint"},
		{"mpdd", "parts_mismatch", "mismatch"},
		{"mad-sim", "Burrs", "Missing"},
		{"mad-sim", "Missing", "Burrs"},
		{"mad-real", "Stains", "Stains"},
		{"real-iad", "QS", "missing"},
		{"real-iad", "YW", "foreign"},
		{"visa", "chunk of wax missing", "missing"},
	} {
		if got, ok := tab.DefectName(c.ds, c.defect); !ok || got != c.want {
			t.Errorf("%s %q: %q %v, want %q", c.ds, c.defect, got, ok, c.want)
		}
	}
	if _, ok := tab.DefectName("mvtec", "no_such_folder"); ok {
		t.Error("an unknown folder has a class")
	}
	classes, cols, ok, err := tab.Local("real-iad", "switch")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if !slices.Equal(classes, []string{"good", "missing", "contamination", "scratch"}) || !slices.Equal(cols, []int{0, 6, 8, 4}) {
		t.Fatalf("real-iad switch: %v at %v", classes, cols)
	}
	if g := tab.Files[tab.Multi["real-iad"]].Groups[4].Name; g != "abrasion" {
		t.Errorf("column 4 of the Real-IAD multi-type ensemble is %q; the quirk it pins is that it is abrasion", g)
	}
	if _, _, ok, _ := tab.Local("mvtec", "no_such_object"); ok {
		t.Error("an unknown category has a list")
	}
	if _, _, err := tab.TrainClasses("visa"); err == nil {
		t.Error("training on VisA: no error")
	}
	if n, gt, err := tab.TrainClasses("mvtec"); err != nil || n != 21 || gt["cable_swap"] != 19 {
		t.Errorf("mvtec training: %d classes, cable_swap %d, %v", n, gt["cable_swap"], err)
	}
}

// readMaps reads the anomaly maps a run saved under root/<dataset>/maps,
// without the class maps, by <dataset>/maps/<relative path>.
func readMaps(t *testing.T, root string) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".npy") || strings.HasSuffix(p, ".classes.npy") {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if !strings.Contains(filepath.ToSlash(rel), "/maps/") {
			return nil
		}
		a, err := npy.ReadFile(p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = a.Data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no maps under %s", root)
	}
	return out
}
