#!/usr/bin/python3
"""Pillow's side of `make bench-preprocess`.

    pil_bench.py gen DIR    write the benchmark images (dataset-sized, photo-like noise)
    pil_bench.py run DIR    time open + convert("RGB") + resize((518, 518), BICUBIC) +
                            ToTensor/Normalize arithmetic in numpy into one float32 batch,
                            and print the median images/s and CPU ms per image over 5 passes

The Go side (BenchmarkFiles) runs on the same folder.
"""
import os
import sys
import time

import numpy as np
from PIL import Image

SIZE = 518  # DAPO and AnomalyCLIP input (docs/methods.md#preprocess-sizes)
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32).reshape(3, 1, 1)
PASSES = 5


def photo(w, h, seed, gray=False):
    r = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([120 + 60 * np.sin(x / 90 + c) * np.cos(y / 70 - c) for c in range(3)], axis=-1)
    for _ in range(12):
        cx, cy, rad = r.uniform(0, w), r.uniform(0, h), r.uniform(20, 250)
        base[(x - cx) ** 2 + (y - cy) ** 2 < rad ** 2] += r.uniform(-60, 60, 3)
    base += r.normal(0, 4, base.shape)  # sensor noise: photo-like PNG entropy
    img = np.clip(base, 0, 255).astype(np.uint8)
    return Image.fromarray(img[..., 0]) if gray else Image.fromarray(img)


def gen(d):
    os.makedirs(d, exist_ok=True)
    # MVTec-AD: 1024² PNG, RGB and grayscale; VisA: ~1500×1000 JPEG.
    for i in range(6):
        photo(1024, 1024, i).save(os.path.join(d, f"rgb_{i}.png"))
    for i in range(2):
        photo(1024, 1024, 10 + i, gray=True).save(os.path.join(d, f"gray_{i}.png"))
    for i in range(4):
        photo(1500, 1000, 20 + i).save(os.path.join(d, f"visa_{i}.JPG"), quality=95)


def run(d):
    paths = sorted(os.path.join(d, n) for n in os.listdir(d))
    out = np.empty((len(paths), 3, SIZE, SIZE), dtype=np.float32)
    times, cpu = [], []
    for _ in range(PASSES):
        t0, c0 = time.perf_counter(), time.process_time()
        for i, p in enumerate(paths):
            with Image.open(p) as im:
                a = np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.BICUBIC), dtype=np.float32)
            out[i] = (a.transpose(2, 0, 1) / np.float32(255) - MEAN) / STD
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(f"{len(paths) / float(np.median(times)):.2f} {1000 * float(np.median(cpu)) / len(paths):.2f}")


if __name__ == "__main__":
    {"gen": gen, "run": run}[sys.argv[1]](sys.argv[2])
