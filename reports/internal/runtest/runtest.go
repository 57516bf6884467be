// Package runtest writes small run directories, in the layout bench.Run
// produces and complete as results.CheckComplete wants them, for the tests
// of the report packages: results.json whose image metrics are computed
// from the scores, manifest.json, scores/*.csv, a record per category
// (optionally with multi-type results), and examples (with maps, images
// and masks when asked, else an empty list).
package runtest

import (
	"encoding/csv"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/results"
)

// Category is the test split of one category.
type Category struct {
	Images  []string // dataset-relative paths
	Labels  []bool
	Defects []string
	Scores  []float64
}

// Spec describes a run directory.
type Spec struct {
	Dataset, Scheme, AUPRO string
	// MapSize > 0 writes examples with maps of MapSize×MapSize.
	MapSize int
	// ImageRoot, when set, receives a PNG for every example image and a
	// mask for every anomalous one, and the examples point there;
	// otherwise they point at files that do not exist.
	ImageRoot string
	// Multi writes categories/<name>.json with a confusion matrix over
	// "good" and the category's defect types.
	Multi bool
	Cats  map[string]Category
}

// Write writes the run directory dir.
func Write(t testing.TB, dir string, s Spec) {
	t.Helper()
	mkdir(t, filepath.Join(dir, "scores"))
	r := results.New(s.Dataset, s.Scheme, "tiny")
	r.Settings["aupro"] = s.AUPRO
	for name, c := range s.Cats {
		bin, err := metrics.BinaryScores(c.Scores, c.Labels)
		if err != nil {
			t.Fatal(err)
		}
		e := results.NewEntry()
		e.Set(results.ImageAUROC, bin.AUROC)
		e.Set(results.ImageAP, bin.AP)
		e.Set(results.ImageF1Max, bin.F1Max)
		e.Set(results.PixelAUROC, metrics.Value{V: 0.5 + c.Scores[0]/10})
		for _, l := range c.Labels {
			if l {
				e.Counts[results.NAnomalous]++
			} else {
				e.Counts[results.NNormal]++
			}
		}
		r.Categories[name] = e
		writeScores(t, filepath.Join(dir, "scores", name+".csv"), c)
		if s.MapSize > 0 {
			writeExamples(t, dir, name, c, s)
		} else {
			mkdir(t, filepath.Join(dir, "examples", name))
			writeJSON(t, filepath.Join(dir, "examples", name, results.ExamplesFile), []results.Example{})
		}
		writeRecord(t, dir, name, c, s.Multi)
	}
	r.ComputeMean()
	man := map[string]any{"schema": results.ManifestSchema}
	var cats []map[string]string
	for _, name := range r.CategoryNames() {
		cats = append(cats, map[string]string{"category": name, "fingerprint": fingerprintOf(name)})
	}
	man["categories"] = cats
	writeJSON(t, filepath.Join(dir, results.ManifestName), man)
	if err := results.Write(filepath.Join(dir, "results.json"), r); err != nil {
		t.Fatal(err)
	}
}

func writeScores(t testing.TB, p string, c Category) {
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write(results.ScoresHeader)
	for i := range c.Images {
		l := "0"
		if c.Labels[i] {
			l = "1"
		}
		w.Write([]string{c.Images[i], l, c.Defects[i], strconv.FormatFloat(c.Scores[i], 'g', -1, 64)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeExamples keeps the first anomalous image as the top anomalous
// example, the last as the bottom one, and the first normal image as the
// top normal one, each with a ramp map.
func writeExamples(t testing.TB, dir, name string, c Category, s Spec) {
	exDir := filepath.Join(dir, "examples", name)
	mkdir(t, exDir)
	pick := map[string]int{}
	for i, l := range c.Labels {
		switch {
		case l && pick[results.TopAnomalous] == 0:
			pick[results.TopAnomalous] = i + 1
		case l:
			pick[results.BottomAnomalous] = i + 1
		case pick[results.TopNormal] == 0:
			pick[results.TopNormal] = i + 1
		}
	}
	var list []results.Example
	for k, kind := range []string{results.TopAnomalous, results.BottomAnomalous, results.TopNormal} {
		i := pick[kind] - 1
		if i < 0 {
			continue
		}
		m := make([]float32, s.MapSize*s.MapSize)
		for j := range m {
			m[j] = float32(k) + float32(j%s.MapSize)/float32(s.MapSize)
		}
		rel := "examples/" + name + "/" + kind + ".npy"
		if err := npy.WriteFile(filepath.Join(dir, rel), []int{s.MapSize, s.MapSize}, m); err != nil {
			t.Fatal(err)
		}
		root := s.ImageRoot
		if root == "" {
			root = filepath.Join(dir, "nonexistent")
		}
		e := results.Example{Kind: kind, Image: filepath.Join(root, c.Images[i]), RelImage: c.Images[i],
			DefectType: c.Defects[i], Score: float32(c.Scores[i]), Map: rel, Size: s.MapSize}
		if c.Labels[i] {
			e.Mask = strings.TrimSuffix(e.Image, ".png") + "_mask.png"
		}
		if s.ImageRoot != "" {
			writePNG(t, e.Image, picture(48, 40, false))
			if e.Mask != "" {
				writePNG(t, e.Mask, picture(48, 40, true))
			}
		}
		list = append(list, e)
	}
	writeJSON(t, filepath.Join(exDir, "examples.json"), list)
}

// picture is a w×h test image, or its mask: a bright square defect.
func picture(w, h int, mask bool) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			in := x >= w/3 && x < 2*w/3 && y >= h/3 && y < 2*h/3
			c := color.RGBA{R: uint8(3 * x), G: uint8(3 * y), B: 90, A: 255}
			if mask {
				c = color.RGBA{A: 255}
				if in {
					c = color.RGBA{R: 255, G: 255, B: 255, A: 255}
				}
			} else if in {
				c = color.RGBA{R: 250, G: 250, B: 250, A: 255}
			}
			img.Set(x, y, c)
		}
	}
	return img
}

// fingerprintOf is the fingerprint the test runs give a category.
func fingerprintOf(category string) string { return "fp-" + category }

func writeRecord(t testing.TB, dir, name string, c Category, multi bool) {
	mkdir(t, filepath.Join(dir, "categories"))
	if !multi {
		writeJSON(t, filepath.Join(dir, "categories", name+".json"), results.CategoryRecord{Category: name, Fingerprint: fingerprintOf(name)})
		return
	}
	classes := []string{"good"}
	for _, d := range c.Defects {
		if d != "" && !contains(classes, d) {
			classes = append(classes, d)
		}
	}
	mt := &results.MultiType{}
	for k, cl := range classes {
		mt.Classes = append(mt.Classes, results.ClassMetrics{Class: cl, Pixels: uint64(100 * (k + 1))})
		row := make([]uint64, len(classes))
		for j := range row {
			row[j] = uint64(10*(k+1) + j)
		}
		mt.Confusion = append(mt.Confusion, row)
	}
	writeJSON(t, filepath.Join(dir, "categories", name+".json"), results.CategoryRecord{Category: name, Fingerprint: fingerprintOf(name), MultiType: mt})
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func writePNG(t testing.TB, p string, img image.Image) {
	mkdir(t, filepath.Dir(p))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// WriteJSON writes v as indented JSON.
func WriteJSON(t testing.TB, p string, v any) { writeJSON(t, p, v) }

func writeJSON(t testing.TB, p string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t testing.TB, p string) {
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

// Bottle is a category of 12 images, 5 anomalous ("broken"), with tied
// scores; shift moves the anomalous scores up.
func Bottle(shift float64) Category {
	c := Category{}
	for i := 0; i < 12; i++ {
		pos := i >= 7
		name, def := "bottle/test/good/"+strconv.Itoa(i)+".png", ""
		if pos {
			name, def = "bottle/test/broken/"+strconv.Itoa(i)+".png", "broken"
		}
		v := float64(i%5) / 4
		if pos {
			v += 0.3 + shift*float64(i%3)
		}
		c.add(name, pos, def, v)
	}
	return c
}

// Screw is a category of 9 images, 3 anomalous, whose defect type has a
// "|" in its name; shift moves the anomalous scores up.
func Screw(shift float64) Category {
	c := Category{}
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
		c.add(name, pos, def, v)
	}
	return c
}

func (c *Category) add(image string, label bool, defect string, score float64) {
	c.Images = append(c.Images, image)
	c.Labels = append(c.Labels, label)
	c.Defects = append(c.Defects, defect)
	c.Scores = append(c.Scores, score)
}
