package figures

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/dapobench/dapobench/metrics"
)

// Series is one run's image scores on one category.
type Series struct {
	Label  string
	Scores []float64
	Labels []bool // true: anomalous
}

// ROCPlot draws the ROC curves of several runs on one category, each
// labelled with its AUROC, over the chance diagonal.
func ROCPlot(title string, series []Series) (*plot.Plot, error) {
	return curvePlot(title, "false positive rate", "true positive rate", series, true,
		ROC, func(b metrics.Binary) metrics.Value { return b.AUROC }, "AUROC")
}

// PRPlot draws the precision-recall curves of several runs on one
// category, each labelled with its AP, over the precision of a random
// ranking (the anomalous fraction).
func PRPlot(title string, series []Series) (*plot.Plot, error) {
	return curvePlot(title, "recall", "precision", series, false,
		PR, func(b metrics.Binary) metrics.Value { return b.AP }, "AP")
}

func curvePlot(title, xlabel, ylabel string, series []Series, diagonal bool,
	curve func([]float64, []bool) ([]float64, []float64, error), pick func(metrics.Binary) metrics.Value, name string) (*plot.Plot, error) {
	if len(series) == 0 {
		return nil, fmt.Errorf("figures: %s: no runs to draw", title)
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = xlabel, ylabel
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1.02
	p.Add(plotter.NewGrid())
	p.Legend.Top = !diagonal // the ROC's empty corner is bottom right, the PR's top right
	p.Legend.Left = false
	var chance plotter.XYs
	if diagonal {
		chance = plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}}
	}
	for i, s := range series {
		x, y, err := curve(s.Scores, s.Labels)
		if err != nil {
			return nil, fmt.Errorf("figures: %s: %s: %w", title, s.Label, err)
		}
		b, err := metrics.BinaryScores(s.Scores, s.Labels)
		if err != nil {
			return nil, fmt.Errorf("figures: %s: %s: %w", title, s.Label, err)
		}
		if !diagonal && i == 0 {
			rate := float64(b.Pos) / float64(b.Pos+b.Neg)
			chance = plotter.XYs{{X: 0, Y: rate}, {X: 1, Y: rate}}
		}
		xys := make(plotter.XYs, len(x))
		for j := range x {
			xys[j] = plotter.XY{X: x[j], Y: y[j]}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("figures: %s: %s: %w", title, s.Label, err)
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i)
		l.Width = vg.Points(1.5)
		p.Add(l)
		label := s.Label
		if v := pick(b); v.OK() {
			label = fmt.Sprintf("%s (%s %.1f)", s.Label, name, 100*v.V)
		}
		p.Legend.Add(label, l)
	}
	d, err := plotter.NewLine(chance)
	if err != nil {
		return nil, fmt.Errorf("figures: %s: %w", title, err)
	}
	d.Color = color.Gray{Y: 140}
	d.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	p.Add(d)
	p.Legend.Add("chance", d)
	return p, nil
}

// lineStyle is the outline of bars and cells.
var lineStyle = draw.LineStyle{Color: color.Gray{Y: 60}, Width: vg.Points(0.5)}
