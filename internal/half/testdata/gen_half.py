#!/usr/bin/python3
"""float32 -> float16 rounding reference from numpy (astype), for half_test.go.

Usage: /usr/bin/python3 clip/safetensors/testdata/gen_half.py > clip/safetensors/testdata/half.json
"""
import json
import numpy as np

rng = np.random.default_rng(7)
vals = np.concatenate([
    rng.standard_normal(2000).astype(np.float32) * np.float32(10.0) ** rng.integers(-9, 6, 2000).astype(np.float32),
    # exact ties between neighbouring halves, normal and subnormal
    (np.arange(0, 2048, dtype=np.float32) + np.float32(0.5)) * np.float32(2.0 ** -24),
    (np.arange(1024, 2048, dtype=np.float32) + np.float32(0.5)) * np.float32(2.0 ** -10),
    np.array([65504, 65519, 65520, 1e6, -1e6, 6e-8, 3e-8, 2.98e-8, 0.0, -0.0, np.inf, -np.inf], dtype=np.float32),
]).astype(np.float32)
rows = [[int(v.view(np.uint32)), int(v.astype(np.float16).view(np.uint16))] for v in vals]
print(json.dumps(rows))
