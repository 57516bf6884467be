#!/usr/bin/python3
"""Reference values for the metrics parity tests.

Run with Debian's python3 (scikit-learn 1.2, scipy 1.10, scikit-image 0.19,
numpy 1.24):

    /usr/bin/python3 metrics/testdata/gen_reference.py

It writes metrics/testdata/reference/: the inputs (JSON, and .npy for
maps and masks) and what the reference libraries compute on them. The Go
tests read these files, so CI needs no Python.

Sources of each value:
  * AUROC, AP, F1-max: scikit-learn (roc_auc_score, average_precision_score,
    precision_recall_curve with F1 = 2PR/(P+R) over finite points, as the
    AnomalyCLIP/APRIL-GAN/DAPO code computes it).
  * AUPRO "mvtec": the MVTec AD evaluation script's algorithm
    (compute_pro + trapezoid), written out here from its description in
    docs/evaluation.md#aupro-mvtec, with scipy.ndimage.label and a
    3x3 structuring element for the regions.
  * AUPRO "cflow200": the cal_pro_score loop of AnomalyCLIP/APRIL-GAN/DAPO,
    written out from its description in docs/evaluation.md#aupro-cflow200:
    np.arange thresholds,
    skimage.measure.label/regionprops regions, sklearn.metrics.auc.
  * Multi-type: label_binarize + roc_auc_score/average_precision_score
    per class and macro, and f1_score of the argmax, as DAPO's
    test_multi_defect.py (docs/evaluation.md#metric-multitype); image-level type accuracy
    with accuracy_score and balanced_accuracy_score.
  * DeLong: the definition (placement values from all positive/negative
    pairs, O(mn)), not the fast mid-rank algorithm the Go code uses; the
    p-value from scipy.stats.norm.
"""
import bisect
import json
import os
import sys
import warnings

import numpy as np
import scipy
import scipy.ndimage
import scipy.stats
import skimage
import sklearn
from skimage import measure
from sklearn.metrics import (accuracy_score, auc, average_precision_score,
                             balanced_accuracy_score, confusion_matrix,
                             f1_score, precision_recall_curve, roc_auc_score)
from sklearn.preprocessing import label_binarize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")


def num(x):
    """A float for JSON, or None for NaN (undefined)."""
    x = float(x)
    return None if np.isnan(x) else x


def sk_binary(y, s):
    """scikit-learn's values, or None where it raises or has no value."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out["auroc"] = num(roc_auc_score(y, s))
        except ValueError as e:
            out["auroc"], out["auroc_error"] = None, str(e)
        if y.sum() == 0:  # AP is -0.0 with a warning; no F1 exists
            out["ap"] = None
            out["ap_sklearn"] = float(average_precision_score(y, s))
            out["f1max"] = out["f1_threshold"] = None
            return out
        out["ap"] = num(average_precision_score(y, s))
        p, r, t = precision_recall_curve(y, s)
        f1 = (2 * p * r) / (p + r)
        out["f1max"] = float(np.max(f1[np.isfinite(f1)]))
        f1 = np.where(np.isfinite(f1), f1, -np.inf)
        out["f1_threshold"] = float(t[int(np.argmax(f1))])
    return out


def binary_cases():
    rng = np.random.default_rng(20240601)
    cases = []

    def add(name, s, y):
        s = np.asarray(s)
        y = np.asarray(y, dtype=int)
        c = {"name": name, "dtype": str(s.dtype), "scores": [float(v) for v in s],
             "labels": [int(v) for v in y]}
        c.update(sk_binary(y, s))
        cases.append(c)

    n = 300
    y = rng.random(n) < 0.3
    add("normal", rng.normal(size=n) + y, y)
    y = rng.random(2000) < 0.1
    add("ties_heavy", np.round(rng.random(2000) * 4 + y) / 4, y)
    y = rng.random(500) < 0.5
    add("negative", -np.exp(rng.normal(size=500) - y), y)
    s = rng.choice([0.0, -0.0, 1.0, -1.0], size=400)
    y = rng.random(400) < 0.4
    add("signed_zero", s, y)
    add("signed_zero_split", [0.0] * 5 + [-0.0] * 5, [1] * 5 + [0] * 5)
    y = rng.random(100) < 0.25
    add("constant", np.full(100, 0.7), y)
    add("one_negative", [0.1, 0.5, 0.9, 0.3], [1, 1, 1, 0])
    add("one_positive", [0.1, 0.5, 0.9, 0.3], [0, 0, 1, 0])
    add("perfect", [0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])
    add("inverted", [0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0])
    y = rng.random(5000) < 0.05
    add("quantised_5000", np.round(rng.normal(size=5000) + 2 * y, 3), y)
    y = rng.random(1000) < 0.3
    add("float32", (rng.random(1000) + 0.3 * y).astype(np.float32), y)
    add("huge_range", [1e-300, -1e300, 1e300, 5e-324, 0.0, 1.0], [0, 0, 1, 1, 0, 1])
    add("all_positive", [0.3, 0.1, 0.2], [1, 1, 1])
    add("all_negative", [0.3, 0.1, 0.2], [0, 0, 0])
    return cases


# --- MVTec AD evaluation: compute_pro + trapezoid (docs/evaluation.md#aupro-mvtec) ---

def mvtec_pro_curve(maps, masks):
    structure = np.ones((3, 3), dtype=int)
    n_ok, n_regions = 0, 0
    fp_step = np.zeros(maps.shape, dtype=np.uint32)
    pro_step = np.zeros(maps.shape, dtype=np.float64)
    for i, gt in enumerate(masks):
        labeled, k = scipy.ndimage.label(gt, structure)
        n_regions += k
        ok = labeled == 0
        n_ok += np.sum(ok)
        fp_step[i][ok] = 1
        for r in range(1, k + 1):
            region = labeled == r
            pro_step[i][region] = 1.0 / np.sum(region)
    scores = maps.ravel().copy()
    order = np.argsort(scores).astype(np.uint32)[::-1]
    scores = scores[order]
    fps = np.cumsum(fp_step.ravel()[order]).astype(np.uint32).astype(np.float32)
    fps = np.divide(fps, n_ok, out=fps)  # float32, as the script
    pros = np.cumsum(pro_step.ravel()[order]) / n_regions
    keep = np.append(np.diff(scores) != 0, np.True_)
    fps = np.clip(fps[keep], None, 1.0)
    pros = np.clip(pros[keep], None, 1.0)
    z, o = np.array([0.0]), np.array([1.0])
    return np.concatenate((z, fps, o)), np.concatenate((z, pros, o))


def mvtec_trapezoid(x, y, x_max):
    x, y = np.asarray(x), np.asarray(y)
    fin = np.isfinite(x) & np.isfinite(y)
    x, y = x[fin], y[fin]
    corr = 0.0
    if x_max not in x:
        i = bisect.bisect(x, x_max)
        assert 0 < i < len(x)
        yi = y[i - 1] + (y[i] - y[i - 1]) * (x_max - x[i - 1]) / (x[i] - x[i - 1])
        corr = 0.5 * (yi + y[i - 1]) * (x_max - x[i - 1])
    keep = x <= x_max
    x, y = x[keep], y[keep]
    return np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + corr


def mvtec_aupro(maps, masks, limit=0.3):
    if not (masks != 0).any() or (masks != 0).all():
        return None  # the script's 0.15 artefact; undefined for us
    x, y = mvtec_pro_curve(maps, masks)
    return float(mvtec_trapezoid(x, y, limit) / limit)


# --- cal_pro_score (docs/evaluation.md#aupro-cflow200) ---

def cflow_thresholds(maps):
    lo, hi = maps.min(), maps.max()
    step = (hi - lo) / 200
    return np.arange(lo, hi, step)


def cflow_aupro(maps, masks, max_fpr=0.3):
    if maps.min() == maps.max():
        return None, "arange: zero step"
    regions = [measure.regionprops(measure.label(m)) for m in masks]
    if sum(len(r) for r in regions) == 0:
        return None, "no regions"
    background = 1 - masks
    n_bg = background.sum()
    if n_bg == 0:
        return None, "no background"
    pred = np.zeros(maps.shape, dtype=bool)
    fprs, pros = [], []
    for th in cflow_thresholds(maps):
        pred[maps <= th], pred[maps > th] = 0, 1
        per_region = []
        for b, rs in zip(pred, regions):
            for r in rs:
                per_region.append(b[r.coords[:, 0], r.coords[:, 1]].sum() / r.area)
        fprs.append(np.logical_and(background, pred).sum() / n_bg)
        pros.append(np.array(per_region).mean())
    fprs, pros = np.array(fprs), np.array(pros)
    keep = fprs < max_fpr
    fprs = fprs[keep]
    if len(fprs) < 2:
        return None, "fewer than two thresholds kept"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fprs = (fprs - fprs.min()) / (fprs.max() - fprs.min())
        v = auc(fprs, pros[keep])
    if np.isnan(v):
        return None, "0/0 rescale"
    return float(v), ""


def pixel_case(name, maps, masks, cases):
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    masks = np.ascontiguousarray(masks, dtype=np.uint8)
    np.save(os.path.join(OUT, name + "_maps.npy"), maps)
    np.save(os.path.join(OUT, name + "_masks.npy"), masks)
    c = {"name": name, "maps": name + "_maps.npy", "masks": name + "_masks.npy"}
    c.update(sk_binary((masks.ravel() != 0).astype(int), maps.ravel()))
    c["aupro_mvtec"] = mvtec_aupro(maps, masks)
    # The same curve with float64 FPRs, to show what the script's float32
    # FPRs change.
    c["aupro_cflow200"], c["cflow200_why"] = cflow_aupro(maps, (masks != 0).astype(np.uint8))
    if maps.min() < maps.max():
        c["cflow200_thresholds"] = int(len(cflow_thresholds(maps)))
    cases.append(c)


def blobs(rng, n, h, w, count, rmax):
    masks = np.zeros((n, h, w), dtype=np.uint8)
    for i in range(n):
        for _ in range(rng.integers(0, count + 1)):
            cy, cx = rng.integers(0, h), rng.integers(0, w)
            ry, rx = rng.integers(1, rmax + 1), rng.integers(1, rmax + 1)
            yy, xx = np.ogrid[:h, :w]
            masks[i][((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 255
    return masks


def smooth(rng, n, h, w):
    coarse = rng.random((n, 6, 7))
    ys = np.linspace(0, 5, h)
    xs = np.linspace(0, 6, w)
    out = np.empty((n, h, w))
    for i in range(n):
        tmp = np.array([np.interp(xs, np.arange(7), row) for row in coarse[i]])
        out[i] = np.array([np.interp(ys, np.arange(6), col) for col in tmp.T]).T
    return out


def pixel_cases():
    rng = np.random.default_rng(77)
    cases = []
    n, h, w = 8, 40, 52
    masks = blobs(rng, n, h, w, 3, 7)
    maps = smooth(rng, n, h, w) + 0.05 * rng.normal(size=(n, h, w)) + 0.4 * (masks > 0)
    pixel_case("pix_smooth", maps, masks, cases)

    masks = blobs(rng, n, h, w, 2, 6)
    maps = np.round((smooth(rng, n, h, w) + 0.3 * (masks > 0)) * 6) / 6
    pixel_case("pix_ties", maps, masks, cases)

    masks = blobs(rng, n, h, w, 3, 5)
    maps = -np.exp(-(smooth(rng, n, h, w) + 0.5 * (masks > 0)) * 3)
    maps[:, ::7, ::5] = 0.0
    maps[:, 3::7, ::3] = -0.0
    pixel_case("pix_negative_zero", maps, masks, cases)

    # Regions that touch only diagonally (one 8-connected region, several
    # 4-connected ones), regions on the border, and defect-free images.
    masks = np.zeros((4, 12, 15), dtype=np.uint8)
    for k in range(5):
        masks[0, 2 + k, 2 + k] = 1
    masks[0, 0, :3] = 1
    masks[1, 11, 14] = 1
    masks[1, 5:8, 0] = 1
    masks[1, 4, 1] = 1
    maps = rng.random((4, 12, 15))
    maps[masks > 0] += 0.3
    pixel_case("pix_diagonal", maps, masks, cases)

    # FPR reaching exactly 0.3 at a tie group: 1000 background pixels in ten
    # tied levels of 100, defect pixels tied with the levels.
    h, w = 20, 55
    masks = np.zeros((1, h, w), dtype=np.uint8)
    masks[0, :, 50:] = 255  # 100 defect pixels, one region
    masks[0, 0, 0] = 0
    bg = np.repeat(np.arange(10, dtype=np.float32), 100)
    maps = np.zeros((1, h, w), dtype=np.float32)
    flat = maps[0].ravel()
    is_bg = masks[0].ravel() == 0
    flat[np.flatnonzero(is_bg)] = rng.permutation(bg)
    flat[np.flatnonzero(~is_bg)] = rng.choice(np.arange(10), size=(~is_bg).sum()) + 3
    maps[0] = flat.reshape(h, w)
    pixel_case("pix_fpr_hits_limit", maps, masks, cases)

    masks = blobs(rng, 3, 20, 20, 2, 4)
    masks[0, 5, 5] = 255
    pixel_case("pix_constant", np.full((3, 20, 20), 0.25), masks, cases)

    # A huge dynamic range spreads the keys over many buckets.
    masks = blobs(rng, 5, 30, 30, 3, 6)
    maps = np.exp(rng.normal(size=(5, 30, 30)) * 20 + 8 * (masks > 0)) * rng.choice([-1, 1], size=(5, 30, 30))
    pixel_case("pix_wide_range", maps, masks, cases)

    # Few distinct values: the cflow grid has many empty steps.
    masks = blobs(rng, 6, 25, 25, 2, 5)
    maps = rng.choice([0.0, 0.5, 0.55, 1.0], size=(6, 25, 25)) + 0.5 * (masks > 0)
    pixel_case("pix_coarse", maps, masks, cases)

    masks = (blobs(rng, 4, 16, 16, 2, 3) > 0).astype(np.uint8)  # 0/1 masks
    masks[1] = 0
    maps = rng.normal(size=(4, 16, 16)) + masks
    pixel_case("pix_mask01", maps, masks, cases)

    masks = np.zeros((2, 10, 10), dtype=np.uint8)
    pixel_case("pix_no_defects", rng.random((2, 10, 10)), masks, cases)

    # The two 4x4 images of ExamplePixels.
    maps = np.array([[[0.1, 0.2, 0.1, 0.0], [0.2, 0.9, 0.8, 0.1], [0.1, 0.3, 0.8, 0.1], [0.0, 0.1, 0.2, 0.4]],
                     np.full((4, 4), 0.1)], dtype=np.float32)
    maps[1, 3, 3] = 0.5
    masks = np.zeros((2, 4, 4), dtype=np.uint8)
    masks[0, 1, 1] = masks[0, 1, 2] = masks[0, 2, 1] = 1
    masks[1, 3, 3] = 1
    pixel_case("pix_example", maps, masks, cases)
    return cases


def grid_cases():
    """np.arange grids of cal_pro_score for many float32 ranges."""
    rng = np.random.default_rng(5)
    out, counts = [], {200: 0, 201: 0}
    while counts[200] < 40 or counts[201] < 20:
        a = np.float32(rng.normal() * rng.choice([1e-3, 1, 10, 1e3]))
        b = np.float32(a + abs(rng.normal()) * rng.choice([1e-6, 1e-3, 1, 10, 1e3]))
        if not b > a:
            continue
        maps = np.array([a, b], dtype=np.float32)
        g = cflow_thresholds(maps)
        if counts.get(len(g), 99) >= (40 if len(g) == 200 else 20):
            continue
        counts[len(g)] += 1
        # What a float32 map is compared against (numpy 1.x casts the
        # float64 scalar threshold to the array's float32).
        g32 = g.astype(np.float32)
        out.append({"lo": int(np.float32(a).view(np.uint32)), "hi": int(np.float32(b).view(np.uint32)),
                    "grid": [int(v) for v in g32.view(np.uint32)]})
    return out


# --- Multi-type (docs/evaluation.md#metric-multitype) ---

def multitype_case(name, scores, truth, classes, cases):
    scores = np.ascontiguousarray(scores, dtype=np.float32)  # (N, C, H, W)
    truth = np.ascontiguousarray(truth, dtype=np.uint8)      # (N, H, W)
    np.save(os.path.join(OUT, name + "_scores.npy"), scores)
    np.save(os.path.join(OUT, name + "_truth.npy"), truth)
    C = len(classes)
    gt = truth.ravel()
    pred_scores = scores.transpose(0, 2, 3, 1).reshape(-1, C)
    Y = label_binarize(gt, classes=list(range(C)))
    if C == 2:  # label_binarize gives one column; DAPO stacks both
        Y = np.hstack([1 - Y, Y])
    pred = np.argmax(pred_scores, axis=1)
    per = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(C):
            col = Y[:, k]
            present = 0 < col.sum() < len(col)
            auroc = float(roc_auc_score(col, pred_scores[:, k])) if present else None
            ap = float(average_precision_score(col, pred_scores[:, k])) if col.sum() > 0 else None
            in_either = (gt == k).any() or (pred == k).any()
            f1 = float(f1_score(gt, pred, labels=[k], average=None)[0]) if in_either else None
            per.append({"class": classes[k], "pixels": int(col.sum()), "auroc": auroc, "ap": ap, "f1": f1})
        try:
            macro_auroc = float(roc_auc_score(Y, pred_scores, average="macro"))
        except ValueError:
            macro_auroc = None
        macro_ap = float(average_precision_score(Y, pred_scores, average="macro")) \
            if all(c["ap"] is not None for c in per) else None
        macro_f1 = float(f1_score(gt, pred, average="macro"))
    conf = confusion_matrix(gt, pred, labels=list(range(C)))
    cases.append({"name": name, "classes": classes, "scores": name + "_scores.npy", "truth": name + "_truth.npy",
                  "per_class": per, "macro_auroc": macro_auroc, "macro_ap": macro_ap, "macro_f1": macro_f1,
                  "confusion": conf.tolist()})


def multitype_cases():
    rng = np.random.default_rng(11)
    cases = []

    def make(n, h, w, classes, present, quant=None):
        C = len(classes)
        truth = np.zeros((n, h, w), dtype=np.uint8)
        for i in range(n):
            for _ in range(rng.integers(1, 3)):
                k = rng.choice(present)
                cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(2, 6)
                yy, xx = np.ogrid[:h, :w]
                truth[i][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = k
        logits = rng.normal(size=(n, C, h, w))
        for k in range(C):
            logits[:, k] += 1.5 * (truth == k)
        e = np.exp(logits)
        p = e / e.sum(axis=1, keepdims=True)
        if quant:
            p = np.round(p * quant) / quant
        return p, truth

    cl = ["good", "crack", "scratch"]
    multitype_case("mt_three", *make(5, 20, 24, cl, [1, 2]), cl, cases)
    cl = ["good", "hole"]
    multitype_case("mt_two", *make(4, 16, 16, cl, [1]), cl, cases)
    cl = ["good", "bent", "cut", "missing"]
    s, t = make(4, 18, 18, cl, [1, 2])
    s[:, 3] = -1.0  # never the argmax, and no pixels of class 3
    multitype_case("mt_missing_class", s, t, cl, cases)
    cl = ["good", "a", "b", "c"]
    multitype_case("mt_ties", *make(4, 15, 17, cl, [1, 2, 3], quant=4), cl, cases)
    return cases


def type_accuracy_cases():
    rng = np.random.default_rng(12)
    cases = []
    for name, n, c, quant in [("ta_five", 60, 5, None), ("ta_ties", 40, 3, 2), ("ta_one", 7, 1, None)]:
        truth = rng.integers(0, c, size=n)
        scores = rng.random((n, c)) + 0.6 * np.eye(c)[truth]
        if quant:
            scores = np.round(scores * quant) / quant
        pred = np.argmax(scores, axis=1)
        cases.append({"name": name, "types": c, "truth": truth.tolist(), "scores": scores.tolist(),
                      "accuracy": float(accuracy_score(truth, pred)),
                      "balanced_accuracy": float(balanced_accuracy_score(truth, pred))})
    return cases


# --- DeLong: placement values from every positive/negative pair ---

def delong(a, b, y):
    pos, neg = y == 1, y == 0

    def comps(s):
        x, z = s[pos][:, None], s[neg][None, :]
        psi = (x > z) + 0.5 * (x == z)
        return psi.mean(axis=1), psi.mean(axis=0), psi.mean()

    v10a, v01a, auc_a = comps(a)
    v10b, v01b, auc_b = comps(b)
    s10 = np.cov(np.vstack([v10a, v10b]))
    s01 = np.cov(np.vstack([v01a, v01b]))
    S = s10 / pos.sum() + s01 / neg.sum()
    var = S[0, 0] + S[1, 1] - 2 * S[0, 1]
    z = (auc_b - auc_a) / np.sqrt(var)
    return {"auroc_a": float(auc_a), "auroc_b": float(auc_b), "var_a": float(S[0, 0]), "var_b": float(S[1, 1]),
            "cov": float(S[0, 1]), "z": float(z), "p": float(2 * scipy.stats.norm.sf(abs(z))),
            "sklearn_auroc_a": float(roc_auc_score(y, a)), "sklearn_auroc_b": float(roc_auc_score(y, b))}


def delong_cases():
    rng = np.random.default_rng(13)
    cases = []
    for name, n, quant in [("dl_continuous", 200, None), ("dl_ties", 150, 0.25), ("dl_small", 12, None)]:
        y = (rng.random(n) < 0.4).astype(int)
        y[:2], y[2:4] = 1, 0
        a = rng.normal(size=n) + 0.8 * y
        b = 0.7 * a + 0.5 * rng.normal(size=n) + 0.4 * y
        if quant:
            a, b = np.round(a / quant) * quant, np.round(b / quant) * quant
        c = {"name": name, "a": a.tolist(), "b": b.tolist(), "labels": y.tolist()}
        c.update(delong(a, b, y))
        cases.append(c)
    return cases


def write(name, obj):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f, indent=None, separators=(",", ":"))
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    versions = {"python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__,
                "scikit-learn": sklearn.__version__, "scikit-image": skimage.__version__}
    write("binary.json", {"versions": versions, "cases": binary_cases()})
    write("pixels.json", {"versions": versions, "cases": pixel_cases()})
    write("cflow_grid.json", {"versions": versions, "cases": grid_cases()})
    write("multitype.json", {"versions": versions, "cases": multitype_cases(),
                             "type_accuracy": type_accuracy_cases()})
    write("delong.json", {"versions": versions, "cases": delong_cases()})


if __name__ == "__main__":
    main()
