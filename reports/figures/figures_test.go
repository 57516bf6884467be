package figures

import (
	"bytes"
	"encoding/xml"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot"
)

// checkFiles checks what SavePlot wrote: a non-empty PNG of the requested
// size and a non-empty SVG whose root element is <svg> of that size.
func checkFiles(t *testing.T, paths []string, s Size) {
	t.Helper()
	if len(paths) != 2 {
		t.Fatalf("paths %v", paths)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			t.Fatalf("%s is empty", p)
		}
		switch filepath.Ext(p) {
		case ".png":
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			w, h := s.Pixels()
			if got := img.Bounds().Size(); got != (image.Point{w, h}) {
				t.Errorf("%s: %v, want %d×%d", p, got, w, h)
			}
		case ".svg":
			var root struct {
				XMLName xml.Name
				Width   string `xml:"width,attr"`
				Height  string `xml:"height,attr"`
			}
			if err := xml.Unmarshal(b, &root); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if root.XMLName.Local != "svg" || root.Width == "" || root.Height == "" {
				t.Errorf("%s: root %+v", p, root)
			}
		default:
			t.Errorf("unexpected file %s", p)
		}
	}
}

func TestPlots(t *testing.T) {
	sets := scoreSets()
	runs := []Series{
		{"dapo", sets["random"].s, sets["random"].l},
		{"winclip", sets["random"].s[:100], sets["random"].l[:100]},
	}
	runs[1].Scores = append([]float64(nil), runs[1].Scores...)
	for i := range runs[1].Scores {
		runs[1].Scores[i] *= -1
	}
	runs[1].Labels = sets["random"].l[:100]
	for _, c := range []struct {
		name string
		size Size
		make func() (*plot.Plot, error)
	}{
		{"roc", CurveSize, func() (*plot.Plot, error) { return ROCPlot("bottle: ROC", runs) }},
		{"pr", CurveSize, func() (*plot.Plot, error) { return PRPlot("bottle: precision-recall", runs) }},
		{"bars", BarSize, func() (*plot.Plot, error) {
			return Bars("image AUROC", "%", []string{"bottle", "cable|pipe", "mean"}, []BarSeries{
				{"dapo", []float64{0.98, math.NaN(), 0.9}}, {"winclip", []float64{0.9, 0.5, 0.7}}})
		}},
		{"bars-many", BarSize, func() (*plot.Plot, error) {
			return Bars("pixel AUROC", "%", strings.Fields("a b c d e f g h"), []BarSeries{{"dapo", []float64{0, .1, .2, .3, .4, .5, .6, 1}}})
		}},
		{"confusion", ConfusionSize, func() (*plot.Plot, error) {
			return Confusion("tubes", []string{"good", "flattening", "bent"}, [][]uint64{{5237, 859, 0}, {46, 2, 0}, {0, 0, 0}})
		}},
		{"small", Size{2 * 72, 1.5 * 72}, func() (*plot.Plot, error) { return ROCPlot("small", runs[:1]) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := c.make()
			if err != nil {
				t.Fatal(err)
			}
			paths, err := SavePlot(p, filepath.Join(t.TempDir(), c.name), c.size)
			if err != nil {
				t.Fatal(err)
			}
			checkFiles(t, paths, c.size)
		})
	}
}

func TestPlotErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		err  func() error
		want string
	}{
		{"no runs", func() error { _, err := ROCPlot("x", nil); return err }, "no runs"},
		{"one class", func() error {
			_, err := ROCPlot("x", []Series{{"a", []float64{1, 2}, []bool{false, false}}})
			return err
		}, "no anomalous images"},
		{"bars without groups", func() error { _, err := Bars("x", "%", nil, []BarSeries{{"a", nil}}); return err }, "nothing to draw"},
		{"bars ragged", func() error {
			_, err := Bars("x", "%", []string{"a", "b"}, []BarSeries{{"r", []float64{1}}})
			return err
		}, "r has 1 values for 2 groups"},
		{"confusion not square", func() error {
			_, err := Confusion("x", []string{"good", "crack"}, [][]uint64{{1, 2}, {3}})
			return err
		}, "row 1 (crack) has 1 columns for 2 classes"},
		{"confusion rows", func() error { _, err := Confusion("x", []string{"good"}, nil); return err }, "0 rows for 1 classes"},
	} {
		err := c.err()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}
