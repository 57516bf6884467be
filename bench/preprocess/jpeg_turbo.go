//go:build turbojpeg

package preprocess

/*
#cgo LDFLAGS: -lturbojpeg
#include <stdlib.h>
#include <turbojpeg.h>
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"unsafe"
)

// JPEGDecoder names the JPEG decoder compiled in: libjpeg-turbo through its
// TurboJPEG API (build tag turbojpeg; Debian package libturbojpeg0-dev). With
// default flags (accurate integer IDCT, fancy upsampling) it decodes as
// Pillow does, so JPEG inputs match Pillow exactly too.
const JPEGDecoder = "libturbojpeg"

func decodeJPEG(r io.Reader) (image.Image, error) {
	buf, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if len(buf) == 0 {
		return nil, errors.New("empty JPEG")
	}
	h := C.tjInitDecompress()
	if h == nil {
		return nil, errors.New("turbojpeg: cannot create a decompressor")
	}
	defer C.tjDestroy(h)
	src := (*C.uchar)(unsafe.Pointer(&buf[0]))
	var w, ht, subsamp, colorspace C.int
	if C.tjDecompressHeader3(h, src, C.ulong(len(buf)), &w, &ht, &subsamp, &colorspace) != 0 {
		return nil, fmt.Errorf("turbojpeg: %s", C.GoString(C.tjGetErrorStr2(h)))
	}
	if colorspace == C.TJCS_CMYK || colorspace == C.TJCS_YCCK {
		// TurboJPEG cannot convert CMYK to RGB; the Go decoder can.
		return jpeg.Decode(bytes.NewReader(buf))
	}
	img := image.NewRGBA(image.Rect(0, 0, int(w), int(ht)))
	dst := (*C.uchar)(unsafe.Pointer(&img.Pix[0]))
	if C.tjDecompress2(h, src, C.ulong(len(buf)), dst, w, C.int(img.Stride), ht, C.TJPF_RGBA, 0) != 0 {
		// Warnings (such as a truncated file) also return -1; Pillow
		// rejects truncated files by default, so treat both as errors.
		return nil, fmt.Errorf("turbojpeg: %s", C.GoString(C.tjGetErrorStr2(h)))
	}
	return img, nil
}
