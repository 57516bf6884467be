package preprocess

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"os"

	"github.com/dapobench/dapobench/internal/parallel"
)

// Input sizes (docs/methods.md#preprocess-sizes). Every method squashes
// the image to a square (no aspect preservation, no crop) with PIL bicubic.
const (
	// DAPOSize: open_clip force_image_size=518 and the patched eval
	// transform Resize((518,518), BICUBIC) (docs/methods.md#preprocess-sizes).
	DAPOSize = 518
	// AnomalyCLIPSize: image size 518, the same squash as DAPO
	// (utils.py::get_transform; docs/methods.md#preprocess-sizes).
	AnomalyCLIPSize = 518
	// WinCLIPSize: ViT-B-16-plus-240, Resize((240,240), bicubic) in anomalib
	// (docs/methods.md#preprocess-sizes, docs/methods.md#winclip-preprocess).
	WinCLIPSize = 240
)

// OpenAI CLIP normalisation, used by all three methods
// (docs/methods.md#clip-normalisation).
const (
	MeanR, MeanG, MeanB = 0.48145466, 0.4578275, 0.40821073
	StdR, StdG, StdB    = 0.26862954, 0.26130258, 0.27577711
)

// Spec is how one method turns images and masks into tensors: a squash
// resize to Size×Size (bicubic for images, bilinear thresholded at 0.5 for
// masks), then per-channel (x/255 - Mean) / Std.
type Spec struct {
	Size      int
	Mean, Std [3]float32
}

// OpenAI returns the Spec for a Size with the OpenAI CLIP mean and std.
func OpenAI(size int) Spec {
	return Spec{Size: size, Mean: [3]float32{MeanR, MeanG, MeanB}, Std: [3]float32{StdR, StdG, StdB}}
}

// DAPO, AnomalyCLIP and WinCLIP return each method's Spec.
func DAPO() Spec        { return OpenAI(DAPOSize) }
func AnomalyCLIP() Spec { return OpenAI(AnomalyCLIPSize) }
func WinCLIP() Spec     { return OpenAI(WinCLIPSize) }

// ImageLen is the number of float32 values one image occupies: 3·Size·Size.
func (s Spec) ImageLen() int { return 3 * s.Size * s.Size }

// Shape is the NCHW shape of a batch of n images.
func (s Spec) Shape(n int) []int64 { return []int64{int64(n), 3, int64(s.Size), int64(s.Size)} }

func (s Spec) check() error {
	if s.Size <= 0 {
		return fmt.Errorf("preprocess: Spec.Size = %d, want > 0", s.Size)
	}
	for c, v := range s.Std {
		if !(v > 0) {
			return fmt.Errorf("preprocess: Spec.Std[%d] = %v, want > 0", c, v)
		}
	}
	return nil
}

// lut maps each 8-bit value of each channel to its normalised float32, with
// the float32 operations torchvision's ToTensor and Normalize perform:
// (v/255 - mean) / std.
func (s Spec) lut() *[3][256]float32 {
	var t [3][256]float32
	for c := range 3 {
		for v := range 256 {
			t[c][v] = (float32(v)/255 - s.Mean[c]) / s.Std[c]
		}
	}
	return &t
}

// Image squash-resizes img and writes it normalised into dst, which must
// hold ImageLen values, in CHW order. dst is typically a slice of the
// []float32 backing a [B,3,S,S] tensor.
func (s Spec) Image(dst []float32, img image.Image) error {
	if err := s.check(); err != nil {
		return err
	}
	if len(dst) != s.ImageLen() {
		return fmt.Errorf("preprocess: destination holds %d values, want 3×%d×%d = %d", len(dst), s.Size, s.Size, s.ImageLen())
	}
	p, err := toPlane(img)
	if err != nil {
		return fmt.Errorf("preprocess: %w", err)
	}
	s.fill(dst, p, s.lut())
	return nil
}

func (s Spec) fill(dst []float32, p plane, lut *[3][256]float32) {
	n := s.Size
	r, g, b := dst[:n*n], dst[n*n:2*n*n], dst[2*n*n:]
	resize(p, n, n, bicubic, func(y int, row []uint8) {
		o := y * n
		rr, gg, bb := r[o:o+n], g[o:o+n], b[o:o+n]
		if p.ch == 1 {
			for x, v := range row[:n] {
				rr[x], gg[x], bb[x] = lut[0][v], lut[1][v], lut[2][v]
			}
			return
		}
		for x := range n {
			px := row[3*x : 3*x+3]
			rr[x], gg[x], bb[x] = lut[0][px[0]], lut[1][px[1]], lut[2][px[2]]
		}
	})
}

// Files decodes, resizes and normalises the images at paths into dst, which
// must hold len(paths)·ImageLen values: image i fills
// dst[i·ImageLen:(i+1)·ImageLen]. Images are processed in parallel, one per
// goroutine, GOMAXPROCS at a time. The first error stops the work and names
// its file; cancelling ctx stops it between images.
func (s Spec) Files(ctx context.Context, dst []float32, paths []string) error {
	if err := s.check(); err != nil {
		return err
	}
	if len(dst) != len(paths)*s.ImageLen() {
		return fmt.Errorf("preprocess: destination holds %d values, want %d images × %d = %d", len(dst), len(paths), s.ImageLen(), len(paths)*s.ImageLen())
	}
	lut := s.lut()
	err := parallel.For(ctx, len(paths), 0, func(_ context.Context, i int) error {
		return s.file(dst[i*s.ImageLen():(i+1)*s.ImageLen()], paths[i], lut)
	})
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("preprocess: %w", err)
	}
	return err
}

func (s Spec) file(dst []float32, path string, lut *[3][256]float32) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("preprocess: %w", err)
	}
	// The common PNGs decode straight into a plane; the rest through
	// image.Image (docs/README.md#preprocess-speed).
	p, err := decodePNG(data)
	if err != nil {
		img, err := decode(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("preprocess: decode %s: %w", path, err)
		}
		if p, err = toPlane(img); err != nil {
			return fmt.Errorf("preprocess: %s: %w", path, err)
		}
	}
	s.fill(dst, p, lut)
	p.release()
	return nil
}

// Mask squash-resizes a binary mask of width×height (pix row-major, any
// non-zero value is defect) to Size×Size into dst, as 0 or 1. It follows the
// reference pipelines: the mask as a 0/255 "L" image, PIL bilinear, then
// /255 > 0.5 (docs/methods.md#preprocess-mask), i.e. a resized level of 128 or more.
//
// This is how both official test scripts read evaluation masks: DAPO's
// test.py sets gt_mask > 0.5 to 1 on the float tensor ToTensor made
// (https://github.com/boschresearch/defect-aware-prompt-optimization/blob/ad2ceabc14079a177d9710a996a21f1a45c50938/test.py#L283-L285),
// AnomalyCLIP's test.py likewise
// (https://github.com/zqhang/AnomalyCLIP/blob/45ed4dd35c05797d854294b5e8d585c545920089/test.py#L84-L85).
// Training reads the levels with its own rule (MaskLevels, package train).
func (s Spec) Mask(dst, pix []uint8, width, height int) error {
	return s.mask(dst, pix, width, height, func(out, row []uint8) {
		for x, v := range row {
			out[x] = 0
			if v >= 128 { // v/255 > 0.5
				out[x] = 1
			}
		}
	})
}

// MaskLevels is Mask without the threshold: the bilinearly resized mask
// as the 8-bit levels PIL gives (0 outside the defect, 255 well inside
// it, values between on its edges), the tensor ToTensor divides by 255.
// The official trainers read these levels differently (package train).
func (s Spec) MaskLevels(dst, pix []uint8, width, height int) error {
	return s.mask(dst, pix, width, height, func(out, row []uint8) { copy(out, row) })
}

// mask checks the sizes, makes the 0/255 image and resizes it, handing
// each output row to put.
func (s Spec) mask(dst, pix []uint8, width, height int, put func(out, row []uint8)) error {
	if err := s.check(); err != nil {
		return err
	}
	if width <= 0 || height <= 0 || len(pix) != width*height {
		return fmt.Errorf("preprocess: mask of %d×%d with %d values", width, height, len(pix))
	}
	n := s.Size
	if len(dst) != n*n {
		return fmt.Errorf("preprocess: mask destination holds %d values, want %d×%d", len(dst), n, n)
	}
	l := make([]uint8, len(pix))
	any := false
	for i, v := range pix {
		if v != 0 {
			l[i] = 255
			any = true
		}
	}
	if !any { // normal images: skip the arithmetic
		clear(dst)
		return nil
	}
	resize(plane{pix: l, w: width, h: height, stride: width, ch: 1, ps: 1}, n, n, bilinear, func(y int, row []uint8) {
		put(dst[y*n:(y+1)*n], row[:n])
	})
	return nil
}
