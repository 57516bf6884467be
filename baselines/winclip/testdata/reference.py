#!/usr/bin/python3
"""Reference values for package winclip (docs/methods.md#winclip-overview).

Run with Debian's Python (NumPy, SciPy, python3-regex), from the repository root:

    /usr/bin/python3 baselines/winclip/testdata/reference.py

Nothing here calls the Go code; the Go tests only read the JSON files written here.

prompts.json   the compositional prompt ensembles, built with Python's str.format from the lists as
               anomalib's prompting.py and caoyunkang/WinClip's ad_prompts.py spell them (transcribed
               below), and the token ids and end-of-text index of every prompt of one ensemble from the
               reference tokenizer in clip/tokenizer/testdata/gen_vectors.py.
scoring.json   the zero-shot scores of anomalib's WinClipModel (k_shot = 0) from given embeddings:
               class embeddings = mean of the raw prompt embeddings (collect_text_embeddings);
               class_scores = softmax(cos(x, t) / 0.07)[1] (cosine in float64, logits rounded to
               float32, softmax in float64 then float32); harmonic_aggregation per scale over
               make_masks windows; the multi-scale harmonic mean with the image score; bilinear
               upsampling with align_corners=False. Windows, harmonic means and the PyTorch bilinear
               kernel come from bench/postproc/testdata/reference.py (NumPy re-implementations).
gather.json    the window token sequences of anomalib's _get_window_embeddings: index_select of the
               tokens at [0] + (mask + 1), per image and window.
"""
import json
import os
import sys

import numpy as np
import scipy.special

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "..")
sys.path.insert(0, os.path.join(ROOT, "clip", "tokenizer", "testdata"))
sys.path.insert(0, os.path.join(ROOT, "bench", "postproc", "testdata"))
from gen_vectors import Tokenizer  # noqa: E402
from reference import harmonic_aggregation, make_masks, multiscale, torch_bilinear  # noqa: E402

f32 = np.float32

# anomalib src/anomalib/models/image/winclip/prompting.py
NORMAL_STATES = ["{}", "flawless {}", "perfect {}", "unblemished {}", "{} without flaw",
                 "{} without defect", "{} without damage"]
ANOMALOUS_STATES = ["damaged {}", "{} with flaw", "{} with defect", "{} with damage"]
ANOMALIB_TEMPLATES = [
    "a cropped photo of the {}.", "a close-up photo of a {}.", "a close-up photo of the {}.",
    "a bright photo of a {}.", "a bright photo of the {}.", "a dark photo of the {}.", "a dark photo of a {}.",
    "a jpeg corrupted photo of the {}.", "a jpeg corrupted photo of the {}.", "a blurry photo of the {}.",
    "a blurry photo of a {}.", "a photo of a {}.", "a photo of the {}.", "a photo of a small {}.",
    "a photo of the small {}.", "a photo of a large {}.", "a photo of the large {}.",
    "a photo of the {} for visual inspection.", "a photo of a {} for visual inspection.",
    "a photo of the {} for anomaly detection.", "a photo of a {} for anomaly detection.",
]
# caoyunkang/WinClip WinCLIP/ad_prompts.py template_level_prompts
OFFICIAL_TEMPLATES = [
    "a cropped photo of the {}", "a cropped photo of a {}", "a close-up photo of a {}",
    "a close-up photo of the {}", "a bright photo of a {}", "a bright photo of the {}",
    "a dark photo of the {}", "a dark photo of a {}", "a jpeg corrupted photo of a {}",
    "a jpeg corrupted photo of the {}", "a blurry photo of the {}", "a blurry photo of a {}",
    "a photo of a {}", "a photo of the {}", "a photo of a small {}", "a photo of the small {}",
    "a photo of a large {}", "a photo of the large {}", "a photo of the {} for visual inspection",
    "a photo of a {} for visual inspection", "a photo of the {} for anomaly detection",
    "a photo of a {} for anomaly detection",
]
TEMPLATES = {"anomalib-21": ANOMALIB_TEMPLATES, "winclip-22": OFFICIAL_TEMPLATES}


def ensemble(obj, templates):
    """anomalib create_prompt_ensemble: states outer, templates inner."""
    normal = [t.format(s.format(obj)) for s in NORMAL_STATES for t in templates]
    anomalous = [t.format(s.format(obj)) for s in ANOMALOUS_STATES for t in templates]
    return normal, anomalous


def prompts():
    tok = Tokenizer()
    out = {"ensembles": []}
    for obj in ("bottle", "metal_nut", "object", "Gorilla"):
        for name, templates in TEMPLATES.items():
            n, a = ensemble(obj, templates)
            out["ensembles"].append({"object": obj, "templates": name, "normal": n, "anomalous": a})
    n, a = ensemble("metal_nut", ANOMALIB_TEMPLATES)
    ids = [[int(i) for i in tok.tokenize(p, True)] for p in n + a]
    out["tokens"] = {"object": "metal_nut", "templates": "anomalib-21",
                     "ids": [[i for i in row if i != 0] for row in ids],
                     "eot": [int(np.argmax(row)) for row in ids]}
    with open(os.path.join(HERE, "prompts.json"), "w") as f:
        json.dump(out, f, indent=0)
        f.write("\n")


def normalize64(x):
    x = x.astype(np.float64)
    return x / np.maximum(np.sqrt((x * x).sum(axis=-1, keepdims=True)), 1e-12)


def class_scores(x, t):
    logits = (normalize64(x) @ normalize64(t).T / 0.07).astype(f32)
    return scipy.special.softmax(logits.astype(np.float64), axis=-1).astype(f32)[:, 1]


def scoring_case(r, name, grid, size, de, scales):
    base = r.randn(de)
    prompt = (base + 0.4 * r.randn(13, de)).astype(f32)  # 8 normal, 5 anomalous prompt embeddings
    n_normal = 8
    text = np.stack([prompt[:n_normal].astype(np.float64).mean(0),
                     prompt[n_normal:].astype(np.float64).mean(0)]).astype(f32)
    image = (base + 0.5 * r.randn(de)).astype(f32)
    img = class_scores(image[None], text)[0]
    windows, wscores, smaps = {}, {}, []
    for k in (2, 3):
        if k > grid:
            continue
        m = make_masks(grid, grid, k, 1)
        w = (base + 0.5 * r.randn(len(m), de)).astype(f32)
        windows[str(k)] = w.ravel().tolist()
        if k in scales:
            s = class_scores(w, text)
            wscores[str(k)] = s.tolist()
            smaps.append(harmonic_aggregation(s, grid, grid, m))
    if smaps:
        gmap = multiscale(img, smaps)
    else:
        gmap = np.full(grid * grid, img, dtype=f32)
    up = torch_bilinear(gmap.reshape(1, grid, grid), size, size, False)[0]
    return dict(name=name, grid=grid, size=size, dim=de, scales=scales, n_normal=n_normal,
                prompt_features=prompt.ravel().tolist(), text=text.ravel().tolist(),
                image_embed=image.tolist(), windows=windows, image_score=float(img),
                window_scores=wscores, scale_maps=[m.tolist() for m in smaps],
                grid_map=gmap.tolist(), map=up.ravel().tolist())


def scoring():
    r = np.random.RandomState(11)
    cases = [
        scoring_case(r, "grid5_both", 5, 24, 8, [2, 3]),
        scoring_case(r, "grid5_scale2", 5, 24, 8, [2]),
        scoring_case(r, "grid5_scale3", 5, 17, 8, [3]),
        scoring_case(r, "grid5_no_windows", 5, 24, 8, []),
        scoring_case(r, "grid4_tiny", 4, 32, 16, [2, 3]),
        scoring_case(r, "grid7_odd", 7, 30, 5, [2, 3]),
    ]
    with open(os.path.join(HERE, "scoring.json"), "w") as f:
        json.dump({"numpy": np.__version__, "scipy": scipy.__version__, "cases": cases}, f)
        f.write("\n")


def gather():
    r = np.random.RandomState(12)
    b, grid, width = 2, 4, 3
    tokens = r.randn(b, 1 + grid * grid, width).astype(f32)
    out = {"batch": b, "grid": grid, "width": width, "tokens": tokens.ravel().tolist(), "windows": {}}
    for k in (2, 3):
        masks = make_masks(grid, grid, k, 1)  # window-major
        idx = np.concatenate([np.zeros((len(masks), 1), dtype=np.int64), masks + 1], axis=1)
        seqs = np.stack([tokens[i][idx[n]] for i in range(b) for n in range(len(masks))])
        out["windows"][str(k)] = {"n": len(masks), "index": idx.tolist(), "want": seqs.ravel().tolist()}
    with open(os.path.join(HERE, "gather.json"), "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    prompts()
    scoring()
    gather()
