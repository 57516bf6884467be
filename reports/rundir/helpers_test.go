package rundir

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/clip/npy"
	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/reports"
)

// category is what a test run directory holds for one category.
type category struct {
	images  []string
	labels  []bool
	defects []string
	scores  []float64
}

// runSpec describes a run directory for a test.
type runSpec struct {
	dataset, scheme, aupro string
	size                   int // example map size; 0: no examples
	cats                   map[string]category
}

// writeRun writes a run directory in the layout bench.Run produces:
// results.json whose image metrics are computed from the scores,
// scores/*.csv, and examples with their maps.
func writeRun(t *testing.T, dir string, s runSpec) *Run {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "scores"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := reports.New(s.dataset, s.scheme, "tiny")
	r.Settings["aupro"] = s.aupro
	for name, c := range s.cats {
		bin, err := metrics.BinaryScores(c.scores, c.labels)
		if err != nil {
			t.Fatal(err)
		}
		e := reports.NewEntry()
		e.Set(reports.ImageAUROC, bin.AUROC)
		e.Set(reports.ImageAP, bin.AP)
		e.Set(reports.ImageF1Max, bin.F1Max)
		e.Set(reports.PixelAUROC, metrics.Value{V: 0.5 + c.scores[0]/10})
		for _, l := range c.labels {
			if l {
				e.Counts[reports.NAnomalous]++
			} else {
				e.Counts[reports.NNormal]++
			}
		}
		r.Categories[name] = e

		f, err := os.Create(filepath.Join(dir, "scores", fileName(name)+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		w := csv.NewWriter(f)
		w.Write(bench.ScoresHeader)
		for i := range c.images {
			l := "0"
			if c.labels[i] {
				l = "1"
			}
			w.Write([]string{c.images[i], l, c.defects[i], strconv.FormatFloat(c.scores[i], 'g', -1, 64)})
		}
		w.Flush()
		if err := f.Close(); err != nil || w.Error() != nil {
			t.Fatal(err, w.Error())
		}
		if s.size > 0 {
			exDir := filepath.Join(dir, "examples", fileName(name))
			if err := os.MkdirAll(exDir, 0o755); err != nil {
				t.Fatal(err)
			}
			m := make([]float32, s.size*s.size)
			for i := range m {
				m[i] = float32(i) / float32(len(m))
			}
			rel := "examples/" + fileName(name) + "/top-anomalous.npy"
			if err := npy.WriteFile(filepath.Join(dir, rel), []int{s.size, s.size}, m); err != nil {
				t.Fatal(err)
			}
			writeJSON(t, filepath.Join(exDir, "examples.json"), []bench.Example{{Kind: bench.TopAnomalous, Image: "/nonexistent/" + c.images[0],
				RelImage: c.images[0], Score: float32(c.scores[0]), Map: rel, Size: s.size}})
		}
	}
	r.ComputeMean()
	if err := reports.Write(filepath.Join(dir, ResultsFile), r); err != nil {
		t.Fatal(err)
	}
	run, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func writeJSON(t *testing.T, p string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// bottle is a category of 12 images, 5 anomalous, with tied scores.
func bottle(shift float64) category {
	c := category{}
	for i := 0; i < 12; i++ {
		pos := i%12 >= 7
		name, def := "bottle/test/good/"+strconv.Itoa(i)+".png", ""
		if pos {
			name, def = "bottle/test/broken/"+strconv.Itoa(i)+".png", "broken"
		}
		v := float64(i%5) / 4
		if pos {
			v += 0.3 + shift*float64(i%3)
		}
		c.images = append(c.images, name)
		c.labels = append(c.labels, pos)
		c.defects = append(c.defects, def)
		c.scores = append(c.scores, v)
	}
	return c
}

// screw is a second category, where the scores barely separate.
func screw(shift float64) category {
	c := category{}
	for i := 0; i < 9; i++ {
		pos := i%3 == 0
		name, def := "screw/test/good/"+strconv.Itoa(i)+".png", ""
		if pos {
			name, def = "screw/test/thread|top/"+strconv.Itoa(i)+".png", "thread|top"
		}
		v := float64((i*7)%9) / 9
		if pos {
			v += shift
		}
		c.images = append(c.images, name)
		c.labels = append(c.labels, pos)
		c.defects = append(c.defects, def)
		c.scores = append(c.scores, v)
	}
	return c
}
