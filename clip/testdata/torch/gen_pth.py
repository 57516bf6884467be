#!/usr/bin/python3
"""Writes torch.save-style zip checkpoints without torch, for torch_test.go.

torch.save (PyTorch >= 1.6) writes a zip archive: archive/data.pkl (pickle
protocol 2 whose tensors are torch._utils._rebuild_tensor_v2 calls over
persistent ids ("storage", torch.<Type>Storage, key, location, numel)),
archive/data/<key> (raw little-endian storage bytes), archive/version and
archive/byteorder. This script builds that layout with stand-in torch
classes, so Debian's 172-package python3-torch is not needed.

Usage: cd clip/testdata/torch && /usr/bin/python3 gen_pth.py
Writes dapo_like.pth, clip_state.pth and expected.json, and the crafted
checkpoints under bombs/ that the reader must refuse before allocating
(a negative size, ten billion values declared in a few hundred bytes, a
broadcast view, a pickle string longer than the pickle).
"""
import collections
import json
import pickle
import sys
import types
import zipfile

import numpy as np

torch = types.ModuleType("torch")
utils = types.ModuleType("torch._utils")
argparse_mod = types.ModuleType("argparse_standin")
sys.modules["torch"] = torch
sys.modules["torch._utils"] = utils
torch._utils = utils


def _make_storage(name):
    cls = type(name, (), {})
    cls.__module__ = "torch"
    setattr(torch, name, cls)
    return cls


FloatStorage = _make_storage("FloatStorage")
HalfStorage = _make_storage("HalfStorage")
LongStorage = _make_storage("LongStorage")


def _rebuild_tensor_v2(*args):
    raise RuntimeError("stand-in")


def _rebuild_parameter(*args):
    raise RuntimeError("stand-in")


for f in (_rebuild_tensor_v2, _rebuild_parameter):
    f.__module__ = "torch._utils"
    setattr(utils, f.__name__, f)


class Storage:
    def __init__(self, key, array, numel=None):
        self.key = key
        self.array = np.ascontiguousarray(array).ravel()
        self.numel = self.array.size if numel is None else numel  # as declared
        self.cls = {np.float32: FloatStorage, np.float16: HalfStorage, np.int64: LongStorage}[self.array.dtype.type]


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def __reduce__(self):
        return (_rebuild_tensor_v2, (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))

    def values(self):
        """What the tensor holds, as numpy, applying offset and strides."""
        return np.lib.stride_tricks.as_strided(
            self.storage.array[self.offset:], self.size, [s * self.storage.array.itemsize for s in self.stride]).astype(np.float64)


class Parameter:
    def __init__(self, tensor):
        self.tensor = tensor

    def __reduce__(self):
        return (_rebuild_parameter, (self.tensor, True, collections.OrderedDict()))


class Namespace:  # an unrelated object, as training scripts save their args
    def __init__(self):
        self.lr = 0.001

Namespace.__module__ = "argparse_standin"
argparse_mod.Namespace = Namespace
sys.modules["argparse_standin"] = argparse_mod


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.cls, obj.key, "cpu", obj.numel)
        return None


def contiguous(storage, offset, size):
    stride, acc = [], 1
    for d in reversed(size):
        stride.insert(0, acc)
        acc *= d
    return Tensor(storage, offset, size, stride)


def save(path, obj, storages, pkl=None):
    buf = __import__("io").BytesIO()
    Pickler(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue() if pkl is None else pkl)
        for s in storages:
            z.writestr("archive/data/" + s.key, s.array.astype(s.array.dtype.newbyteorder("<")).tobytes())
        z.writestr("archive/version", "3\n")
        z.writestr("archive/byteorder", "little")


def main():
    rng = np.random.default_rng(4)
    shared = Storage("0", rng.standard_normal(40).astype(np.float32))
    half = Storage("1", (rng.standard_normal(32) * 3).astype(np.float16))
    ids = Storage("2", np.arange(6, dtype=np.int64))
    normal = Storage("3", rng.standard_normal(24).astype(np.float32))
    layer = Storage("4", rng.standard_normal(16).astype(np.float32))

    tensors = {
        "prompt_learner.learnable_normal_tokens": contiguous(normal, 0, (2, 3, 4)),
        "prompt_learner.learnable_layer_tokens.0": contiguous(layer, 0, (4, 4)),
        "visual_prompt.learnable_visual_tokens": contiguous(half, 0, (2, 4, 4)),
        # a transposed view and an offset view of one storage
        "linear_adapter.fc.0.weight": Tensor(shared, 0, (3, 5), (1, 3)),
        "linear_adapter.fc.0.bias": contiguous(shared, 30, (3,)),
    }
    ckpt = {
        "epoch": 1,
        "args": Namespace(),
        "prompt_learner": collections.OrderedDict([
            ("learnable_normal_tokens", tensors["prompt_learner.learnable_normal_tokens"]),
            ("learnable_layer_tokens.0", Parameter(tensors["prompt_learner.learnable_layer_tokens.0"])),
            ("token_ids", contiguous(ids, 0, (2, 3))),
        ]),
        "visual_prompt": {"learnable_visual_tokens": tensors["visual_prompt.learnable_visual_tokens"]},
        "linear_adapter": collections.OrderedDict([
            ("fc.0.weight", tensors["linear_adapter.fc.0.weight"]),
            ("fc.0.bias", tensors["linear_adapter.fc.0.bias"]),
        ]),
    }
    save("dapo_like.pth", ckpt, [shared, half, ids, normal, layer])

    # a training checkpoint of CLIP weights: {"state_dict": {"module.…": …}}
    proj = Storage("0", rng.standard_normal(6).astype(np.float16))
    state = {"state_dict": collections.OrderedDict([("module.visual.proj", contiguous(proj, 0, (2, 3)))])}
    save("clip_state.pth", state, [proj])

    expected = {k: {"shape": list(t.size), "data": t.values().ravel().tolist()} for k, t in tensors.items()}
    expected["visual.proj"] = {"shape": [2, 3], "data": contiguous(proj, 0, (2, 3)).values().ravel().tolist()}
    with open("expected.json", "w") as f:
        json.dump(expected, f, indent=1)
    bombs()


def bombs():
    """Tiny checkpoints whose headers lie; each is a few hundred bytes."""
    import os
    os.makedirs("bombs", exist_ok=True)
    one = Storage("0", np.zeros(4, dtype=np.float32))
    # a tensor of negative size over a valid storage
    save("bombs/negative_size.pth", {"w": Tensor(one, 0, (-5, 4), (4, 1))}, [one])
    # a storage declaring -1 values
    neg = Storage("0", np.zeros(4, dtype=np.float32), numel=-1)
    save("bombs/negative_storage.pth", {"w": contiguous(neg, 0, (4,))}, [neg])
    # 100000 x 100000 float32 values declared, 16 bytes stored
    big = Storage("0", np.zeros(4, dtype=np.float32), numel=100000 * 100000)
    save("bombs/huge_storage.pth", {"w": contiguous(big, 0, (100000, 100000))}, [big])
    # a broadcast view of 100000 x 100000 values over one float
    save("bombs/huge_view.pth", {"w": Tensor(one, 0, (100000, 100000), (0, 0))}, [one])
    # a pickle whose BINUNICODE8 string declares 2**40 bytes
    save("bombs/pickle_string.pth", {}, [], pkl=b"\x80\x02\x8d" + (1 << 40).to_bytes(8, "little") + b"ab.")


if __name__ == "__main__":
    main()
