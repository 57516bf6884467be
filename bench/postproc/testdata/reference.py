#!/usr/bin/python3
"""Reference values for package postproc, computed with NumPy and SciPy.

Run with Debian's python3-numpy and python3-scipy (NumPy 1.24, SciPy 1.10), from this folder:

    /usr/bin/python3 reference.py

The WinCLIP window and harmonic-mean references are in
baselines/winclip/testdata/windows/reference.py, which reuses this file's helpers.

It writes cases.json (the cases, their parameters and file names) and one .npy file (float32, C order)
per input and expected output. Nothing here calls the Go code; the Go tests only read these files.

What each reference is:
  normalize    x / max(||x||, 1e-12) in float64, as torch.nn.functional.normalize (eps=1e-12)
  logits       (x/|x|) @ (t/|t|).T / temperature in float64, then float32
  softmax      scipy.special.softmax in float64 of the float32 logits, then float32
  bilinear     torch.nn.functional.interpolate(mode="bilinear", size=...), align_corners True and False.
               PyTorch cannot be installed here (Debian has no python3-torch and only Debian, npm and Go
               registries are reachable), so torch_bilinear() below re-implements its CPU kernel in NumPy
               float32, following aten/src/ATen/native/UpSample.h (area_pixel_compute_scale,
               area_pixel_compute_source_index, guard_index_and_lambda, compute_source_index_and_lambda)
               and the generic kernel of UpSampleKernel.cpp (Interpolate<2>: rows along x first, then the
               two rows blended along y; every product and sum rounded to float32).
  gaussian     scipy.ndimage.gaussian_filter(x, sigma, truncate=...) with mode "reflect", on float32 input;
               the kernel is read back from scipy by filtering a unit impulse in float64
Large outputs keep only the rows listed in the case ("rows"), to keep this folder small.
"""
import json

import numpy as np
import scipy
import scipy.ndimage as ndi
import scipy.special

f32 = np.float32
CASES = []


def save(name, arr):
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    np.save(name + ".npy", arr)
    return name + ".npy"


def rng(seed):
    return np.random.RandomState(seed)


# ---------------------------------------------------------------- normalize, logits, softmax

def normalize64(x):
    x = x.astype(np.float64)
    n = np.sqrt((x * x).sum(axis=1, keepdims=True))
    return x / np.maximum(n, 1e-12)


def case_normalize():
    x = rng(1).randn(6, 16).astype(f32)
    x[2] = 0            # stays zero under F.normalize
    x[3] *= f32(1e-15)  # norm below eps: divided by eps
    x[4] *= f32(1e6)
    CASES.append(dict(kind="normalize", name="normalize_6x16", x=save("normalize_x", x),
                      want=save("normalize_want", normalize64(x).astype(f32))))


def case_logits():
    r = rng(2)
    x = r.randn(9, 24).astype(f32)
    t = r.randn(4, 24).astype(f32) * f32(3)
    for name, temp in (("dapo", 0.07), ("aprilgan", 0.01)):
        logits = (normalize64(x) @ normalize64(t).T / temp).astype(f32)
        probs = scipy.special.softmax(logits.astype(np.float64), axis=1).astype(f32)
        CASES.append(dict(kind="logits", name="logits_" + name, temperature=temp,
                          x=save("logits_x", x), t=save("logits_t", t),
                          want=save("logits_%s_want" % name, logits),
                          probs=save("logits_%s_probs" % name, probs)))
    # 7 classes (a block of four and three single ones), odd dimension
    r = rng(7)
    x = r.randn(11, 37).astype(f32)
    t = r.randn(7, 37).astype(f32)
    logits = (normalize64(x) @ normalize64(t).T / 0.07).astype(f32)
    probs = scipy.special.softmax(logits.astype(np.float64), axis=1).astype(f32)
    CASES.append(dict(kind="logits", name="logits_7classes", temperature=0.07,
                      x=save("logits7_x", x), t=save("logits7_t", t),
                      want=save("logits7_want", logits), probs=save("logits7_probs", probs)))


def case_softmax():
    rows = [
        [1000, 999, -1000],        # naive exp overflows
        [88, 89, 90],              # exp(90) overflows float32
        [-100, -100.5, -120],      # naive exp underflows to 0/0
        [0, 0, 0],
        [1e-3, 2e-3, -5e-4],
        [14.2857, -14.2857, 3.0],  # cos/0.07 range
    ]
    x = np.array(rows, dtype=f32)
    want = scipy.special.softmax(x.astype(np.float64), axis=1).astype(f32)
    CASES.append(dict(kind="softmax", name="softmax_extremes", x=save("softmax_x", x),
                      want=save("softmax_want", want)))


# ---------------------------------------------------------------- bilinear (PyTorch CPU semantics)

def torch_axis(n, m, align_corners):
    """Source indices and weights along one axis, float32 arithmetic as in PyTorch."""
    i0 = np.zeros(m, dtype=np.int64)
    i1 = np.zeros(m, dtype=np.int64)
    l0 = np.zeros(m, dtype=f32)
    l1 = np.zeros(m, dtype=f32)
    if n == m:  # compute_source_index_and_lambda: same size copies
        i0[:] = np.arange(m)
        i1[:] = np.arange(m)
        l0[:] = 1
        return i0, i1, l0, l1
    if align_corners:
        scale = f32(n - 1) / f32(m - 1) if m > 1 else f32(0)
    else:
        scale = f32(n) / f32(m)
    for i in range(m):
        if align_corners:
            real = scale * f32(i)
        else:
            real = scale * (f32(i) + f32(0.5)) - f32(0.5)
            if real < f32(0):
                real = f32(0)
        a = min(int(np.floor(real)), n - 1)
        lam1 = min(max(real - f32(a), f32(0)), f32(1))
        i0[i] = a
        i1[i] = a + (1 if a < n - 1 else 0)
        l1[i] = lam1
        l0[i] = f32(1) - lam1
    return i0, i1, l0, l1


def torch_bilinear(x, out_h, out_w, align_corners):
    """F.interpolate(x[None], size=(out_h, out_w), mode="bilinear", align_corners=...)[0] for x [C,H,W] float32."""
    assert x.dtype == f32
    hi0, hi1, hl0, hl1 = torch_axis(x.shape[1], out_h, align_corners)
    wi0, wi1, wl0, wl1 = torch_axis(x.shape[2], out_w, align_corners)
    rows = x[:, :, wi0] * wl0 + x[:, :, wi1] * wl1           # float32: each op rounds
    out = rows[:, hi0, :] * hl0[None, :, None] + rows[:, hi1, :] * hl1[None, :, None]
    assert out.dtype == f32
    return out


ROWS_518 = sorted(set([0, 1, 2, 3, 6, 7, 13, 14, 20, 21, 35, 36, 255, 256, 257, 258, 259,
                       482, 496, 497, 503, 504, 510, 511, 514, 515, 516, 517] + list(range(0, 518, 29))))
ROWS_240 = sorted(set([0, 1, 2, 7, 8, 9, 15, 16, 17, 119, 120, 121, 222, 223, 231, 232, 238, 239] +
                      list(range(0, 240, 19))))


def case_bilinear():
    r = rng(3)
    shapes = [
        # name, C, inH, inW, outH, outW, rows (None = all)
        ("37to518", 1, 37, 37, 518, 518, ROWS_518),
        ("15to240", 1, 15, 15, 240, 240, ROWS_240),
        ("37x20to100x61", 2, 37, 20, 100, 61, None),
        ("5x7to13x11", 3, 5, 7, 13, 11, None),
        ("same4x6", 1, 4, 6, 4, 6, None),
        ("1x1to3x3", 2, 1, 1, 3, 3, None),
        ("5x5to1x1", 1, 5, 5, 1, 1, None),
        ("9x8to4x3", 2, 9, 8, 4, 3, None),
        ("2x9to7x9", 1, 2, 9, 7, 9, None),
    ]
    for name, c, ih, iw, oh, ow, rows in shapes:
        x = r.rand(c, ih, iw).astype(f32)
        xf = save("bilinear_%s_x" % name, x)
        for align in (True, False):
            out = torch_bilinear(x, oh, ow, align)
            if rows is not None:
                out = out[:, rows, :]
            tag = "ac" if align else "hp"
            CASES.append(dict(kind="bilinear", name="bilinear_%s_%s" % (name, tag), align_corners=align,
                              c=c, in_h=ih, in_w=iw, out_h=oh, out_w=ow, rows=rows,
                              x=xf, want=save("bilinear_%s_%s_want" % (name, tag), out)))


# ---------------------------------------------------------------- gaussian (scipy.ndimage)

def scipy_kernel(sigma, truncate):
    radius = int(truncate * float(sigma) + 0.5)
    n = 4 * radius + 3
    impulse = np.zeros(n)
    impulse[n // 2] = 1.0
    k = ndi.gaussian_filter1d(impulse, sigma, truncate=truncate, mode="constant")
    return k[n // 2 - radius:n // 2 + radius + 1]


def pattern518():
    """An input the Go test rebuilds exactly: ((i*131 + j*71 + (i*j) % 97) % 1009) / 1009 in float32."""
    i, j = np.mgrid[0:518, 0:518].astype(np.int64)
    return (((i * 131 + j * 71 + (i * j) % 97) % 1009) / 1009.0).astype(f32)


def case_gaussian():
    r = rng(4)
    inputs = [
        ("rand64x48", r.rand(64, 48).astype(f32), 4.0, 4.0, None),
        ("rand20x20_s1.5", r.rand(20, 20).astype(f32), 1.5, 4.0, None),
        ("rand20x20_s2_t2.5", r.rand(20, 20).astype(f32), 2.0, 2.5, None),
        ("rand9x11_s0.3", r.rand(9, 11).astype(f32), 0.3, 4.0, None),
        ("rand9x11_s0.1", r.rand(9, 11).astype(f32), 0.1, 4.0, None),  # radius 0
        ("tiny3x5", r.rand(3, 5).astype(f32), 4.0, 4.0, None),         # radius 16 > size: reflect repeats
        ("one1x1", r.rand(1, 1).astype(f32), 4.0, 4.0, None),
        ("row1x7", r.rand(1, 7).astype(f32), 4.0, 4.0, None),
        ("col7x1", r.rand(7, 1).astype(f32), 4.0, 4.0, None),
        ("randn30x33", r.randn(30, 33).astype(f32) * f32(50), 4.0, 4.0, None),
        ("pattern518", pattern518(), 4.0, 4.0, ROWS_518),
    ]
    for name, x, sigma, trunc, rows in inputs:
        out = ndi.gaussian_filter(x, sigma=sigma, truncate=trunc)  # mode='reflect', output float32
        assert out.dtype == f32
        if rows is not None:
            out = out[rows, :]
        c = dict(kind="gaussian", name="gaussian_" + name, sigma=sigma, truncate=trunc,
                 h=x.shape[0], w=x.shape[1], rows=rows, want=save("gaussian_%s_want" % name, out))
        if name == "pattern518":
            c["pattern"] = "518"
        else:
            c["x"] = save("gaussian_%s_x" % name, x)
        CASES.append(c)
    for sigma, trunc in ((4.0, 4.0), (1.5, 4.0), (2.0, 2.5), (0.3, 4.0)):
        k = scipy_kernel(sigma, trunc)
        CASES.append(dict(kind="kernel", name="kernel_s%g_t%g" % (sigma, trunc), sigma=sigma, truncate=trunc,
                          weights=[float(v) for v in k]))


def main():
    case_normalize()
    case_logits()
    case_softmax()
    case_bilinear()
    case_gaussian()
    meta = dict(numpy=np.__version__, scipy=scipy.__version__, cases=CASES)
    with open("cases.json", "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
