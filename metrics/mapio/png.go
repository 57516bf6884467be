package mapio

import (
	"bytes"
	"fmt"
	"image"
	"image/png"

	"github.com/dapobench/dapobench/internal/budget"
)

// DecodePNG decodes an 8- or 16-bit grayscale PNG map. Values are the raw
// integers (0–255 or 0–65535): only their order matters to the metrics, so
// they are not rescaled.
func DecodePNG(data []byte) (*Map, error) {
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("mapio: png: %v: %w", err, ErrFormat)
	}
	if err := budget.CheckPixels(cfg.Width, cfg.Height); err != nil {
		return nil, fmt.Errorf("mapio: png: image size: %v: %w", err, ErrFormat)
	}
	// Deflate expands at most budget.DeflateRatio times; a smaller file
	// cannot hold the image.
	if px := int64(cfg.Width) * int64(cfg.Height); px > budget.DeflateRatio*int64(len(data)) {
		return nil, fmt.Errorf("mapio: png: image size %d×%d: more than %d bytes can hold: %w", cfg.Width, cfg.Height, len(data), ErrFormat)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("mapio: png: %v: %w", err, ErrFormat)
	}
	b := img.Bounds()
	m := &Map{Width: b.Dx(), Height: b.Dy(), Pix: make([]float32, b.Dx()*b.Dy())}
	switch g := img.(type) {
	case *image.Gray:
		for y := 0; y < m.Height; y++ {
			for x, v := range g.Pix[y*g.Stride : y*g.Stride+m.Width] {
				m.Pix[y*m.Width+x] = float32(v)
			}
		}
	case *image.Gray16:
		for y := 0; y < m.Height; y++ {
			row := g.Pix[y*g.Stride : y*g.Stride+2*m.Width]
			for x := 0; x < m.Width; x++ {
				m.Pix[y*m.Width+x] = float32(uint16(row[2*x])<<8 | uint16(row[2*x+1]))
			}
		}
	default:
		return nil, fmt.Errorf("mapio: png: %T: a map must be 8- or 16-bit grayscale: %w", img, ErrFormat)
	}
	return m, nil
}
