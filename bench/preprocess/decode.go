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
		p := plane{pix: make([]uint8, w*h*3), w: w, h: h, stride: 3 * w, ch: 3, ps: 3}
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
			for x, yy := range yRow {
				ci := cRow + (b.Min.X+x)/hs - b.Min.X/hs
				out[3*x], out[3*x+1], out[3*x+2] = color.YCbCrToRGB(yy, m.Cb[ci], m.Cr[ci])
			}
		}
		return p, nil
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
