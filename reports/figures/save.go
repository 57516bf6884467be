package figures

import (
	"bytes"
	"fmt"
	"image"
	"image/png"

	"github.com/dapobench/dapobench/internal/atomicfile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
)

// Size of a figure; PNGs are rendered at DPI dots per inch.
type Size struct{ W, H vg.Length }

// DPI is gonum/plot's PNG resolution: a 6-inch figure is 576 pixels wide.
const DPI = 96

// Standard figure sizes.
var (
	CurveSize     = Size{5 * vg.Inch, 4 * vg.Inch}
	BarSize       = Size{7 * vg.Inch, 4 * vg.Inch}
	ConfusionSize = Size{5 * vg.Inch, 4.5 * vg.Inch}
)

// Pixels is the PNG size of a figure of s.
func (s Size) Pixels() (w, h int) {
	return int(s.W / vg.Inch * DPI), int(s.H / vg.Inch * DPI)
}

// Formats are the files SavePlot writes: a PNG to embed and an SVG for
// print.
var Formats = []string{"png", "svg"}

// SavePlot writes p as base.png and base.svg, each atomically, and
// returns their paths.
func SavePlot(p *plot.Plot, base string, s Size) ([]string, error) {
	var paths []string
	for _, f := range Formats {
		wt, err := p.WriterTo(s.W, s.H, f)
		if err != nil {
			return nil, fmt.Errorf("figures: %s.%s: %w", base, f, err)
		}
		var b bytes.Buffer
		if _, err := wt.WriteTo(&b); err != nil {
			return nil, fmt.Errorf("figures: %s.%s: %w", base, f, err)
		}
		path := base + "." + f
		if err := atomicfile.WriteFile(path, b.Bytes()); err != nil {
			return nil, fmt.Errorf("figures: %w", err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// SavePNG writes img as a PNG file atomically.
func SavePNG(path string, img image.Image) error {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return fmt.Errorf("figures: %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, b.Bytes()); err != nil {
		return fmt.Errorf("figures: %w", err)
	}
	return nil
}
