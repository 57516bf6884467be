#!/usr/bin/python3
"""Reference values of package adaclip, produced by the official AdaCLIP code.

The official repository (github.com/caoyunkang/AdaCLIP, read at commit
e27ee32bf19be149795c8c8972d4c3c88cd5a496) is imported from the checkout given
on the command line and run unchanged, on PyTorch's CPU in float32:

  1. The tiny CLIP of the Go test (arch.json: 24 vision and 12 text blocks of
     width 64, 4 heads, patch 14, native 196 px, embed 64, exact GELU; weights
     weights.safetensors from clip.TinyWeights, with the tensors the official
     loader stores in float16 already rounded to float16) is written in OpenAI
     state-dict naming and loaded through the official loader
     (method/custom_clip.py create_model_and_transforms -> load_openai_model ->
     build_model_from_openai_state_dict -> CLIP(**cfg) -> resize_pos_embed).
  2. setup_seed(111) and AdaCLIP_Trainer as train.py builds it (feature
     layers 6/12/18/24, prompting depth 4, length 5, 'VL', 'SD', HSF with 20
     clusters, lr 0.01) draw the learned tensors; the official
     AdaCLIP_Trainer.save writes them: official_init.pth.
  3. infer: setup_seed(111), a fresh trainer, model.load(official_init.pth),
     then test.py's image mode on every inference image in order
     (preprocess(Image.open(p).convert('RGB')), clip_model(img, [cls],
     aggregation=True) under no_grad, gaussian_filter(sigma=4)): one process,
     so image n gets the n-th k-means fit of numpy's global generator.
  4. train: setup_seed(111), a fresh trainer, the official BaseDataset over a
     meta.json of the training items in the given order (aug_rate 0, one class
     per item), DataLoader(batch_size=1, shuffle=False), and the official
     train_epoch: three train_one_batch steps (forward, loss, AdamW.step).

Patches applied from outside (everything else is the official code):

  P1  sys.modules["ftfy"] with fix_text = identity: Debian has no
      python3-ftfy; the prompt sentences are plain ASCII, which ftfy leaves
      unchanged.
  P2  sys.modules["torch.utils.tensorboard"] with a dummy SummaryWriter:
      tools/training_tools.py imports it at module level; only setup_paths,
      not called here, uses it.
  P3  (train only) AdaCLIP.proj_visual_tokens and
      TextEmbebddingLayer.encode_text replaced by copies (method/adaclip.py
      L477-L488, L210-L230) whose four in-place normalisations `x /= x.norm()`
      are written `x = x / x.norm()`. In float32 the in-place form is an
      autograd error (norm saved x); the official training runs under CUDA
      autocast, where norm keeps a float32 copy of the float16 tensor. Same
      values, the gradients of x / ||x||.

Observation-only wrappers (each calls the original and copies its values):
AdaCLIP.visual.forward, AdaCLIP.encode_image, AdaCLIP.proj_visual_tokens,
TextEmbebddingLayer.forward, HybridSemanticFusion.forward,
KMeans.fit_predict, FocalLoss and BinaryDiceLoss (forward hooks).

Usage (from the repository root):

  go test ./baselines/adaclip -run OfficialParity -official-inputs /tmp/adaclip-in
  /usr/bin/python3 baselines/adaclip/testdata/reference.py --upstream ADACLIP_CHECKOUT \
      --inputs /tmp/adaclip-in --out baselines/adaclip/testdata [--bpe bpe_simple_vocab_16e6.txt.gz]

--bpe is needed when the checkout holds the Git LFS pointer of
method/bpe_simple_vocab_16e6.txt.gz (a checkout without git-lfs); the file
given must have the pointer's sha256, and is copied into the checkout as
`git lfs pull` would. Writes official_init.pth, reference.safetensors and
reference.json into --out: per inference image the score, the smoothed map
at every 4th row and column and small intermediates (plain image
embedding, projected class token, text features, top-100 indices, k-means
labels, HSF feature); per training step the loss and its terms; after the
third step every learned tensor in full, with its sum and sum of squares.
"""
import argparse
import hashlib
import json
import math
import os
import struct
import sys
import types

import numpy as np

UPSTREAM_COMMIT = "e27ee32bf19be149795c8c8972d4c3c88cd5a496"
BPE = "method/bpe_simple_vocab_16e6.txt.gz"
BPE_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
MODEL_NAME = "ViT-tiny-adaclip"
PROMPT_DEPTH, PROMPT_LENGTH, K_CLUSTERS, LR = 4, 5, 20, 0.01
EVERY = 4  # maps are kept at every 4th row and column
UPSTREAM_FILES = ["method/adaclip.py", "method/trainer.py", "method/clip_model.py", "method/custom_clip.py",
                  "method/transformer.py", "loss.py", "dataset/base_dataset.py", "train.py", "test.py"]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_safetensors(path):
    dtypes = {"F32": "<f4", "I64": "<i8", "F16": "<f2"}
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    h = json.loads(buf[8:8 + n])
    d = buf[8 + n:]
    return {k: np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]], dtype=dtypes[v["dtype"]]).reshape(v["shape"])
            for k, v in h.items() if k != "__metadata__"}


def write_safetensors(path, tensors, meta=None):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        if a.dtype.kind == "f":
            a, dt = np.ascontiguousarray(a, dtype="<f4"), "F32"
        else:
            a, dt = np.ascontiguousarray(a, dtype="<i8"), "I64"
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if meta:
        header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def np32(t):
    return t.detach().to("cpu").float().numpy().copy()


def ensure_vocab(upstream, bpe):
    dst = os.path.join(upstream, BPE)
    if os.path.isfile(dst) and sha256(dst) == BPE_SHA256:
        return
    with open(dst, "rb") as f:
        head = f.read(200)
    if not head.startswith(b"version https://git-lfs") or BPE_SHA256.encode() not in head:
        raise SystemExit(f"{dst}: neither the vocabulary (sha256 {BPE_SHA256}) nor its LFS pointer")
    if not bpe or sha256(bpe) != BPE_SHA256:
        raise SystemExit(f"{dst} is a Git LFS pointer: pass --bpe with the object (sha256 {BPE_SHA256})")
    with open(bpe, "rb") as f, open(dst, "wb") as g:
        g.write(f.read())


def install_patches(upstream):
    ftfy = types.ModuleType("ftfy")
    ftfy.fix_text = lambda text, *a, **k: text  # P1
    sys.modules.setdefault("ftfy", ftfy)
    import torch.utils  # noqa: F401
    tb = types.ModuleType("torch.utils.tensorboard")

    class SummaryWriter:  # P2
        def __init__(self, *a, **k):
            raise RuntimeError("tensorboard is stubbed out")
    tb.SummaryWriter = SummaryWriter
    sys.modules["torch.utils.tensorboard"] = tb
    sys.path.insert(0, upstream)
    import method.adaclip
    import method.custom_clip
    import method.trainer
    import tools
    import dataset.base_dataset
    for m in (method.adaclip, method.custom_clip, method.trainer, dataset.base_dataset):
        if not os.path.abspath(m.__file__).startswith(os.path.abspath(upstream)):
            raise SystemExit(f"{m.__name__} imported from {m.__file__}, not from {upstream}")
    return types.SimpleNamespace(adaclip=method.adaclip, custom_clip=method.custom_clip, trainer=method.trainer,
                                 tools=tools, base_dataset=dataset.base_dataset,
                                 clip_model=sys.modules["method.clip_model"])


def install_p3(up):
    A = up.adaclip

    def proj_visual_tokens(self, image_features, patch_tokens):  # adaclip.py L477-488, out of place
        proj_patch_tokens = self.patch_token_layer(patch_tokens)
        for layer in range(len(proj_patch_tokens)):
            proj_patch_tokens[layer] = proj_patch_tokens[layer] / proj_patch_tokens[layer].norm(dim=-1, keepdim=True)
        proj_cls_tokens = self.cls_token_layer(image_features)[0]
        proj_cls_tokens = proj_cls_tokens / proj_cls_tokens.norm(dim=-1, keepdim=True)
        return proj_cls_tokens, proj_patch_tokens

    def encode_text(self, model, text, device):  # adaclip.py L210-230, out of place
        import torch
        text_features = []
        for i in range(len(self.prompt_state)):
            text = text.replace('-', ' ')
            prompted_state = [state.format(text) for state in self.prompt_state[i]]
            prompted_sentence = []
            for s in prompted_state:
                for template in self.prompt_templates:
                    prompted_sentence.append(template.format(s))
            prompted_sentence = self.tokenize(prompted_sentence, context_length=77).to(device)
            class_embeddings = model.encode_text(prompted_sentence)
            class_embeddings = class_embeddings / class_embeddings.norm(dim=-1, keepdim=True)
            class_embedding = class_embeddings.mean(dim=0)
            class_embedding = class_embedding / class_embedding.norm()
            text_features.append(class_embedding)
        return torch.stack(text_features, dim=1)

    A.AdaCLIP.proj_visual_tokens = proj_visual_tokens
    A.TextEmbebddingLayer.encode_text = encode_text


# ---------------------------------------------------------------- model

def open_clip_config(arch):
    return {"embed_dim": arch["embed_dim"],
            "vision_cfg": {"image_size": arch["image_size"], "layers": arch["vision_layers"],
                           "width": arch["vision_width"], "patch_size": arch["patch_size"],
                           "head_width": arch["vision_width"] // arch["vision_heads"]},
            "text_cfg": {"context_length": arch["context_length"], "vocab_size": arch["vocab_size"],
                         "width": arch["text_width"], "heads": arch["text_heads"], "layers": arch["text_layers"]}}


def fp16_in_openai_loader(name):
    """Tensors build_model_from_openai_state_dict stores in float16
    (clip_model.py L361 convert_weights_to_fp16, then model.float())."""
    return (name in ("text_projection", "visual.proj", "visual.conv1.weight")
            or name.endswith(("attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
                              "attn.out_proj.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                              "mlp.c_proj.weight", "mlp.c_proj.bias")))


def write_model(inputs, work, arch):
    import torch
    w = read_safetensors(os.path.join(inputs, "weights.safetensors"))
    sd = {}
    for k, v in w.items():
        t = torch.from_numpy(v.astype(np.float32).copy())
        if fp16_in_openai_loader(k) and not torch.equal(t.half().float(), t):
            raise SystemExit(f"{k}: not on the float16 grid; the official loader would round it (write the weights rounded)")
        sd[k] = t
    sd.setdefault("logit_scale", torch.tensor(math.log(1 / 0.07)))  # unused by AdaCLIP
    os.makedirs(os.path.join(work, "model_configs"), exist_ok=True)
    with open(os.path.join(work, "model_configs", MODEL_NAME + ".json"), "w") as f:
        json.dump(open_clip_config(arch), f, indent=2)
    # load_openai_model accepts a file named like the model for names
    # without a download URL (custom_clip.py L432-L438).
    torch.save(sd, os.path.join(work, MODEL_NAME))


def build_trainer(up, work, arch, image_size):
    up.custom_clip.add_model_config(os.path.join(work, "model_configs"))
    cwd = os.getcwd()
    os.chdir(work)
    try:
        n = arch["vision_layers"] // 4
        return up.trainer.AdaCLIP_Trainer(
            backbone=MODEL_NAME, feat_list=[n, 2 * n, 3 * n, 4 * n],
            input_dim=arch["vision_width"], output_dim=arch["embed_dim"],
            learning_rate=LR, device="cpu", image_size=image_size,
            prompting_depth=PROMPT_DEPTH, prompting_length=PROMPT_LENGTH,
            prompting_branch="VL", prompting_type="SD", use_hsf=True, k_clusters=K_CLUSTERS,
        ).to("cpu")
    finally:
        os.chdir(cwd)


def learnable_state(model):
    sd = {}
    for param, value in model.state_dict().items():
        for update_name in model.learnable_paramter_list:
            if update_name in param:
                sd[param] = value
                break
    return sd


class Recorder:
    """Observation-only wrappers around official objects."""

    def __init__(self, model):
        import torch
        self.events = []
        cm = model.clip_model
        rec = self

        def wrap(obj, name, tag, cap):
            orig = getattr(obj, name)

            def w(*a, **k):
                out = orig(*a, **k)
                rec.events.append((tag, cap(a, k, out)))
                return out
            setattr(obj, name, w)

        wrap(cm.visual, "forward", "plain", lambda a, k, o: np32(o[0]))
        wrap(cm, "proj_visual_tokens", "proj", lambda a, k, o: np32(o[0]))
        wrap(cm.text_embedding_layer, "forward", "text", lambda a, k, o: np32(o))
        hsf = cm.HSF
        orig_hsf = hsf.forward

        def hsf_forward(patch_tokens, anomaly_maps):
            am = torch.softmax(torch.mean(torch.stack([m.detach() for m in anomaly_maps], dim=1), dim=1), dim=2)[:, :, 1]
            idx = torch.topk(am, k=min(am.shape[1], hsf.n_aggregate_patch_tokens), dim=1).indices
            out = orig_hsf(patch_tokens, anomaly_maps)
            rec.events.append(("hsf", {"topk": idx.numpy().copy(), "feature": np32(out)}))
            return out
        hsf.forward = hsf_forward
        km = hsf.cluster_performer
        orig_fp = km.fit_predict

        def fit_predict(X, *a, **k):
            before = int(np.random.get_state()[2])
            labels = orig_fp(X, *a, **k)
            rec.events.append(("kmeans", {"labels": labels.astype(np.int64), "n_iter": int(km.n_iter_),
                                          "pos_before": before, "pos_after": int(np.random.get_state()[2])}))
            return labels
        km.fit_predict = fit_predict
        model.loss_focal.register_forward_hook(lambda m, i, o: rec.events.append(("focal", float(o.detach()))))
        model.loss_dice.register_forward_hook(lambda m, i, o: rec.events.append(("dice", float(o.detach()))))

    def take(self):
        ev, self.events = self.events, []
        return ev


def first(ev, tag):
    return next(v for t, v in ev if t == tag)


def all_of(ev, tag):
    return [v for t, v in ev if t == tag]


def small(prefix, ev):
    out = {prefix + "image_embed_plain": first(ev, "plain"), prefix + "proj_cls": first(ev, "proj"),
           prefix + "text_features": first(ev, "text")}
    h = first(ev, "hsf")
    out[prefix + "topk_indices"] = h["topk"]
    out[prefix + "hsf_feature"] = h["feature"]
    out[prefix + "kmeans_labels"] = first(ev, "kmeans")["labels"]
    return out


# ---------------------------------------------------------------- phases

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True, help="checkout of caoyunkang/AdaCLIP (unchanged)")
    ap.add_argument("--inputs", required=True, help="folder written by the Go test's -official-inputs")
    ap.add_argument("--out", required=True)
    ap.add_argument("--bpe", help="the LFS object " + BPE)
    args = ap.parse_args()
    upstream, inputs, out = (os.path.abspath(p) for p in (args.upstream, args.inputs, args.out))
    if not os.path.isfile(os.path.join(upstream, "method", "adaclip.py")):
        raise SystemExit(f"{upstream}: no method/adaclip.py; pass the AdaCLIP checkout")
    ensure_vocab(upstream, args.bpe)
    import torch
    import sklearn
    from PIL import Image
    from scipy.ndimage import gaussian_filter
    torch.set_num_threads(1)
    up = install_patches(upstream)
    with open(os.path.join(inputs, "arch.json")) as f:
        arch = json.load(f)
    with open(os.path.join(inputs, "samples.json")) as f:
        samples = json.load(f)
    size = samples["image_size"]
    work = os.path.join(inputs, "work")
    write_model(inputs, work, arch)
    os.makedirs(out, exist_ok=True)

    # official_init.pth, written by the official save
    up.tools.setup_seed(111)
    init_path = os.path.join(out, "official_init.pth")
    build_trainer(up, work, arch, size).save(init_path)

    tensors = {}
    ref = {"upstream_commit": UPSTREAM_COMMIT,
           "upstream_sha256": {f: sha256(os.path.join(upstream, f)) for f in UPSTREAM_FILES},
           "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
                        "sklearn": sklearn.__version__},
           "inputs_sha256": {f: sha256(os.path.join(inputs, f)) for f in
                             ["weights.safetensors"] + sorted({s[k] for part in ("infer", "train")
                                                               for s in samples[part] for k in ("image", "mask")
                                                               if s.get(k)})},
           "init": {"file": "official_init.pth", "sha256": sha256(init_path)},
           "image_size": size, "every": EVERY, "lr": LR, "infer": [], "train": []}

    # infer: test.py's image mode, one process
    up.tools.setup_seed(111)
    model = build_trainer(up, work, arch, size)
    model.load(init_path)
    rec = Recorder(model)
    for i, s in enumerate(samples["infer"]):
        img = model.preprocess(Image.open(os.path.join(inputs, s["image"])).convert("RGB")).unsqueeze(0)
        with torch.no_grad():
            amap, score = model.clip_model(img, [s["class"]], aggregation=True)
        raw = amap[0].cpu().numpy()
        smooth = gaussian_filter(raw, sigma=4)
        ev = rec.take()
        p = f"infer/{i}/"
        tensors.update(small(p, ev))
        tensors[p + "score"] = np.asarray([float(score[0])], dtype=np.float32)
        tensors[p + "map"] = smooth[::EVERY, ::EVERY].astype(np.float32)
        km = first(ev, "kmeans")
        ref["infer"].append({"image": s["image"], "class": s["class"], "score": float(score[0]),
                             "kmeans_n_iter": km["n_iter"], "mt19937_pos": [km["pos_before"], km["pos_after"]]})
        print(f"infer {s['image']} [{s['class']}]: score {float(score[0]):.6f}", flush=True)

    # train: three steps of the official train_epoch, fixed order
    install_p3(up)
    up.tools.setup_seed(111)
    model = build_trainer(up, work, arch, size)
    ref_init = torch.load(init_path)
    now = learnable_state(model)
    if sorted(ref_init) != sorted(now) or any(not torch.equal(ref_init[k], now[k]) for k in now):
        raise SystemExit("train: the seeded learned tensors differ from official_init.pth")
    root = os.path.join(work, "dataset")
    os.makedirs(root, exist_ok=True)
    meta = {"train": {}, "test": {}}
    clsnames = []
    for s in samples["train"]:
        if s["class"] in clsnames:
            raise SystemExit(f"class {s['class']} twice: the official dataset would reorder the items")
        clsnames.append(s["class"])
        meta["train"][s["class"]] = []
        meta["test"][s["class"]] = [{"img_path": os.path.join(inputs, s["image"]),
                                     "mask_path": os.path.join(inputs, s["mask"]) if s.get("mask") else "",
                                     "cls_name": s["class"], "specie_name": "", "anomaly": s["anomaly"]}]
    with open(os.path.join(root, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    data = up.base_dataset.BaseDataset(clsnames=clsnames, transform=model.preprocess,
                                       target_transform=model.transform, root=root, aug_rate=0.0, training=True)
    loader = torch.utils.data.DataLoader(data, batch_size=1, shuffle=False)
    rec = Recorder(model)
    orig = model.train_one_batch

    def train_one_batch(items):
        loss = orig(items)
        ev = rec.take()
        i = len(ref["train"])
        tensors.update(small(f"train/{i}/", ev))
        focal, dice, km = all_of(ev, "focal"), all_of(ev, "dice"), first(ev, "kmeans")
        ref["train"].append({"image": os.path.relpath(items["img_path"][0], inputs), "class": items["cls_name"][0],
                             "loss": float(loss.detach()), "loss_image": focal[0], "loss_focal": sum(focal[1:]),
                             "loss_dice": sum(dice), "kmeans_n_iter": km["n_iter"],
                             "mt19937_pos": [km["pos_before"], km["pos_after"]]})
        print(f"train step {i + 1} {items['cls_name'][0]}: loss {float(loss.detach()):.6f}", flush=True)
        return loss
    model.train_one_batch = train_one_batch
    model.train_epoch(loader)
    ref["after"] = {}
    for k, v in learnable_state(model).items():
        a = np32(v).ravel()
        name = k[len("clip_model."):]
        tensors["after/" + name] = a
        a64 = a.astype(np.float64)
        ref["after"][name] = {"size": int(a.size), "sum": float(a64.sum()), "sum_squares": float((a64 * a64).sum())}
    write_safetensors(os.path.join(out, "reference.safetensors"), tensors, {"upstream_commit": UPSTREAM_COMMIT})
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
