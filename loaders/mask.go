package loaders

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
)

// Mask is a binary ground-truth mask: Pix holds 0 or 1, row-major.
type Mask struct {
	Width, Height int
	Pix           []uint8
}

// MaskStats describes the raw values of a mask file before binarisation.
type MaskStats struct {
	// Values are the distinct raw values seen (palette indices for
	// paletted masks, the maximum channel for colour masks), at most 256.
	Values []uint16
	// Binary is true when the raw values are a subset of {0,1} or {0,255}
	// (or {0,65535} for 16-bit masks).
	Binary bool
}

// ReadMask decodes a mask file and binarises it: any non-zero value is
// defect, as every reference loader does (threshold > 0). Paletted masks are
// read by palette index, not by colour, because raw VisA masks store defect
// class ids as indices. Colour masks count a pixel as defect when any
// channel is non-zero.
func ReadMask(path string) (*Mask, error) {
	m, _, err := readMask(path)
	return m, err
}

// ReadMaskStats is ReadMask plus the raw values it saw.
func ReadMaskStats(path string) (*Mask, MaskStats, error) {
	return readMask(path)
}

func readMask(path string) (*Mask, MaskStats, error) {
	m, st, err := decodeMask(path)
	if err != nil {
		var pe *os.PathError
		if !errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", path, err)
		}
	}
	return m, st, err
}

// decodeMask is readMask with errors that do not repeat the path, for
// callers that name the file themselves.
func decodeMask(path string) (*Mask, MaskStats, error) {
	img, err := decodeImage(path)
	if err != nil {
		return nil, MaskStats{}, err
	}
	m, st := maskOf(img)
	return m, st, nil
}

// maskOf binarises a decoded mask and collects its raw values.
func maskOf(img image.Image) (*Mask, MaskStats) {
	b := img.Bounds()
	m := &Mask{Width: b.Dx(), Height: b.Dy(), Pix: make([]uint8, b.Dx()*b.Dy())}
	var seen [65536 / 64]uint64
	mark := func(v uint16) { seen[v/64] |= 1 << (v % 64) }
	i := 0
	switch src := img.(type) {
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := src.Pix[(y-b.Min.Y)*src.Stride:]
			for x := 0; x < b.Dx(); x++ {
				v := row[x]
				mark(uint16(v))
				if v != 0 {
					m.Pix[i] = 1
				}
				i++
			}
		}
	case *image.Paletted:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := src.Pix[(y-b.Min.Y)*src.Stride:]
			for x := 0; x < b.Dx(); x++ {
				v := row[x]
				mark(uint16(v))
				if v != 0 {
					m.Pix[i] = 1
				}
				i++
			}
		}
	case *image.Gray16:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				v := src.Gray16At(x, y).Y
				mark(v)
				if v != 0 {
					m.Pix[i] = 1
				}
				i++
			}
		}
	default:
		// Colour masks (e.g. 3-channel 0/255 masks written by OpenCV):
		// defect where any colour channel is non-zero; alpha is ignored.
		_, wide := img.(*image.RGBA64)
		if _, ok := img.(*image.NRGBA64); ok {
			wide = true
		}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBA64Model.Convert(img.At(x, y)).(color.NRGBA64)
				v := max(c.R, c.G, c.B)
				if v != 0 {
					m.Pix[i] = 1
				}
				if !wide {
					v >>= 8
				}
				mark(v)
				i++
			}
		}
	}
	var st MaskStats
	for w, bits := range seen {
		for bits != 0 {
			j := 0
			for bits&(1<<j) == 0 {
				j++
			}
			bits &^= 1 << j
			if len(st.Values) < 256 {
				st.Values = append(st.Values, uint16(w*64+j))
			}
		}
	}
	st.Binary = isBinary(st.Values)
	return m, st
}

func isBinary(vals []uint16) bool {
	for _, v := range vals {
		if v != 0 && v != 1 && v != 255 && v != 65535 {
			return false
		}
	}
	// {0,1} and {0,255} are binary; {1,255} mixes encodings.
	has1, has255 := false, false
	for _, v := range vals {
		has1 = has1 || v == 1
		has255 = has255 || v == 255
	}
	return !(has1 && has255)
}

// Any reports whether the mask has a defect pixel.
func (m *Mask) Any() bool {
	for _, v := range m.Pix {
		if v != 0 {
			return true
		}
	}
	return false
}
