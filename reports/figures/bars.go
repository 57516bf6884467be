package figures

import (
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// BarSeries is one run's values over the groups of a bar chart, as
// fractions in [0, 1]; NaN marks an undefined value.
type BarSeries struct {
	Label  string
	Values []float64
}

// groupWidth is the share of a group's slot its bars fill.
const groupWidth = 0.8

// Bars draws grouped bars, one group per name (a category or a defect
// type) and one bar per run, in percent. Bars are polygons in data
// coordinates, so that an undefined value can be marked "n/a" exactly
// where its bar would stand instead of being drawn as a misleading 0.
func Bars(title, ylabel string, groups []string, series []BarSeries) (*plot.Plot, error) {
	if len(groups) == 0 || len(series) == 0 {
		return nil, fmt.Errorf("figures: %s: %d groups, %d runs: nothing to draw", title, len(groups), len(series))
	}
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	m := len(series)
	w := groupWidth / float64(m)
	var na plotter.XYLabels
	for k, s := range series {
		if len(s.Values) != len(groups) {
			return nil, fmt.Errorf("figures: %s: %s has %d values for %d groups", title, s.Label, len(s.Values), len(groups))
		}
		var rings []plotter.XYer
		for i, v := range s.Values {
			x0 := float64(i) - groupWidth/2 + float64(k)*w
			if math.IsNaN(v) {
				na.XYs = append(na.XYs, plotter.XY{X: x0 + w/2, Y: 1})
				na.Labels = append(na.Labels, "n/a")
				continue
			}
			h := 100 * v
			rings = append(rings, plotter.XYs{{X: x0, Y: 0}, {X: x0 + w, Y: 0}, {X: x0 + w, Y: h}, {X: x0, Y: h}})
		}
		poly, err := plotter.NewPolygon(rings...)
		if err != nil {
			return nil, fmt.Errorf("figures: %s: %s: %w", title, s.Label, err)
		}
		poly.Color = plotutil.Color(k)
		poly.LineStyle = lineStyle
		if len(rings) > 0 {
			p.Add(poly)
		}
		p.Legend.Add(s.Label, poly)
	}
	if len(na.XYs) > 0 {
		l, err := plotter.NewLabels(na)
		if err != nil {
			return nil, fmt.Errorf("figures: %s: %w", title, err)
		}
		for i := range l.TextStyle {
			l.TextStyle[i].Rotation = math.Pi / 2
			l.TextStyle[i].Font.Size = vg.Points(7)
		}
		p.Add(l)
	}
	p.NominalX(groups...)
	if len(groups) > 6 {
		p.X.Tick.Label.Rotation = math.Pi / 4
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
	}
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5
	// Leave room above 100 % for the legend, one line per run.
	p.Y.Min, p.Y.Max = 0, 100+8*float64(m+1)
	p.Y.Tick.Marker = plot.ConstantTicks(percentTicks())
	p.Legend.Top = true
	return p, nil
}

func percentTicks() []plot.Tick {
	var t []plot.Tick
	for v := 0; v <= 100; v += 10 {
		label := ""
		if v%20 == 0 {
			label = fmt.Sprint(v)
		}
		t = append(t, plot.Tick{Value: float64(v), Label: label})
	}
	return t
}
