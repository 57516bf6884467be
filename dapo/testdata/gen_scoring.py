#!/usr/bin/env python3
"""Reference values for DAPO's scoring (docs/methods.md#dapo-image-score,
docs/methods.md#dapo-pixel-map, docs/methods.md#dapo-multitype).

Given image features, adapters and text class embeddings, computes with
numpy in float64, independently of the Go code:
  * the image score softmax([cos(f,t_n), cos(f,a)]/0.07)[1], a = mean of the
    defect embeddings;
  * the anomaly map: per layer, adapted patches P = x·Wᵀ + b, per-token
    softmax(cos(P, T)/0.07) over 1+K classes, the sum of the defect channels
    on the G×G grid, bilinear upsampling with align_corners=True (torch's
    formula: src = dst·(in−1)/(out−1)), summed over layers;
  * the multi-type class maps (each class channel upsampled, summed over
    layers) and the image-level class probabilities.

Run with Debian's Python: /usr/bin/python3 dapo/testdata/gen_scoring.py
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(11)
G, S, DV, DE, K, C, LAYERS = 4, 10, 6, 5, 3, 3, 2
TAU = 0.07


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def cos(x, t):
    return unit(x) @ unit(t).T


def softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def upsample_align(grid, out):
    n = grid.shape[0]
    pos = np.arange(out) * (n - 1) / (out - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    w1 = pos - i0
    w0 = 1 - w1
    rows = grid[i0] * w0[:, None] + grid[i1] * w1[:, None]
    return rows[:, i0] * w0[None, :] + rows[:, i1] * w1[None, :]


f = rng.standard_normal(DE).astype(np.float32)
patches = rng.standard_normal((LAYERS, G * G, DV)).astype(np.float32)
W = (rng.standard_normal((LAYERS, DE, DV)) * 0.4).astype(np.float32)
b = (rng.standard_normal((LAYERS, DE)) * 0.1).astype(np.float32)
T = unit(rng.standard_normal((1 + K, DE))).astype(np.float32)
TM = unit(rng.standard_normal((C, DE))).astype(np.float32)

f64, T64, TM64 = f.astype(np.float64), T.astype(np.float64), TM.astype(np.float64)
a = T64[1:].mean(axis=0)
score = softmax(cos(f64[None], np.stack([T64[0], a])) / TAU)[0, 1]
amap = np.zeros((S, S))
cmaps = np.zeros((C, S, S))
for l in range(LAYERS):
    P = patches[l].astype(np.float64) @ W[l].astype(np.float64).T + b[l]
    p = softmax(cos(P, T64) / TAU)
    amap += upsample_align(p[:, 1:].sum(axis=1).reshape(G, G), S)
    pm = softmax(cos(P, TM64) / TAU)
    for c in range(C):
        cmaps[c] += upsample_align(pm[:, c].reshape(G, G), S)
cls = softmax(cos(f64[None], TM64) / TAU)[0]

out = {
    "grid": G, "size": S, "vision_dim": DV, "embed_dim": DE, "layers": LAYERS,
    "image_embed": f.tolist(), "patches": patches.ravel().tolist(),
    "adapter_weight": W.ravel().tolist(), "adapter_bias": b.ravel().tolist(),
    "binary": T.ravel().tolist(), "multi": TM.ravel().tolist(), "classes": C, "defects": K,
    "score": float(score), "map": amap.ravel().tolist(), "class_maps": cmaps.ravel().tolist(),
    "class_scores": cls.tolist(),
}
with open(os.path.join(HERE, "scoring.json"), "w") as fh:
    json.dump(out, fh)
    fh.write("\n")
print("score", score, "map max", amap.max())
