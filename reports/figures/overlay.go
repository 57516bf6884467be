package figures

import (
	"fmt"
	"image"
	"image/color"
	"math"

	xdraw "golang.org/x/image/draw"
	"gonum.org/v1/plot/palette/moreland"
)

// Overlay is one sample's anomaly map with what to draw it on.
type Overlay struct {
	// Image is the test image; it is squashed to Size×Size as every scheme
	// squashes its input (bench/preprocess), with Catmull-Rom, which is
	// close to but not exactly PIL's bicubic: good for display, not for
	// numbers. nil draws a grey background (the image file is gone).
	Image image.Image
	Map   []float32 // Size×Size anomaly map, row-major
	Mask  []uint8   // Size×Size ground truth, non-zero is defect; nil for none
	Size  int
	// Min and Max are the map values drawn as the coldest and hottest
	// colours; values outside are clamped. Give the examples of one
	// category one range so that their maps can be compared.
	Min, Max float64
	// Scale enlarges every map pixel to Scale×Scale screen pixels, so that
	// maps of small models stay visible; 0 picks the smallest scale that
	// makes a panel at least 256 pixels wide.
	Scale int
}

// Overlay colours: the heat map is blended over the image with heatAlpha;
// the ground-truth contour is drawn opaque.
var (
	contourColor = color.RGBA{R: 0, G: 255, B: 0, A: 255}
	missingColor = color.RGBA{R: 128, G: 128, B: 128, A: 255}
	gapColor     = color.RGBA{R: 255, G: 255, B: 255, A: 255}
)

const (
	heatAlpha = 0.5
	panelGap  = 4 // pixels between the two panels
)

// MinPanel is the smallest panel width Scale 0 aims for.
const MinPanel = 256

// PanelScale is the Scale 0 picks for maps of size.
func PanelScale(size int) int {
	if size <= 0 {
		return 1
	}
	return max(1, (MinPanel+size-1)/size)
}

// DrawOverlay returns two panels side by side, each Size·Scale pixels
// square: the image with the ground-truth contour, and the image blended
// with the anomaly map as a heat map, with the same contour. Map pixels
// are enlarged without smoothing, so the picture shows the map's true
// resolution.
func DrawOverlay(o Overlay) (*image.RGBA, error) {
	n := o.Size
	switch {
	case n <= 0:
		return nil, fmt.Errorf("figures: overlay of size %d", n)
	case len(o.Map) != n*n:
		return nil, fmt.Errorf("figures: overlay: map has %d values, want %d×%d", len(o.Map), n, n)
	case o.Mask != nil && len(o.Mask) != n*n:
		return nil, fmt.Errorf("figures: overlay: mask has %d values, want %d×%d", len(o.Mask), n, n)
	case !(o.Max > o.Min) || math.IsInf(o.Max-o.Min, 0):
		return nil, fmt.Errorf("figures: overlay: map range [%v, %v] is empty", o.Min, o.Max)
	}
	s := o.Scale
	if s <= 0 {
		s = PanelScale(n)
	}
	side := n * s
	base := image.NewRGBA(image.Rect(0, 0, side, side))
	if o.Image != nil {
		xdraw.CatmullRom.Scale(base, base.Bounds(), o.Image, o.Image.Bounds(), xdraw.Src, nil)
	} else {
		xdraw.Draw(base, base.Bounds(), image.NewUniform(missingColor), image.Point{}, xdraw.Src)
	}
	lut, err := heatLUT()
	if err != nil {
		return nil, err
	}
	out := image.NewRGBA(image.Rect(0, 0, 2*side+panelGap, side))
	xdraw.Draw(out, out.Bounds(), image.NewUniform(gapColor), image.Point{}, xdraw.Src)
	right := side + panelGap
	for y := 0; y < side; y++ {
		for x := 0; x < side; x++ {
			px := base.RGBAAt(x, y)
			out.SetRGBA(x, y, px)
			v := (float64(o.Map[(y/s)*n+x/s]) - o.Min) / (o.Max - o.Min)
			h := lut[int(math.Round(255*min(1, max(0, v))))]
			out.SetRGBA(right+x, y, blend(px, h, heatAlpha))
		}
	}
	if o.Mask != nil {
		for y := 0; y < side; y++ {
			for x := 0; x < side; x++ {
				if onContour(o.Mask, n, s, x, y) {
					out.SetRGBA(x, y, contourColor)
					out.SetRGBA(right+x, y, contourColor)
				}
			}
		}
	}
	return out, nil
}

// onContour reports whether screen pixel (x, y) of a mask enlarged by s is
// a defect pixel next to a non-defect one (or the border); the line is
// about s/4 pixels thick so that it stays visible at any scale.
func onContour(mask []uint8, n, s, x, y int) bool {
	in := func(x, y int) bool {
		if x < 0 || y < 0 || x >= n*s || y >= n*s {
			return false
		}
		return mask[(y/s)*n+x/s] != 0
	}
	if !in(x, y) {
		return false
	}
	t := max(1, s/4)
	return !in(x-t, y) || !in(x+t, y) || !in(x, y-t) || !in(x, y+t)
}

// heatLUT is the heat map's 256 colours, Moreland's smooth blue-red.
func heatLUT() ([256]color.RGBA, error) {
	var lut [256]color.RGBA
	cm := moreland.SmoothBlueRed()
	cm.SetMin(0)
	cm.SetMax(1)
	for i := range lut {
		c, err := cm.At(float64(i) / 255)
		if err != nil {
			return lut, fmt.Errorf("figures: heat map colour %d: %w", i, err)
		}
		lut[i] = color.RGBAModel.Convert(c).(color.RGBA)
	}
	return lut, nil
}

func blend(a, b color.RGBA, alpha float64) color.RGBA {
	mix := func(x, y uint8) uint8 { return uint8(math.Round((1-alpha)*float64(x) + alpha*float64(y))) }
	return color.RGBA{R: mix(a.R, b.R), G: mix(a.G, b.G), B: mix(a.B, b.B), A: 255}
}
