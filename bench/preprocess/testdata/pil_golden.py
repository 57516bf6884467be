#!/usr/bin/python3
"""Writes the preprocessing test images and Pillow's outputs for them.

Run with Debian's python3-pil (Pillow 9.4) and python3-numpy, from this folder:

    /usr/bin/python3 pil_golden.py

images/   inputs in every PNG flavour the loaders meet, and one JPEG
golden/   <name>_<size>.png   Image.open(p).convert("RGB").resize((size, size), BICUBIC)
          mask_<size>.png     mask.resize((size, size), BILINEAR), then /255 > 0.5 (0/255)
          mask_bilinear_<size>.png   the same before thresholding
          normalised.json     torchvision-style (x/255 - mean)/std in float32 at sampled points

16-bit grayscale is the one deliberate difference: Pillow opens it as mode "I" and
convert("RGB") clips every value above 255 to white; the reference here is Pillow on
the high bytes (arr >> 8) instead, which is what the Go code computes.
"""
import json
import os
import struct
import zlib

import numpy as np
import PIL
from PIL import Image

SIZES = (518, 240)  # DAPO/AnomalyCLIP and WinCLIP (docs/methods.md#preprocess-sizes)
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def scene(w, h, seed):
    """Gradients, hard-edged shapes, fine stripes and one noise patch: both the smooth
    areas where rounding shows and the edges where the kernel's negative lobes clip."""
    r = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    img[..., 0] = 255 * x / max(w - 1, 1)
    img[..., 1] = 255 * y / max(h - 1, 1)
    img[..., 2] = 128 + 100 * np.sin(x / 7.0 + y / 11.0)
    for _ in range(6):
        cx, cy, rad = r.uniform(0, w), r.uniform(0, h), r.uniform(4, min(w, h) / 3)
        img[(x - cx) ** 2 + (y - cy) ** 2 < rad ** 2] = r.randint(0, 256, 3)
    img[(x.astype(int) // 3 % 2 == 0) & (y < h / 5)] = 0  # 3-px stripes
    ph, pw = min(h // 4, 64), min(w // 4, 64)
    img[h - ph:, :pw] = r.randint(0, 256, (ph, pw, 3))  # noise: worst case for resizing
    return np.clip(img, 0, 255).round().astype(np.uint8)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16(path, arr):
    """Pillow cannot write 16-bit RGB, so write the PNG by hand (colour type 2 or 0, depth 16)."""
    h, w = arr.shape[:2]
    colour = 2 if arr.ndim == 3 else 0
    raw = b"".join(b"\x00" + arr[i].astype(">u2").tobytes() for i in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0)))
        f.write(png_chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(png_chunk(b"IEND", b""))


def make_images():
    os.makedirs("images", exist_ok=True)
    s = scene(320, 240, 1)
    Image.fromarray(s).save("images/rgb8.png")
    Image.fromarray(scene(256, 200, 2)[..., 1]).save("images/gray8.png")
    g16 = scene(210, 150, 3)[..., 0].astype(np.uint16) * 257 + np.random.RandomState(3).randint(0, 257, (150, 210)).astype(np.uint16)
    write_png16("images/gray16.png", g16)
    write_png16("images/rgb16.png", scene(180, 120, 4).astype(np.uint16) * 257 + 100)
    p = Image.fromarray(scene(300, 180, 5)).quantize(colors=200, method=Image.Quantize.MEDIANCUT)
    p.info["transparency"] = 0
    p.save("images/palette.png", transparency=0)
    rgba = np.dstack([scene(280, 210, 6), np.tile(np.linspace(0, 255, 280).round().astype(np.uint8), (210, 1))])
    Image.fromarray(rgba, "RGBA").save("images/rgba.png")
    la = np.dstack([scene(150, 150, 7)[..., 2], np.full((150, 150), 77, np.uint8)])
    Image.fromarray(la, "LA").save("images/la.png")
    Image.fromarray(scene(1100, 830, 8)).save("images/big.png")
    Image.fromarray(scene(37, 500, 9)).save("images/thin.png")
    Image.fromarray(scene(240, 518, 10)).save("images/edge.png")  # one axis already at each size
    Image.fromarray(scene(640, 480, 11)).save("images/photo.jpg", quality=90)  # 4:2:0
    y, x = np.mgrid[0:250, 0:333]
    m = ((x - 120) ** 2 / 60 ** 2 + (y - 100) ** 2 / 35 ** 2 < 1) | (x == 250) | ((x // 2 + y // 2) % 23 == 0) & (y > 180)
    m[10:12, 10:300] = True
    m[200, 300] = True
    Image.fromarray((m * 255).astype(np.uint8), "L").save("images/mask.png")


def reference(name):
    im = Image.open(os.path.join("images", name))
    if name == "gray16.png":
        assert im.mode in ("I", "I;16"), im.mode
        im = Image.fromarray((np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8), "L")
    return im.convert("RGB")


def main():
    make_images()
    os.makedirs("golden", exist_ok=True)
    r = np.random.RandomState(0)
    norm = {"pillow": PIL.__version__, "numpy": np.__version__, "points": {}}
    for name in sorted(os.listdir("images")):
        if name == "mask.png":
            continue
        src = reference(name)
        stem = os.path.splitext(name)[0]
        for size in SIZES:
            out = src.resize((size, size), Image.BICUBIC)
            out.save(f"golden/{stem}_{size}.png")
            a = np.asarray(out)
            x = (a.astype(np.float32) / np.float32(255) - MEAN) / STD  # ToTensor + Normalize, HWC
            pts = []
            for _ in range(16):
                c, yy, xx = r.randint(0, 3), r.randint(0, size), r.randint(0, size)
                pts.append([int(c), int(yy), int(xx), float(x[yy, xx, c])])
            norm["points"][f"{stem}_{size}"] = pts
    mask = Image.open("images/mask.png")
    for size in SIZES:
        b = mask.resize((size, size), Image.BILINEAR)
        b.save(f"golden/mask_bilinear_{size}.png")
        t = (np.asarray(b).astype(np.float32) / 255 > 0.5).astype(np.uint8) * 255
        Image.fromarray(t, "L").save(f"golden/mask_{size}.png")
    with open("golden/normalised.json", "w") as f:
        json.dump(norm, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
