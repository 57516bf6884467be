//go:build !turbojpeg

package preprocess

import (
	"bufio"
	"image"
	"image/jpeg"
	"io"
)

// JPEGDecoder names the JPEG decoder compiled in, for recording in results:
// Go's image/jpeg, whose chroma upsampling and rounding differ from
// libjpeg-turbo's (and so from PIL's) by a few levels per pixel.
const JPEGDecoder = "go:image/jpeg"

func decodeJPEG(r io.Reader) (image.Image, error) {
	return jpeg.Decode(bufio.NewReader(r))
}
