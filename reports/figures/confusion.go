package figures

import (
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Confusion draws a defect-type confusion matrix, counts[true][predicted]
// in pixels with classes naming both axes, as a heat map of each row's
// fractions (the recall of every true class spread over the predictions),
// each cell labelled with its percentage. A class with no pixels in the
// ground truth has an empty grey row. The first class is at the top, as a
// matrix is read.
func Confusion(title string, classes []string, counts [][]uint64) (*plot.Plot, error) {
	n := len(classes)
	if n == 0 || len(counts) != n {
		return nil, fmt.Errorf("figures: %s: %d rows for %d classes", title, len(counts), n)
	}
	g := &confusionGrid{frac: make([][]float64, n)}
	for i, row := range counts {
		if len(row) != n {
			return nil, fmt.Errorf("figures: %s: row %d (%s) has %d columns for %d classes", title, i, classes[i], len(row), n)
		}
		var sum uint64
		for _, c := range row {
			sum += c
		}
		g.frac[i] = make([]float64, n)
		for j, c := range row {
			g.frac[i][j] = math.NaN()
			if sum > 0 {
				g.frac[i][j] = float64(c) / float64(sum)
			}
		}
	}
	cm := moreland.ExtendedBlackBody()
	cm.SetMin(0)
	cm.SetMax(1)
	h := plotter.NewHeatMap(g, cm.Palette(255))
	h.Min, h.Max = 0, 1
	h.NaN = color.Gray{Y: 200}

	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = "predicted", "true"
	p.Add(h)
	var labels plotter.XYLabels
	var light []bool
	for r := 0; r < n; r++ {
		for c := 0; c < n; c++ {
			v := g.Z(c, r)
			if math.IsNaN(v) { // no pixels of this class
				continue
			}
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(c), Y: float64(r)})
			labels.Labels = append(labels.Labels, fmt.Sprintf("%.1f", 100*v))
			light = append(light, v < 0.6)
		}
	}
	if len(labels.XYs) > 0 && n <= 16 {
		l, err := plotter.NewLabels(labels)
		if err != nil {
			return nil, fmt.Errorf("figures: %s: %w", title, err)
		}
		for i := range l.TextStyle {
			l.TextStyle[i].XAlign, l.TextStyle[i].YAlign = draw.XCenter, draw.YCenter
			l.TextStyle[i].Font.Size = vg.Points(8)
			if light[i] { // dark cell
				l.TextStyle[i].Color = color.White
			}
		}
		p.Add(l)
	}
	p.NominalX(classes...)
	rev := slices.Clone(classes)
	slices.Reverse(rev)
	p.NominalY(rev...)
	p.X.Min, p.X.Max = -0.5, float64(n)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	if n > 4 {
		p.X.Tick.Label.Rotation = math.Pi / 4
		p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YCenter
	}
	return p, nil
}

// confusionGrid is the heat map's view of the matrix: row 0 of a GridXYZ
// is drawn at the bottom, so rows are flipped.
type confusionGrid struct{ frac [][]float64 }

func (g *confusionGrid) Dims() (c, r int)   { return len(g.frac), len(g.frac) }
func (g *confusionGrid) Z(c, r int) float64 { return g.frac[len(g.frac)-1-r][c] }
func (g *confusionGrid) X(c int) float64    { return float64(c) }
func (g *confusionGrid) Y(r int) float64    { return float64(r) }
func (g *confusionGrid) Min() float64       { return 0 }
func (g *confusionGrid) Max() float64       { return 1 }
