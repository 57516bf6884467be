#!/usr/bin/python3
"""The scikit-learn side of `make bench-metrics`.

    bench_sklearn.py DIR

DIR holds scores.npy, masks.npy and go.json (written by the Go test
TestWriteBenchData) and go-bench.txt (the output of BenchmarkPixels). This
times pixel AUROC, AP and F1-max the way the AnomalyCLIP/APRIL-GAN/DAPO
evaluation code computes them (roc_auc_score, average_precision_score,
precision_recall_curve over the raveled category), checks that the Go
values agree, and prints the speed ratio. The Go time also covers both
AU-PRO variants, which scikit-learn does not compute, so the ratio
understates the difference.
"""
import json
import os
import re
import resource
import statistics
import sys
import time

import numpy as np
import sklearn
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    d = sys.argv[1]
    scores = np.load(os.path.join(d, "scores.npy")).ravel()
    labels = (np.load(os.path.join(d, "masks.npy")).ravel() != 0).astype(np.float32)
    go = json.load(open(os.path.join(d, "go.json")))
    n = scores.size
    base = peak_rss()

    t0 = time.perf_counter()
    auroc = roc_auc_score(labels, scores)
    t1 = time.perf_counter()
    ap = average_precision_score(labels, scores)
    t2 = time.perf_counter()
    p, r, th = precision_recall_curve(labels, scores)
    f1 = 2 * p * r / (p + r)
    f1max = np.max(f1[np.isfinite(f1)])
    t3 = time.perf_counter()
    sk = t3 - t0
    extra = (peak_rss() - base) / n

    runs = []
    for line in open(os.path.join(d, "go-bench.txt")):
        m = re.match(r"BenchmarkPixels\S*\s+\d+\s+([\d.]+) ns/op", line)
        if m:
            runs.append(float(m.group(1)) / 1e9)
    if not runs:
        sys.exit("no BenchmarkPixels lines in go-bench.txt")
    go_s = statistics.median(runs)

    print(f"pixels: {n} ({int(labels.sum())} positive), scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    print(f"scikit-learn AUROC {t1 - t0:.2f} s, AP {t2 - t1:.2f} s, PR curve + F1-max {t3 - t2:.2f} s: "
          f"{sk:.2f} s ({n / sk / 1e6:.2f} M px/s), peak extra memory {extra:.1f} B/px")
    print(f"Go AUROC+AP+F1-max+AUPRO(mvtec, cflow200), one core: median {go_s:.3f} s of {len(runs)} runs "
          f"({n / go_s / 1e6:.1f} M px/s)")
    worst = 0.0
    for name, v in [("auroc", auroc), ("ap", ap), ("f1max", f1max)]:
        dv = abs(go[name] - float(v))
        worst = max(worst, dv)
        print(f"  {name:6s} Go {go[name]:.15f}  scikit-learn {float(v):.15f}  |Δ| {dv:.2g}")
    print(f"speed ratio (scikit-learn / Go): {sk / go_s:.0f}x")
    if worst > 1e-9:
        sys.exit(f"Go and scikit-learn disagree by {worst:.3g}")


if __name__ == "__main__":
    main()
