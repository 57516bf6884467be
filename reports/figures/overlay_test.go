package figures

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ramp is a size×size map rising from left to right, and a square defect
// in the middle of its mask.
func ramp(size int) (m []float32, mask []uint8) {
	m = make([]float32, size*size)
	mask = make([]uint8, size*size)
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			m[y*size+x] = float32(x) / float32(size-1)
			if x >= size/4 && x < 3*size/4 && y >= size/4 && y < 3*size/4 {
				mask[y*size+x] = 1
			}
		}
	}
	return m, mask
}

// picture is an opaque grey w×(w·3/5) image: not square, so it is
// squashed.
func picture(w int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, w*3/5))
	for i := range img.Pix {
		img.Pix[i] = 200
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	return img
}

func TestOverlay(t *testing.T) {
	const size = 32
	m, mask := ramp(size)
	img := picture(100)
	o := Overlay{Image: img, Map: m, Mask: mask, Size: size, Min: 0, Max: 1}
	out, err := DrawOverlay(o)
	if err != nil {
		t.Fatal(err)
	}
	s := PanelScale(size)
	if s != 8 {
		t.Fatalf("scale %d for size %d", s, size)
	}
	side := size * s
	if got := out.Bounds().Size(); got != (image.Point{2*side + panelGap, side}) {
		t.Fatalf("size %v", got)
	}
	right := side + panelGap
	// Left panel: the image, untouched away from the contour.
	if c := out.RGBAAt(2, 2); c != (color.RGBA{200, 200, 200, 255}) {
		t.Errorf("left panel corner %v", c)
	}
	// Right panel: blue where the map is low, red where it is high.
	lo, hi := out.RGBAAt(right+2, 2), out.RGBAAt(right+side-3, 2)
	if !(lo.B > lo.R && hi.R > hi.B) {
		t.Errorf("heat colours: low %v, high %v", lo, hi)
	}
	// The contour runs along the defect's edge in both panels, not inside.
	edge := size / 4 * s
	for _, x := range []int{edge, right + edge} {
		if c := out.RGBAAt(x, side/2); c != contourColor {
			t.Errorf("contour at x=%d: %v", x, c)
		}
		if c := out.RGBAAt(x+s, side/2); c == contourColor {
			t.Errorf("contour inside the defect at x=%d", x+s)
		}
	}
	if c := out.RGBAAt(side+1, 0); c != gapColor {
		t.Errorf("gap %v", c)
	}

	p := filepath.Join(t.TempDir(), "overlay.png")
	if err := SavePNG(p, out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	back, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if back.Bounds() != out.Bounds() {
		t.Errorf("decoded %v, drew %v", back.Bounds(), out.Bounds())
	}
}

func TestOverlayMissingImage(t *testing.T) {
	m, _ := ramp(16)
	out, err := DrawOverlay(Overlay{Map: m, Size: 16, Min: 0, Max: 1, Scale: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Bounds().Size(); got != (image.Point{2*32 + panelGap, 32}) {
		t.Fatalf("size %v", got)
	}
	if c := out.RGBAAt(0, 0); c != missingColor {
		t.Errorf("background %v, want grey", c)
	}
}

func TestOverlayErrors(t *testing.T) {
	m, mask := ramp(8)
	for _, c := range []struct {
		o    Overlay
		want string
	}{
		{Overlay{Map: m, Size: 0, Max: 1}, "size 0"},
		{Overlay{Map: m[:10], Size: 8, Max: 1}, "map has 10 values, want 8×8"},
		{Overlay{Map: m, Mask: mask[:3], Size: 8, Max: 1}, "mask has 3 values"},
		{Overlay{Map: m, Size: 8, Min: 1, Max: 1}, "range [1, 1] is empty"},
	} {
		if _, err := DrawOverlay(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}
