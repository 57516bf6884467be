// Package preprocess turns image and mask files into the tensors CLIP-style
// models take, reproducing the Python reference pipelines pixel for pixel.
//
// Every method here squashes the image to a square with PIL bicubic (no
// aspect preservation, no crop; docs/methods.md#preprocess-image), converts
// to RGB, scales to [0, 1] and normalises with the OpenAI CLIP mean and std;
// ground-truth masks are resized with PIL bilinear and thresholded at 0.5.
// Spec holds those numbers per method (DAPO, AnomalyCLIP, WinCLIP) and
// writes NCHW float32 straight into the slice that backs the model's input
// tensor.
//
// The resampler is Pillow's algorithm (fixed-point weights, two passes,
// 8-bit rounding between them), so resized PNG images and masks equal
// Pillow 9.4's exactly; testdata/pil_golden.py writes the test images and
// Pillow's outputs, and TestPILParity compares them.
//
// Conversion to RGB follows Image.convert("RGB"): alpha is dropped, not
// composited; palette images use their palette colours; 16-bit samples keep
// the high byte. Two deliberate differences from Pillow remain:
//
//   - 16-bit grayscale PNGs: Pillow opens them as 32-bit "I" images and
//     convert("RGB") clips every value above 255, turning them white. We
//     keep the high byte, as for 16-bit colour.
//   - JPEG: Go's image/jpeg upsamples chroma and rounds differently from
//     libjpeg-turbo, which Pillow uses: after resizing to 518 the difference
//     was mean 2.2, max 90 levels on a synthetic photo with saturated colour
//     edges (mean 1.1, max 23 on a real one; docs/methods.md#preprocess-jpeg). This
//     matters for VisA, MAD-Real and Real-IAD, which are JPEG. Building with
//     -tags turbojpeg (cgo, Debian libturbojpeg0-dev) decodes with
//     libjpeg-turbo instead and matches Pillow exactly. JPEGDecoder names
//     the decoder in use so results can record it.
//
// Files decodes in parallel, one image per goroutine; the resize of one
// image is single-threaded, which is faster overall than splitting it.
package preprocess
