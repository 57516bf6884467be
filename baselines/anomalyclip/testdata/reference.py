#!/usr/bin/python3
"""Reference values for package anomalyclip (docs/methods.md#anomalyclip-overview).

Run with Debian's Python (NumPy, SciPy, python3-regex), from the repository root:

    /usr/bin/python3 baselines/anomalyclip/testdata/reference.py

Nothing here calls the Go code; the Go tests only read the JSON files written here.

prompts.json   the two prompts as AnomalyCLIP_PromptLearner builds them
               (prompt_prefix + " " + state.format("object") + "."), their token ids and end-of-text
               indices from the reference tokenizer in clip/tokenizer/testdata/gen_vectors.py, and a
               small assembly: token embeddings from a random table, then
               cat([prefix, ctx, suffix]) with prefix = position 0 and suffix = positions 13..76.
scoring.json   test.py's scores from given features: text features and the global feature L2-normalised;
               image score softmax(f @ T.T / 0.07)[1]; per layer compute_similarity on the normalised
               patch tokens without CLS (cosine in float64, logits rounded to float32, softmax in float64
               then float32), get_similarity_map (reshape to G x G, bilinear to S, align_corners=False:
               the NumPy re-implementation of PyTorch's kernel in bench/postproc/testdata/reference.py),
               (p_abn + 1 - p_norm) / 2 in float32, summed over layers in float32, then
               scipy.ndimage.gaussian_filter(sigma=4) on the float32 map.
"""
import json
import os
import sys

import numpy as np
import scipy
import scipy.ndimage as ndi
import scipy.special

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "..")
sys.path.insert(0, os.path.join(ROOT, "clip", "tokenizer", "testdata"))
sys.path.insert(0, os.path.join(ROOT, "bench", "postproc", "testdata"))
from gen_vectors import Tokenizer  # noqa: E402
from reference import torch_bilinear  # noqa: E402

f32 = np.float32
N_CTX = 12


def prompts():
    tok = Tokenizer()
    prefix = " ".join(["X"] * N_CTX)
    texts = [prefix + " " + t.format("object") + "." for t in ("{}", "damaged {}")]
    ids = [[int(i) for i in tok.tokenize(t, True)] for t in texts]
    eot = [int(np.argmax(row)) for row in ids]
    r = np.random.RandomState(21)
    dim = 4
    used = sorted({i for row in ids for i in row})
    rows = {i: r.randn(dim).astype(f32) for i in used}
    ctx = [r.randn(N_CTX, dim).astype(f32) for _ in range(2)]  # ctx_pos, ctx_neg
    emb = np.stack([np.stack([rows[i] for i in row]) for row in ids])  # [2, 77, dim]
    assembled = np.stack([np.concatenate([emb[n, :1], ctx[n], emb[n, 1 + N_CTX:]]) for n in range(2)])
    out = {"texts": texts, "ids": [[i for i in row if i != 0] for row in ids], "eot": eot,
           "assembly": {"dim": dim, "table_rows": {str(i): rows[i].tolist() for i in used},
                        "normal_ctx": ctx[0].ravel().tolist(), "abnormal_ctx": ctx[1].ravel().tolist(),
                        "embeds": assembled.ravel().tolist()}}
    with open(os.path.join(HERE, "prompts.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


def normalize64(x):
    x = x.astype(np.float64)
    return x / np.maximum(np.sqrt((x * x).sum(axis=-1, keepdims=True)), 1e-12)


def probs(x, text):
    logits = (normalize64(x) @ normalize64(text).T / 0.07).astype(f32)
    return scipy.special.softmax(logits.astype(np.float64), axis=-1).astype(f32)


def scoring_case(r, name, grid, size, de, layers, smooth):
    base = r.randn(de)
    text = (base + 0.5 * r.randn(2, de)).astype(f32) * f32(3)  # raw text-tower output
    image = (base + 0.6 * r.randn(de)).astype(f32)
    img = probs(image[None], text)[0, 1]
    patches, total = {}, np.zeros((size, size), dtype=f32)
    for l in layers:
        p = (base + 0.6 * r.randn(1 + grid * grid, de)).astype(f32)
        patches[str(l)] = p.ravel().tolist()
        sm = probs(p[1:], text)                                # drop CLS, [G*G, 2]
        sm = sm.reshape(grid, grid, 2).transpose(2, 0, 1)      # [2, G, G]
        up = torch_bilinear(np.ascontiguousarray(sm), size, size, False)
        total = total + (up[1] + f32(1) - up[0]) / f32(2)
        assert total.dtype == f32
    final = ndi.gaussian_filter(total, sigma=4) if smooth else total
    assert final.dtype == f32
    return dict(name=name, grid=grid, size=size, dim=de, layers=layers, smooth=smooth,
                text=text.ravel().tolist(), image_embed=image.tolist(), patches=patches,
                image_score=float(img), sum=total.ravel().tolist(), map=final.ravel().tolist())


def scoring():
    r = np.random.RandomState(22)
    cases = [
        scoring_case(r, "one_layer", 6, 40, 8, [24], True),
        scoring_case(r, "two_layers", 5, 33, 8, [12, 24], True),
        scoring_case(r, "no_smoothing", 6, 40, 8, [24], False),
        scoring_case(r, "tiny_geometry", 4, 32, 16, [4], True),
        scoring_case(r, "four_layers", 7, 50, 6, [6, 12, 18, 24], True),
    ]
    with open(os.path.join(HERE, "scoring.json"), "w") as f:
        json.dump({"numpy": np.__version__, "scipy": scipy.__version__, "cases": cases}, f)
        f.write("\n")


if __name__ == "__main__":
    prompts()
    scoring()
