package train

import (
	"bytes"
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// LossPlot draws a run's loss curve: the loss of every step, faint, at
// its fraction of the epoch, and the epoch means of the loss and of its
// pixel and image parts at the epoch's end.
func LossPlot(title string, history []EpochStats) (*plot.Plot, error) {
	if len(history) == 0 {
		return nil, fmt.Errorf("train: loss plot: no epochs")
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = "epoch", "loss"
	p.X.Min = 0
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	var steps plotter.XYs
	means := map[string]plotter.XYs{}
	top := 0.0
	for _, e := range history {
		n := float64(len(e.Steps))
		for i, v := range e.Steps {
			steps = append(steps, plotter.XY{X: float64(e.Epoch-1) + float64(i+1)/n, Y: v})
			top = max(top, v)
		}
		top = max(top, e.Loss)
		x := float64(e.Epoch)
		means["loss"] = append(means["loss"], plotter.XY{X: x, Y: e.Loss})
		means["pixel (4·Σ focal+dice)"] = append(means["pixel (4·Σ focal+dice)"], plotter.XY{X: x, Y: e.Local})
		means["image (cross-entropy)"] = append(means["image (cross-entropy)"], plotter.XY{X: x, Y: e.Image})
	}
	if len(steps) > 0 {
		l, err := plotter.NewLine(steps)
		if err != nil {
			return nil, fmt.Errorf("train: loss plot: %w", err)
		}
		l.Color = color.RGBA{R: 160, G: 160, B: 160, A: 255}
		l.Width = vg.Points(0.75)
		p.Add(l)
		p.Legend.Add("step loss", l)
	}
	colors := []color.Color{
		color.RGBA{R: 31, G: 119, B: 180, A: 255},
		color.RGBA{R: 255, G: 127, B: 14, A: 255},
		color.RGBA{R: 44, G: 160, B: 44, A: 255},
	}
	for i, name := range []string{"loss", "pixel (4·Σ focal+dice)", "image (cross-entropy)"} {
		l, pts, err := plotter.NewLinePoints(means[name])
		if err != nil {
			return nil, fmt.Errorf("train: loss plot: %w", err)
		}
		l.Color, pts.Color = colors[i], colors[i]
		l.Width = vg.Points(1.5)
		pts.Shape = draw.CircleGlyph{}
		p.Add(l, pts)
		p.Legend.Add("epoch mean "+name, l, pts)
	}
	// Headroom for the legend above the curves.
	p.Y.Max = 1.4 * top
	return p, nil
}

// PNG renders a plot as PNG bytes of w×h.
func PNG(p *plot.Plot, w, h vg.Length) ([]byte, error) {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return b.Bytes(), nil
}
