#!/usr/bin/python3
"""Reference values for WinCLIP's windows and harmonic means (package winclip), computed with NumPy.

Run with Debian's python3-numpy (NumPy 1.24), from this folder:

    /usr/bin/python3 reference.py

It reuses the helpers of bench/postproc/testdata/reference.py (the float32 .npy writer and the NumPy
re-implementation of PyTorch's bilinear kernel) and writes cases.json plus one .npy file per input and
expected output. Nothing here calls the Go code; the Go tests only read these files.

What each reference is:
  windows      anomalib make_masks(grid, k, stride) = unfold over arange(H*W), here built with
               numpy.lib.stride_tricks.sliding_window_view
  harmonic     anomalib harmonic_aggregation (per patch: count / sum(1/s) of the covering windows,
               then nan_to_num(posinf=0)) in float64, and the multi-scale harmonic mean
               (n_scales+1) / sum(1/s) over {image score, scale maps}; both then float32
  winclip      the zero-shot WinCLIP map: harmonic maps of 2x2 and 3x3 windows on the 15x15 grid, the
               multi-scale mean with the image score, upsampled to 240 with align_corners=False
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "bench", "postproc", "testdata"))
from reference import ROWS_240, f32, rng, save, torch_bilinear  # noqa: E402

CASES = []


# ---------------------------------------------------------------- WinCLIP windows and harmonic means

def make_masks(h, w, k, stride):
    """Window-major patch indices: row i is window i's k*k patches (make_masks(...).T)."""
    grid = np.arange(h * w).reshape(h, w)
    v = np.lib.stride_tricks.sliding_window_view(grid, (k, k))[::stride, ::stride]
    return v.reshape(-1, k * k)


def harmonic_aggregation(scores, h, w, masks):
    """anomalib harmonic_aggregation for one image, float64: masks is window-major."""
    out = np.zeros(h * w)
    with np.errstate(divide="ignore", invalid="ignore"):
        for idx in range(h * w):
            cover = np.any(masks == idx, axis=1)
            out[idx] = cover.sum() / (1 / scores[cover].astype(np.float64)).sum()
    return np.nan_to_num(out.astype(f32), posinf=0.0)


def multiscale(image, maps):
    with np.errstate(divide="ignore"):
        s = 1 / np.float64(image) + sum(1 / m.astype(np.float64) for m in maps)
        return ((len(maps) + 1) / s).astype(f32)


def case_windows():
    for h, w, k, stride in ((15, 15, 2, 1), (15, 15, 3, 1), (3, 3, 2, 1), (4, 4, 2, 1), (4, 4, 2, 2),
                            (5, 6, 3, 2), (4, 5, 4, 1), (7, 7, 1, 3)):
        m = make_masks(h, w, k, stride)
        CASES.append(dict(kind="windows", name="windows_%dx%d_k%d_s%d" % (h, w, k, stride),
                          grid_h=h, grid_w=w, k=k, stride=stride, patches=m.tolist()))


def case_harmonic():
    r = rng(5)
    for h, w, k, stride, zero in ((15, 15, 2, 1, False), (15, 15, 3, 1, False), (5, 5, 2, 2, False),
                                  (6, 6, 3, 1, True)):
        masks = make_masks(h, w, k, stride)
        s = r.uniform(0.02, 0.98, size=len(masks)).astype(f32)
        if zero:
            s[4] = 0  # 1/0 = inf: the covered patches become 0
        want = harmonic_aggregation(s, h, w, masks)
        CASES.append(dict(kind="harmonic", name="harmonic_%dx%d_k%d_s%d%s" % (h, w, k, stride, "_zero" if zero else ""),
                          grid_h=h, grid_w=w, k=k, stride=stride,
                          scores=save("harmonic_%dx%d_k%d_s%d_scores" % (h, w, k, stride), s),
                          want=save("harmonic_%dx%d_k%d_s%d_want" % (h, w, k, stride), want)))


def case_winclip():
    """The whole zero-shot WinCLIP map from window scores (anomalib WinClipModel._compute_zero_shot_scores)."""
    r = rng(6)
    g = 15
    image = f32(r.uniform(0.05, 0.95))
    s2 = r.uniform(0.02, 0.98, size=14 * 14).astype(f32)
    s3 = r.uniform(0.02, 0.98, size=13 * 13).astype(f32)
    m2 = harmonic_aggregation(s2, g, g, make_masks(g, g, 2, 1))
    m3 = harmonic_aggregation(s3, g, g, make_masks(g, g, 3, 1))
    ms = multiscale(image, [m2, m3])
    up = torch_bilinear(ms.reshape(1, g, g), 240, 240, False)[:, ROWS_240, :]
    CASES.append(dict(kind="winclip", name="winclip_zero_shot", image=float(image),
                      scores2=save("winclip_scores2", s2), scores3=save("winclip_scores3", s3),
                      multiscale=save("winclip_multiscale", ms), rows=ROWS_240,
                      want=save("winclip_map240", up)))
    # the multi-scale mean with a zero image score and a zero map entry
    m = [r.uniform(0.1, 0.9, size=9).astype(f32) for _ in range(2)]
    m[1][3] = 0
    for name, img in (("zero_image", 0.0), ("zero_entry", 0.4)):
        CASES.append(dict(kind="multiscale", name="multiscale_" + name, image=img,
                          maps=[save("multiscale_map%d" % i, v) for i, v in enumerate(m)],
                          want=save("multiscale_%s_want" % name, multiscale(f32(img), m))))


def main():
    case_windows()
    case_harmonic()
    case_winclip()
    meta = dict(numpy=np.__version__, cases=CASES)
    with open("cases.json", "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
