// Package postproc turns CLIP image and text features into anomaly scores
// and maps the way the reference Python code does
// (docs/methods.md#postproc-overview), so that the harness reproduces the
// published numbers and not merely similar ones.
//
// Every scheme needs the same few steps: L2 normalisation, cosine logits
// divided by a temperature, a softmax over classes, bilinear upsampling of
// the patch grid to the evaluation size, and Gaussian smoothing (AnomalyCLIP).
// Steps that belong to one scheme alone live with it (WinCLIP's windows and
// harmonic means are in package winclip). Each function here
// follows one reference implementation exactly, including its edge cases:
//
//   - NormalizeRows is torch.nn.functional.normalize (eps 1e-12).
//   - CosineLogits and Softmax compute in float64 and round once to float32
//     (PyTorch works in float32, so its values carry more rounding error).
//   - Bilinear is torch.nn.functional.interpolate(mode="bilinear", size=…)
//     on CPU, both align_corners settings, with PyTorch's float32 index and
//     weight arithmetic and its generic kernel's order of operations.
//   - Gaussian is scipy.ndimage.gaussian_filter with its defaults: the
//     kernel as scipy builds it, mode "reflect", two float32 passes.
//
// testdata/reference.py computes every checked value with NumPy and SciPy;
// PyTorch has no Debian package, so the script carries a NumPy
// re-implementation of PyTorch's CPU bilinear kernel instead.
//
// Functions validate shapes and return errors; they never panic on bad input.
// Plans (Bilinear, Gaussian) are immutable after construction and safe for
// concurrent use; each keeps a pool of scratch buffers so that filtering
// hundreds of 518×518 maps does not allocate per map.
package postproc
