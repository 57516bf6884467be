package loaders

import (
	"bufio"
	"fmt"
	"image"
	"io"
	"os"

	"github.com/dapobench/dapobench/internal/budget"
)

// checkDeclared refuses an image whose header declares a size the pixel
// budget does not allow, or, for a PNG, more pixels than a file of its
// length can hold (Deflate expands at most budget.DeflateRatio times, and a
// pixel takes at least one bit), before any pixel is allocated. It is the
// one size check of every image and mask the loaders read
// (docs/README.md#budgets).
func checkDeclared(format string, width, height int, fileSize int64) error {
	if err := budget.CheckPixels(width, height); err != nil {
		return fmt.Errorf("%w: %v", ErrTooLarge, err)
	}
	if format == "png" && int64(width)*int64(height) > 8*budget.DeflateRatio*fileSize {
		return fmt.Errorf("%w: a PNG of %d bytes cannot hold %d×%d pixels (truncated, or a decompression bomb)",
			ErrCorruptImage, fileSize, width, height)
	}
	return nil
}

// decodeImage decodes an image file in full after checking its header
// with checkDeclared: the only way the loaders decode pixels.
func decodeImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return decodeImageFrom(f, st.Size())
}

// decodeImageFrom is decodeImage over the size bytes of r.
func decodeImageFrom(r io.ReadSeeker, size int64) (image.Image, error) {
	cfg, format, err := image.DecodeConfig(bufio.NewReader(r))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptImage, err)
	}
	if err := checkDeclared(format, cfg.Width, cfg.Height, size); err != nil {
		return nil, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(bufio.NewReader(r))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptImage, err)
	}
	return img, nil
}
