package loaders

import (
	"bytes"
	"fmt"
	"image"
	_ "image/jpeg" // register decoders for image.DecodeConfig
	_ "image/png"
	"io"
	"os"
)

// pngTrailer is the IEND chunk every complete PNG file ends with.
var pngTrailer = []byte{0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82}

// jpegTail is how far from the end a JPEG's end-of-image marker may sit;
// some encoders pad the file after it.
const jpegTail = 1024

// probe reads an image's size from its header and checks that the file is
// complete (PNG ends with IEND, JPEG has an end-of-image marker near its
// end) without decoding the pixels, and refuses sizes over the pixel
// budget (checkDeclared), so that a header-only scan already rejects the
// file a full decode would choke on. It is what keeps a scan of ten thousand
// samples within seconds while still catching truncated downloads.
func probe(path string) (width, height int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	if st.Size() == 0 {
		return 0, 0, fmt.Errorf("%w: empty file", ErrCorruptImage)
	}
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %v", ErrCorruptImage, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return 0, 0, fmt.Errorf("%w: size %dx%d", ErrCorruptImage, cfg.Width, cfg.Height)
	}
	if err := checkDeclared(format, cfg.Width, cfg.Height, st.Size()); err != nil {
		return 0, 0, err
	}
	tail := int64(len(pngTrailer))
	if format == "jpeg" {
		tail = jpegTail
	}
	tail = min(tail, st.Size())
	buf := make([]byte, tail)
	if _, err := f.ReadAt(buf, st.Size()-tail); err != nil && err != io.EOF {
		return 0, 0, err
	}
	switch format {
	case "png":
		if !bytes.Equal(buf, pngTrailer) {
			return 0, 0, fmt.Errorf("%w: truncated PNG (no IEND chunk at the end)", ErrCorruptImage)
		}
	case "jpeg":
		if !bytes.Contains(buf, []byte{0xFF, 0xD9}) {
			return 0, 0, fmt.Errorf("%w: truncated JPEG (no end-of-image marker)", ErrCorruptImage)
		}
	}
	return cfg.Width, cfg.Height, nil
}
