package preprocess

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // JPEG: VisA, MAD-Real, Real-IAD
	_ "image/png"  // PNG: MVTec-AD, MPDD, MAD-Sim, every mask
	"io"
	"math/bits"
	"os"

	"github.com/dapobench/dapobench/internal/budget"
)

// Decode reads a PNG or JPEG file. Errors name the file. JPEGs are decoded
// by the pure-Go image/jpeg unless the turbojpeg build tag is set; see
// JPEGDecoder.
func Decode(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("preprocess: %w", err)
	}
	defer f.Close()
	img, err := decode(f)
	if err != nil {
		return nil, fmt.Errorf("preprocess: decode %s: %w", path, err)
	}
	return img, nil
}

func decode(f io.ReadSeeker) (image.Image, error) {
	br := bufio.NewReader(f)
	cfg, format, err := image.DecodeConfig(br)
	if err != nil {
		return nil, err
	}
	// The pixel budget, before any pixel is allocated: a corrupt or
	// hostile header cannot make us allocate gigabytes
	// (docs/README.md#budgets).
	if err := budget.CheckPixels(cfg.Width, cfg.Height); err != nil {
		return nil, fmt.Errorf("%s image: %w", format, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if format == "jpeg" {
		return decodeJPEG(f)
	}
	img, _, err := image.Decode(bufio.NewReader(f))
	return img, err
}

// toPlane exposes img as 8-bit channels for the resampler, converting only
// when the memory layout cannot be read as is. The conversion is Pillow's
// convert("RGB"): alpha is dropped, not composited, and colours are taken
// unpremultiplied; 16-bit samples keep their high byte, as Pillow does when
// it opens 16-bit RGB(A) PNGs. Grayscale stays one channel and is
// replicated to RGB after resizing, which gives the same values.
func toPlane(img image.Image) (plane, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return plane{}, errors.New("empty image")
	}
	switch m := img.(type) {
	case *image.Gray:
		return plane{pix: m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], w: w, h: h, stride: m.Stride, ch: 1, ps: 1}, nil
	case *image.NRGBA:
		return plane{pix: m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], w: w, h: h, stride: m.Stride, ch: 3, ps: 4}, nil
	case *image.RGBA:
		if m.Opaque() { // premultiplied equals straight only when opaque
			return plane{pix: m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], w: w, h: h, stride: m.Stride, ch: 3, ps: 4}, nil
		}
	case *image.Gray16:
		p := plane{pix: make([]uint8, w*h), w: w, h: h, stride: w, ch: 1, ps: 1}
		for y := range h {
			in := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			out := p.pix[y*w : (y+1)*w]
			for x := range out {
				out[x] = in[2*x] // big-endian: the high byte comes first
			}
		}
		return p, nil
	case *image.RGBA64, *image.NRGBA64:
		var pix []uint8
		var stride int
		if m, ok := img.(*image.RGBA64); ok {
			if !m.Opaque() {
				break // premultiplied: the colour model below unpremultiplies
			}
			pix, stride = m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride
		} else {
			m := img.(*image.NRGBA64)
			pix, stride = m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride
		}
		p := plane{pix: make([]uint8, w*h*3), w: w, h: h, stride: 3 * w, ch: 3, ps: 3}
		for y := range h {
			in := pix[y*stride:]
			out := p.pix[y*3*w : (y+1)*3*w]
			for x := range w {
				out[3*x], out[3*x+1], out[3*x+2] = in[8*x], in[8*x+2], in[8*x+4]
			}
		}
		return p, nil
	case *image.Paletted:
		var lut [256][3]uint8
		for i, c := range m.Palette {
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			lut[i] = [3]uint8{n.R, n.G, n.B}
		}
		p := plane{pix: make([]uint8, w*h*3), w: w, h: h, stride: 3 * w, ch: 3, ps: 3}
		for y := range h {
			in := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			out := p.pix[y*3*w : (y+1)*3*w]
			for x, v := range in {
				if int(v) >= len(m.Palette) {
					return plane{}, fmt.Errorf("palette index %d out of range (%d colours)", v, len(m.Palette))
				}
				copy(out[3*x:3*x+3], lut[v][:])
			}
		}
		return p, nil
	case *image.YCbCr:
		return ycbcrPlane(m), nil
	}
	// Anything else (CMYK JPEGs, translucent premultiplied images) goes
	// through the colour model, pixel by pixel.
	p := plane{pix: make([]uint8, w*h*3), w: w, h: h, stride: 3 * w, ch: 3, ps: 3}
	for y := range h {
		out := p.pix[y*3*w : (y+1)*3*w]
		for x := range w {
			n := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			out[3*x], out[3*x+1], out[3*x+2] = n.R, n.G, n.B
		}
	}
	return p, nil
}

// The chroma terms of color.YCbCrToRGB, by sample value: its integer
// arithmetic split so that a pixel costs three additions and three clamps
// (the same int32 sums, hence the same bytes).
var crR, crG, cbG, cbB [256]int32

func init() {
	for v := range 256 {
		c := int32(v) - 128
		crR[v], crG[v] = 91881*c, -46802*c
		cbG[v], cbB[v] = -22554*c, 116130*c
	}
}

// clamp16 is YCbCrToRGB's rounding shift and clamp to 0..255.
func clamp16(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	return uint8(^(v >> 31))
}

// ycbcrPlane converts a decoded JPEG to packed RGB exactly as
// color.YCbCrToRGB does pixel by pixel, into a pooled buffer.
func ycbcrPlane(m *image.YCbCr) plane {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	p := plane{pix: getPix(w * h * 3), w: w, h: h, stride: 3 * w, ch: 3, ps: 3, pooled: true}
	hs, vs := 1, 1 // chroma subsampling, as image.YCbCr.COffset applies it
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hs = 2
	case image.YCbCrSubsampleRatio420:
		hs, vs = 2, 2
	case image.YCbCrSubsampleRatio440:
		vs = 2
	case image.YCbCrSubsampleRatio411:
		hs = 4
	case image.YCbCrSubsampleRatio410:
		hs, vs = 4, 2
	}
	for y := range h {
		out := p.pix[y*3*w : (y+1)*3*w]
		yRow := m.Y[m.YOffset(b.Min.X, b.Min.Y+y):][:w]
		cRow := ((b.Min.Y+y)/vs - b.Min.Y/vs) * m.CStride
		cb, cr := m.Cb[cRow:], m.Cr[cRow:]
		x0, shift := b.Min.X, uint(bits.TrailingZeros(uint(hs)))
		for x, yy := range yRow {
			// (x0+x)/hs - x0/hs, by shifts for the usual origin ≥ 0
			var ci int
			if x0 >= 0 {
				ci = (x0+x)>>shift - x0>>shift
			} else {
				ci = (x0+x)/hs - x0/hs
			}
			cb, cr := cb[ci], cr[ci]
			yy1 := int32(yy) * 0x10101
			o := out[3*x : 3*x+3 : 3*x+3]
			o[0] = clamp16(yy1 + crR[cr])
			o[1] = clamp16(yy1 + cbG[cb] + crG[cr])
			o[2] = clamp16(yy1 + cbB[cb])
		}
	}
	return p
}
