#!/usr/bin/python3
"""Writes the learned-prompt checkpoints of checkpoints' tests, without torch.

The files have torch.save's zip layout (PyTorch >= 1.6): archive/data.pkl, a
pickle (protocol 2) whose tensors are torch._utils._rebuild_tensor_v2 calls
over persistent storage ids, archive/data/<key> with the raw little-endian
storage bytes, archive/version and archive/byteorder. Stand-in torch classes
give the pickle the same opcodes torch writes, so Debian's python3-torch is
not needed.

The contents follow the official training scripts at the tiny model's sizes
(clip.TinyArch: text and vision width 32, embed dim 16, 4 blocks per tower):

  dapo_train.pth   DAPO train.py: {epoch, prompt_learner, visual_prompt,
                   linear_adapter, optimizer_state_dict, train_loss,
                   train_image_loss}; state dicts carry torch's _metadata and
                   the unused meta_net (docs/methods.md#dapo-meta-net,
                   docs/methods.md#dapo-checkpoint)
  dapo_test.pth    the same with test.py's key spelling
                   (prompt_learner_state_dict, visual_prompt_state_dict,
                   trainable_adapter_state_dict)
  anomalyclip.pth  AnomalyCLIP: {"prompt_learner": state dict} with ctx_pos,
                   ctx_neg, compound_prompts_text, the unused
                   compound_prompt_projections and the prompt buffers
                   (docs/methods.md#anomalyclip-checkpoint)
  dapo_badshape.pth, dapo_missing.pth, dapo_unknown.pth, dapo_both.pth,
  torchscript.pt   bad inputs
  expected.json    for each good file, every canonical tensor the import must
                   give: shape, sha256 of its float32 little-endian bytes and
                   its first values

Usage: cd checkpoints/testdata && /usr/bin/python3 gen_pth.py
"""
import collections
import hashlib
import io
import json
import pickle
import sys
import types
import zipfile

import numpy as np

# Tiny model sizes (clip.TinyArch, clip.TextDeepDepth, clip.VisualDeepDepth).
DT, DV, DE = 32, 32, 16
TEXT_LAYERS, VISION_LAYERS = 4, 4
DEEP = 4  # deep prompt tokens per layer
E, L = 10, 5  # DAPO prompt groups and learned context tokens
N_CTX = 12  # AnomalyCLIP context tokens
ACLIP_DEPTH = min(9 - 1, TEXT_LAYERS - 1)  # compound_prompts_text count
ADAPTERS = 4
PROJ_OUT = 896  # AnomalyCLIP's hard-coded compound projection width

# --- stand-ins for the torch globals the pickle names ----------------------

torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
sys.modules["torch"], sys.modules["torch._utils"] = torch, torch_utils

STORAGE_CLASSES = {}
for dtype, name in [(np.float32, "FloatStorage"), (np.float16, "HalfStorage"),
                    (np.int64, "LongStorage"), (np.int32, "IntStorage")]:
    cls = type(name, (), {"__module__": "torch"})
    setattr(torch, name, cls)
    STORAGE_CLASSES[np.dtype(dtype)] = cls


def _rebuild_tensor_v2(*args):
    raise RuntimeError("stand-in, never called")


_rebuild_tensor_v2.__module__ = "torch._utils"
torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2


class Storage:
    def __init__(self, array):
        self.array = np.ascontiguousarray(array).ravel()


class Tensor:
    """A view of a storage, pickled as torch pickles a tensor."""

    def __init__(self, storage, offset, shape):
        self.storage, self.offset, self.shape = storage, offset, tuple(shape)
        stride, acc = [], 1
        for d in reversed(self.shape):
            stride.insert(0, acc)
            acc *= d
        self.stride = tuple(stride)

    def __reduce__(self):
        return (_rebuild_tensor_v2,
                (self.storage, self.offset, self.shape, self.stride, False, collections.OrderedDict()))

    def values(self):
        n = int(np.prod(self.shape))
        return self.storage.array[self.offset:self.offset + n].reshape(self.shape)


def tensor(array):
    array = np.asarray(array)
    return Tensor(Storage(array), 0, array.shape)


class Pickler(pickle.Pickler):
    def __init__(self, f):
        super().__init__(f, protocol=2)
        self.storages = []  # in key order
        self.keys = {}  # id(storage) -> key, so a shared storage is stored once

    def persistent_id(self, obj):
        if not isinstance(obj, Storage):
            return None
        if id(obj) not in self.keys:
            self.keys[id(obj)] = str(len(self.storages))
            self.storages.append(obj)
        return ("storage", STORAGE_CLASSES[obj.array.dtype], self.keys[id(obj)], "cpu", obj.array.size)


def save(path, obj, extra=None):
    """torch.save's zip layout; extra adds archive members (TorchScript)."""
    buf = io.BytesIO()
    p = Pickler(buf)
    p.dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        for name, data in (extra or {}).items():
            z.writestr("archive/" + name, data)
        for key, s in enumerate(p.storages):
            z.writestr("archive/data/%d" % key, s.array.astype(s.array.dtype.newbyteorder("<")).tobytes())
        z.writestr("archive/version", "3\n")
        z.writestr("archive/byteorder", "little")


def state_dict(items, modules):
    """An OrderedDict with the _metadata attribute Module.state_dict sets."""
    sd = collections.OrderedDict(items)
    sd._metadata = collections.OrderedDict((m, {"version": 1}) for m in modules)
    return sd


# --- contents ---------------------------------------------------------------

def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def dapo_parts(rng):
    """The three DAPO state dicts (docs/methods.md#dapo-checkpoint) and their canonical tensors."""
    normal, abnormal = randn(rng, E, L, DT), randn(rng, E, L, DT)
    layers = [randn(rng, DEEP, DT) for _ in range(TEXT_LAYERS)]
    visual = (rng.uniform(-0.1, 0.1, (VISION_LAYERS, DEEP, DV))).astype(np.float32)
    fc = [(randn(rng, DE, DV) * 0.1, randn(rng, DE) * 0.1) for _ in range(ADAPTERS)]
    prompt = [("learnable_normal_tokens", tensor(normal)), ("learnable_abnormal_tokens", tensor(abnormal))]
    prompt += [("learnable_layer_tokens.%d" % i, tensor(t)) for i, t in enumerate(layers)]
    prompt += [("meta_net.0.weight", tensor(randn(rng, DT // 16, DT))), ("meta_net.0.bias", tensor(randn(rng, DT // 16))),
               ("meta_net.2.weight", tensor(randn(rng, DT, DT // 16))), ("meta_net.2.bias", tensor(randn(rng, DT)))]
    adapter = []
    for i, (w, b) in enumerate(fc):
        adapter += [("fc.%d.weight" % i, tensor(w)), ("fc.%d.bias" % i, tensor(b))]
    parts = {
        "prompt_learner": state_dict(prompt, ["", "learnable_layer_tokens", "meta_net", "meta_net.0", "meta_net.1", "meta_net.2"]),
        "visual_prompt": state_dict([("learnable_visual_tokens", tensor(visual))], [""]),
        "linear_adapter": state_dict(adapter, ["", "fc"] + ["fc.%d" % i for i in range(ADAPTERS)]),
    }
    canonical = {"normal_ctx": normal, "abnormal_ctx": abnormal, "text_deep": np.stack(layers), "visual_prompts": visual}
    for i, (w, b) in enumerate(fc):
        canonical["adapter.%d.weight" % i], canonical["adapter.%d.bias" % i] = w, b
    return parts, canonical


def optimizer_state(rng, parts):
    """Adam's state dict as train.py saves it: per-parameter moments keyed by index."""
    state, index = {}, 0
    for sd in parts.values():
        for _, t in sd.items():
            shape = t.shape
            state[index] = {"step": tensor(np.float32(5)), "exp_avg": tensor(randn(rng, *shape) * 1e-3),
                            "exp_avg_sq": tensor(np.abs(randn(rng, *shape)) * 1e-6)}
            index += 1
    groups = [{"lr": 0.001, "betas": (0.5, 0.999), "eps": 1e-08, "weight_decay": 0, "amsgrad": False,
               "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
               "fused": None, "params": list(range(index))}]
    return {"state": state, "param_groups": groups}


def anomalyclip_parts(rng):
    """AnomalyCLIP's prompt learner state dict (docs/methods.md#anomalyclip-checkpoint)."""
    pos, neg = randn(rng, 1, 1, N_CTX, DT) * 0.02, randn(rng, 1, 1, N_CTX, DT) * 0.02
    deep = [randn(rng, DEEP, DT) * 0.02 for _ in range(ACLIP_DEPTH)]
    # the projections are unused; one storage backs all of them, as
    # torch.save stores a shared storage once
    proj = Storage(randn(rng, PROJ_OUT * DT + PROJ_OUT))
    embed = randn(rng, 2, 77, DT)
    items = [("ctx_pos", tensor(pos)), ("ctx_neg", tensor(neg))]
    items += [("compound_prompts_text.%d" % i, tensor(t)) for i, t in enumerate(deep)]
    for i in range(ACLIP_DEPTH):
        items += [("compound_prompt_projections.%d.weight" % i, Tensor(proj, 0, (PROJ_OUT, DT))),
                  ("compound_prompt_projections.%d.bias" % i, Tensor(proj, PROJ_OUT * DT, (PROJ_OUT,)))]
    ids = np.zeros((2, 1, 1, 77), np.int32)
    ids[:, 0, 0, 0], ids[:, 0, 0, 14:16] = 49406, [269, 49407]
    items += [("token_prefix_pos", tensor(embed[0, :1].reshape(1, 1, 1, DT))),
              ("token_suffix_pos", tensor(embed[0, 1 + N_CTX:].reshape(1, 1, 77 - 1 - N_CTX, DT))),
              ("token_prefix_neg", tensor(embed[1, :1].reshape(1, 1, 1, DT))),
              ("token_suffix_neg", tensor(embed[1, 1 + N_CTX:].reshape(1, 1, 77 - 1 - N_CTX, DT))),
              ("tokenized_prompts_pos", tensor(ids[0])), ("tokenized_prompts_neg", tensor(ids[1]))]
    sd = state_dict(items, ["", "compound_prompts_text", "compound_prompt_projections"])
    canonical = {"normal_ctx": pos.reshape(N_CTX, DT), "abnormal_ctx": neg.reshape(N_CTX, DT), "text_deep": np.stack(deep)}
    return sd, canonical


def describe(canonical):
    out = {}
    for k, v in sorted(canonical.items()):
        v = np.ascontiguousarray(v, dtype="<f4")
        out[k] = {"shape": list(v.shape), "sha256": hashlib.sha256(v.tobytes()).hexdigest(),
                  "first": [float(x) for x in v.ravel()[:4]]}
    return out


def main():
    rng = np.random.default_rng(20251209)
    expected = {}

    parts, canon = dapo_parts(rng)
    ckpt = {"epoch": 1}
    ckpt.update(parts)
    ckpt["optimizer_state_dict"] = optimizer_state(rng, parts)
    ckpt["train_loss"], ckpt["train_image_loss"] = np.float64(1.25), np.float64(0.5)
    save("dapo_train.pth", ckpt)
    expected["dapo_train.pth"] = describe(canon)

    parts, canon = dapo_parts(rng)
    save("dapo_test.pth", {"epoch": 4, "prompt_learner_state_dict": parts["prompt_learner"],
                           "visual_prompt_state_dict": parts["visual_prompt"],
                           "trainable_adapter_state_dict": parts["linear_adapter"]})
    expected["dapo_test.pth"] = describe(canon)

    sd, canon = anomalyclip_parts(rng)
    save("anomalyclip.pth", {"prompt_learner": sd})
    expected["anomalyclip.pth"] = describe(canon)

    # bad inputs
    parts, _ = dapo_parts(rng)
    bad = collections.OrderedDict(parts["prompt_learner"])
    bad["learnable_normal_tokens"] = tensor(randn(rng, E, L - 1, DT))
    save("dapo_badshape.pth", dict(parts, prompt_learner=bad))

    bad = collections.OrderedDict(parts["prompt_learner"])
    del bad["learnable_layer_tokens.%d" % (TEXT_LAYERS - 1)]
    save("dapo_missing.pth", dict(parts, prompt_learner=bad))

    bad = collections.OrderedDict(parts["prompt_learner"])
    bad["learnable_extra_tokens"] = tensor(randn(rng, 2, DT))
    save("dapo_unknown.pth", dict(parts, prompt_learner=bad))

    save("dapo_both.pth", dict(parts, prompt_learner_state_dict=parts["prompt_learner"]))

    # a TorchScript archive (torch.jit.save) carries constants.pkl and code/
    save("torchscript.pt", {"prompt_learner": parts["prompt_learner"]},
         extra={"constants.pkl": pickle.dumps((), protocol=2), "code/__torch__.py": "class M: pass\n"})

    with open("expected.json", "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
