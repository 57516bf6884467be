#!/usr/bin/python3
"""PyTorch's plain bicubic resize of positional tables, for clip's TestBicubicTorch.

F.interpolate(mode="bicubic", align_corners=False) without antialias, as
AdaCLIP's resize_pos_embed calls it (docs/methods.md#adaclip-pos-embed), on
float32 grids [g0, g0, w] laid out as positional tables: a class row first,
then the grid row-major. Needs Debian's python3-torch.

Usage: cd clip/testdata/torch && /usr/bin/python3 gen_bicubic.py   (writes bicubic.json)
"""
import json

import numpy as np
import torch
import torch.nn.functional as F

cases = []
rs = np.random.RandomState(7)
for g0, g1, w in ((6, 9, 3), (7, 4, 2), (5, 5, 1)):
    table = rs.randn(1 + g0 * g0, w).astype(np.float32)
    grid = torch.from_numpy(table[1:]).reshape(1, g0, g0, w).permute(0, 3, 1, 2)
    out = F.interpolate(grid, size=(g1, g1), mode="bicubic", align_corners=False)
    out = out.permute(0, 2, 3, 1).reshape(g1 * g1, w).numpy()
    cases.append({"g0": g0, "g1": g1, "w": w, "table": table.ravel().tolist(),
                  "resized": np.concatenate([table[:1], out]).ravel().tolist()})
with open("bicubic.json", "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
    f.write("\n")
