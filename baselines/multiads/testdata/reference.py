#!/usr/bin/python3
"""Reference values of the official MultiADS code for multiads' TestOfficialParity.

Runs https://github.com/boschresearch/MultiADS (train.py, test.py, model.py, loss.py, dataset.py,
the prompts/ modules and its open_clip) unchanged, imported from the checkout given on the command
line, on PyTorch's CPU in float32:

  1. The CLIP is the tiny one of baselines/internal/parity (arch.json: ViT-L/14@336px's depth,
     widths 64/64, embed 32), registered as an open_clip config without a quick_gelu key and
     loaded through the official factory at 518 pixels exactly as for ViT-L-14-336 (exact GELU,
     bicubic-antialias positional resize); weights.safetensors is written by the Go test.
  2. train.train(args) with train.py's defaults except: the fixture images of meta.json (MVTec
     layout, the test split as the official trainer reads it), batch 2, one epoch (3 Adam
     steps), aug_rate -1 (no mosaic: it draws from Python's random and os.listdir), after
     setup_seed(42). init.pth (the trainer's own LinearLayer before the first step) and
     epoch_1.pth (written by train()) are kept.
  3. test.test(args) in zero-shot mode with that epoch_1.pth, on the MVTec and on the VisA
     fixture images; evaluate_one_object (which test.py runs in a process pool) is then called
     in-process to read its final, min-max normalised image scores.

Values are copied out of the running functions by a line tracer (sys.settrace) just before
fixed source lines run; every hooked line's text is checked, and the checkout's files are checked
against the sha256 of the pinned commit (--allow-unpinned turns that into a warning).

Outside patches, because train.py and test.py --dataset mvtec cannot run as published at this
commit (nothing in the checkout is edited; the list goes into reference.json):
  ftfy       ftfy is not packaged by Debian; a stand-in fix_text returns its input and refuses
             anything but printable ASCII without '&' (for which the real one is the identity).
  train_imp  train.py:20 imports VisaDatasetV2, which dataset.py comments out (a placeholder
             that raises if used is supplied); train.py:164 uses re without importing it (the
             module is supplied); img_mask and img_mask_b (train.py:201-202) are never defined:
             before train.py:199 they are built with the code of train_multi_seg.py:202-208.
  mvtec_ds   test.py:246 passes target_transform_type to the effective MVTecDataset
             (dataset.py:361), which has no such parameter, and test.py:306 reads img_mask_b,
             which it does not return: a subclass accepts the argument and adds
             img_mask_b = (img_mask > 0.5) as VisaDatasetTest does (dataset.py:252-259).

Written into OUT (default: this folder):
  reference.json          digests, commit, patches; per dataset and image the softmax score, the
                          top-3 mean of the map, the final image score, map sum and maximum; per
                          training step the batch's images and type ids, the loss and its
                          per-layer focal and dice terms
  reference.safetensors   test/<dataset>/<i>/map (summed map at rows and columns 5, 18, ..., 512),
                          text/<dataset>/<class> ([De, C] class vectors),
                          train/step<k>/adapter.<i>.{weight,bias} after Adam steps 1 and 3
  init.pth, epoch_1.pth   the official checkpoints (before the first step; after the third)
  ../prompts.json         every prompt ensemble of prompts/*.py and the tables of test.py,
                          test_multi_defect.py, train.py and dataset.py that the scheme uses

Needs Debian's python3-torch (1.13), python3-torchvision, python3-regex, python3-opencv,
python3-pil, python3-numpy, python3-scipy, python3-sklearn, python3-skimage, python3-tabulate.

Usage (from the repository root):

  go test ./baselines/multiads -run OfficialParity -official-inputs /tmp/multiads-in
  /usr/bin/python3 baselines/multiads/testdata/reference.py MultiADS /tmp/multiads-in
"""
import argparse
import ast
import hashlib
import importlib
import json
import linecache
import os
import re
import shutil
import struct
import sys
import tempfile
import types
import warnings

import numpy as np

REPO = "boschresearch/MultiADS"
COMMIT = "66900bb88d273e032d9091d4c4e77dbb8204626f"
PINNED = {
    "test.py": "b43715dde0ab8fe9f0dd2cc95d1be619f5f791f986f883e139f7747328768a35",
    "train.py": "77205cca5dbb055b9c58e6770d28e73f75a669c2103576e13ad551610efadc46",
    "model.py": "b677201ec5f8469f75b9da5e32fe578e2d6832addfabc27233825fce4c43f132",
    "loss.py": "b1f99d0eabb3dd8216fd6716bc6b4197a14ad9c99bf558c7f3201e3910d54b61",
    "dataset.py": "cae66dd0c2f711f9555e01652c16fee594e2eb9fe11c12cc2fa3173507b0ba85",
    "prompts/prompt_ensemble_mvtec_20cls.py": "54f2032681f3e25d75c72851328c1d941a879d882dbe0ebf34154c48a4b27e1b",
    "prompts/prompt_ensemble_visa_19cls_test.py": "1b4bc879ebbaf358a944e2dce0cfa4d6e09692fc54720a9675b44379d3d35c7b",
    "prompts/prompt_ensemble_visa_19cls.py": "817f3b0da27c67070bdbf86c265b77ea85e2ac5e8bf08894d00ba14142a21b8e",
    "train_multi_seg.py": "ad833c16bc95c6d0b4d41c72df2abd7f4e4f020ee40c756532a9a3118323dea1",
    "test_multi_defect.py": "c7cfe4996f6105d0119f2d86b16c1d10bf0af13d2d56dcd9455d4bcb1eea0ef6",
    "open_clip/factory.py": "c1fb08fae3ee4f78c5b0375cfcfdf2415e9ff789cb847a123ec722a1631686f4",
    "open_clip/model.py": "fa74484fb494bbfb5dad0f203dfaee5c0fa6df90b4ee191b288f72d75b2cc989",
    "open_clip/transformer.py": "8c6aa75c2f382f271aa1496d0e1c7126f5354d20bb6d87661dcfd451e91ee498",
    "open_clip/openai.py": "f96a14feff6f6af7625d7ca3ec12f095aeed657b0d7f3953512c1eaadeb999c2",
    "open_clip/tokenizer.py": "5f55e9e2050feb3168a4fcef881bb13ef142f37a298d288d3da8cbf07f839a14",
    "open_clip/transform.py": "0608d090751d2244cea8944dfd065526adf7d7080110c610e510959416c9ea0a",
}
NAME = "ViT-Tiny24-14-336"
LAYERS = [6, 12, 18, 24]
SAMPLE = {"offset": 5, "stride": 13}
# The official dataset names and dapobench's.
DATASETS = {"mvtec": "mvtec", "visa": "visa", "mpdd": "mpdd", "mad_sim": "mad-sim", "mad_real": "mad-real",
            "real_iad": "real-iad"}
PATCHES = {
    "ftfy": "stand-in ftfy.fix_text = identity on printable ASCII without '&' (ftfy is not packaged by Debian)",
    "train_imp": "train.py:20/164/201-202: VisaDatasetV2 placeholder, module re, img_mask/img_mask_b built as train_multi_seg.py:202-208",
    "mvtec_ds": "test.py:246/306: MVTecDataset subclass accepting target_transform_type and returning img_mask_b as VisaDatasetTest does (dataset.py:252-259)",
}


# ----------------------------------------------------------------------------- utilities

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    data = buf[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        lo, hi = e["data_offsets"]
        out[name] = np.frombuffer(data[lo:hi], dtype="<f4").reshape(e["shape"]).copy()
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        b = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(tensors[name])), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def weights_digest(w):
    """sha256 of names, shapes and float32 bytes in name order (parity.WeightsDigest)."""
    h = hashlib.sha256()
    for k in sorted(w):
        h.update(f"{k} [{' '.join(str(d) for d in w[k].shape)}]\n".encode())
        h.update(np.ascontiguousarray(w[k], dtype="<f4").tobytes())
    return h.hexdigest()


def check_pinned(repo, allow):
    bad = []
    for rel, want in PINNED.items():
        p = os.path.join(repo, rel)
        got = sha256(p) if os.path.exists(p) else "missing"
        if got != want:
            bad.append(f"{rel}: sha256 {got}, want {want}")
    if bad:
        msg = f"{repo} is not {REPO}@{COMMIT}:\n  " + "\n  ".join(bad)
        if not allow:
            sys.exit("reference: " + msg + "\n(--allow-unpinned runs anyway; hooked line numbers may then be wrong)")
        warnings.warn(msg)
    return not bad


def install_ftfy_standin():
    try:
        import ftfy  # noqa: F401
        return False
    except ImportError:
        pass
    mod = types.ModuleType("ftfy")
    ok = re.compile(r"^[\x20-\x7e]*$")

    def fix_text(text, *a, **k):
        if not ok.match(text) or "&" in text:
            raise ValueError(f"ftfy stand-in: {text!r} is not plain printable ASCII; real ftfy needed")
        return text

    mod.fix_text = fix_text
    sys.modules["ftfy"] = mod
    return True


class Hooks:
    """fn(frame) runs before a hooked line of a hooked function executes."""

    def __init__(self):
        self.by_code = {}

    def at(self, func, lineno, expect, fn):
        code = func.__code__
        line = linecache.getline(code.co_filename, lineno).strip()
        if not line.startswith(expect):
            raise SystemExit(f"reference: {code.co_filename}:{lineno} is {line!r}, expected {expect!r}")
        self.by_code.setdefault(code, {})[lineno] = fn
        return self

    def _global(self, frame, event, arg):
        if event == "call" and frame.f_code in self.by_code:
            return self._local
        return None

    def _local(self, frame, event, arg):
        if event == "line":
            fn = self.by_code[frame.f_code].get(frame.f_lineno)
            if fn is not None:
                fn(frame)
        return self._local

    def __enter__(self):
        self._old = sys.gettrace()
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc):
        sys.settrace(self._old)
        return False


def f32(x):
    import torch
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().float().numpy()
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32))


def sampled(m):
    m = f32(m)
    o, s = SAMPLE["offset"], SAMPLE["stride"]
    return m[o::s, o::s].copy()


def top3(m):
    return float(np.mean(np.partition(f32(m).reshape(-1), -3)[-3:]))


# ----------------------------------------------------------------------------- model

def state_dict_file(inputs, tmp):
    """weights.safetensors as the torch state dict open_clip's openai loader reads, and the
    open_clip config of arch.json; returns the config path."""
    import torch
    arch = json.load(open(os.path.join(inputs, "arch.json")))
    w = read_safetensors(os.path.join(inputs, "weights.safetensors"))
    meta = json.load(open(os.path.join(inputs, "weights.json")))
    if weights_digest(w) != meta["digest"]:
        sys.exit("reference: weights.safetensors does not match weights.json's digest")
    sd = {k: torch.from_numpy(v) for k, v in w.items()}
    sd["logit_scale"] = torch.tensor(float(np.log(100.0)))  # CLIP's, unused by the code run here
    torch.save(sd, os.path.join(tmp, NAME))
    cfg = {"embed_dim": arch["embed_dim"],
           "vision_cfg": {"image_size": arch["image_size"], "layers": arch["vision_layers"],
                          "width": arch["vision_width"], "head_width": arch["vision_width"] // arch["vision_heads"],
                          "patch_size": arch["patch_size"]},
           "text_cfg": {"context_length": arch["context_length"], "vocab_size": arch["vocab_size"],
                        "width": arch["text_width"], "heads": arch["text_heads"], "layers": arch["text_layers"]}}
    path = os.path.join(tmp, NAME + ".json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=4)
    return path, meta


# ----------------------------------------------------------------------------- tables

def literal_assigns(stmts):
    """name -> literal value of the simple assignments among stmts, in source order."""
    out = {}
    for node in stmts:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def ensemble(path):
    """templates and state groups of a prompts/*.py ensemble, read with ast; the group names are
    the list variables' names."""
    tree = ast.parse(open(path).read())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "encode_text_with_prompt_ensemble")
    lists = literal_assigns(fn.body)
    order = None
    for node in fn.body:
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in ("prompt_state", "prompt_state_all") and isinstance(node.value, ast.List)):
            order = [e.id for e in node.value.elts]
    return {"templates": lists["prompt_templates"], "groups": [{"name": n, "states": lists[n]} for n in order]}


def recorded(mod):
    """The prompts mod.encode_text_with_prompt_ensemble builds for object '{}', per group."""
    import torch
    groups = []

    def tok(texts):
        groups.append(list(texts))
        return torch.zeros(len(texts), 77, dtype=torch.long)

    class M:
        def encode_text(self, t):
            return torch.ones(t.shape[0], 2)

    mod.encode_text_with_prompt_ensemble(M(), ["{}"], tok, "cpu")
    return groups


def imports(path):
    """dataset suffix -> prompts module of `from prompts.X import encode_text_with_prompt_ensemble
    as encode_text_with_prompt_ensemble_<suffix>`."""
    out = {}
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prompts."):
            for a in node.names:
                if a.asname and a.asname.startswith("encode_text_with_prompt_ensemble_"):
                    out[a.asname[len("encode_text_with_prompt_ensemble_"):]] = node.module[len("prompts."):]
    return out


def tables(repo):
    """prompts.json: every ensemble and the tables the scheme reads, verbatim."""
    files = {}
    for fn in sorted(os.listdir(os.path.join(repo, "prompts"))):
        if fn.endswith(".py") and fn != "__init__.py":
            name = fn[:-3]
            e = ensemble(os.path.join(repo, "prompts", fn))
            gen = [[t.format(s.format("{}")) for s in g["states"] for t in e["templates"]] for g in e["groups"]]
            if gen != recorded(importlib.import_module("prompts." + name)):
                sys.exit(f"reference: prompts/{fn}: the ast reading differs from the prompts the function builds")
            files[name] = e
    md = ast.parse(open(os.path.join(repo, "test_multi_defect.py")).read())
    per_object = {k[len("product_type2defect_type_"):]: v for k, v in literal_assigns(md.body).items()
                  if k.startswith("product_type2defect_type_")}
    meta_fn = next(n for n in md.body if isinstance(n, ast.FunctionDef) and n.name == "get_dataset_meta")
    defects = {}
    for node in meta_fn.body:
        if isinstance(node, ast.If):
            defects[node.test.comparators[0].value] = literal_assigns(node.body)["defects"]
    specie2id = {k[:-len("_SPECIE2ID")].lower(): v for k, v in
                 literal_assigns(ast.parse(open(os.path.join(repo, "dataset.py")).read()).body).items()
                 if k.endswith("_SPECIE2ID")}
    tr = ast.parse(open(os.path.join(repo, "train.py")).read())
    train_fn = next(n for n in tr.body if isinstance(n, ast.FunctionDef) and n.name == "train")
    gt = [ast.literal_eval(n.value) for n in ast.walk(train_fn) if isinstance(n, ast.Assign)
          and isinstance(n.targets[0], ast.Name) and n.targets[0].id == "gt_defect"]
    by_ds = lambda m: {DATASETS[k]: v for k, v in m.items() if k in DATASETS}
    return {
        "_source": f"the prompt ensembles of MultiADS' prompts/*.py and the tables of test.py, test_multi_defect.py, "
                   f"train.py and dataset.py (https://github.com/{REPO}/tree/{COMMIT}), verbatim; written by "
                   "testdata/reference.py",
        "files": files,
        "test": by_ds(imports(os.path.join(repo, "test.py"))),
        "multi": by_ds(imports(os.path.join(repo, "test_multi_defect.py"))),
        "train": by_ds(imports(os.path.join(repo, "train.py"))),
        "defects": by_ds(defects),
        "per_object": by_ds(per_object),
        "specie2id": by_ds({"mvtec": specie2id["mvtec"], "visa": specie2id["visa"], "mpdd": specie2id["mpdd"],
                            "mad_sim": specie2id["mad_sim"], "mad_real": specie2id["mad_real"],
                            "real_iad": specie2id["real_iad"]}),
        # train.py's if-chain assigns gt_defect for mvtec, visa, mpdd, real_iad in this order
        "train_gt_defect": by_ds(dict(zip(["mvtec", "visa", "mpdd", "real_iad"], gt))),
    }


# ----------------------------------------------------------------------------- main

class Stop(Exception):
    """Ends test() once its results are read (the metrics of a few images are not needed)."""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("official", help=f"checkout of {REPO}@{COMMIT}")
    ap.add_argument("inputs", help="folder written by go test ./baselines/multiads -run OfficialParity -official-inputs")
    ap.add_argument("out", nargs="?", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--allow-unpinned", action="store_true")
    opt = ap.parse_args()
    repo, inputs, out = (os.path.abspath(p) for p in (opt.official, opt.inputs, opt.out))
    os.makedirs(out, exist_ok=True)
    pinned = check_pinned(repo, opt.allow_unpinned)
    used = []
    if install_ftfy_standin():
        used.append("ftfy")
    sys.path.insert(0, repo)
    import torch
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="multiads-reference-")
    cwd = os.getcwd()
    try:
        cfg, wmeta = state_dict_file(inputs, tmp)
        os.chdir(tmp)  # the factory reads the weights from a path named like the model
        import open_clip
        open_clip.add_model_config(cfg)
        import dataset as dataset_mod

        class VisaDatasetV2:  # noqa: N801 (train.py:20 imports it; dataset.py comments it out)
            def __init__(self, *a, **k):
                raise RuntimeError("VisaDatasetV2 is not defined in MultiADS dataset.py at this commit")

        dataset_mod.VisaDatasetV2 = VisaDatasetV2
        import test as test_mod
        import train as train_mod
        train_mod.re = re
        used.append("train_imp")
        prompts = tables(repo)
        roots = {ds: os.path.join(inputs, "fixtures", ds) for ds in ("mvtec", "visa")}
        tensors, ref = {}, {
            "official": {"repo": REPO, "commit": COMMIT, "checkout_matches_pin": pinned},
            "torch": torch.__version__, "model": NAME, "image_size": wmeta["image_size"],
            "features_list": LAYERS, "weights_digest": wmeta["digest"], "map_sample": SAMPLE,
            "files_sha256": {}, "patches": {}, "test": {}}
        for ds, root in roots.items():
            ref["files_sha256"][ds] = {}
            for recs in json.load(open(os.path.join(root, "meta.json")))["test"].values():
                for r in recs:
                    for rel in (r["img_path"], r["mask_path"]):
                        if rel:
                            ref["files_sha256"][ds][rel] = sha256(os.path.join(root, rel))

        # ---- training (train.py __main__: setup_seed(args.seed), train(args))
        data = roots["mvtec"]
        ck = os.path.join(tmp, "ckpt")
        targs = argparse.Namespace(train_data_path=data, save_path=ck, config_path=cfg, dataset="mvtec",
                                   model=NAME, pretrained="openai", features_list=LAYERS, epoch=1,
                                   learning_rate=0.001, batch_size=2, image_size=wmeta["image_size"],
                                   aug_rate=-1.0, print_freq=1, save_freq=1, seed=42)
        steps = []

        def state(fr):
            return {k: v.detach().clone() for k, v in fr.f_locals["trainable_layer"].state_dict().items()}

        def on_init(fr):
            torch.save({"trainable_linearlayer": state(fr)}, os.path.join(out, "init.pth"))

        def on_masks(fr):
            # train_multi_seg.py:202-208, verbatim but for the names it binds.
            L = fr.f_locals
            items, cls_id, device = L["items"], L["cls_id"], L["device"]
            gt = items['img_mask'].to(device)
            gt_b = gt.clone()
            for i in range(gt.size(0)):
                gt[i][gt[i] > 0.5], gt[i][gt[i] <= 0.5] = cls_id[i], 0
                gt_b[i][gt_b[i] > 0.5], gt_b[i][gt_b[i] <= 0.5] = 1, 0
            gt = gt.long()
            train_mod.img_mask = gt
            train_mod.img_mask_b = gt_b

        def on_step(fr):
            L = fr.f_locals
            maps, gt, gt_b = L["anomaly_maps"], train_mod.img_mask, train_mod.img_mask_b
            with torch.no_grad():
                per = [{"focal": float(L["loss_focal"](m, gt)),
                        "dice": float(L["loss_dice"](torch.sum(m[:, 1:, :, :], dim=1), gt_b))} for m in maps]
            steps.append({"img_path": [os.path.relpath(p, data) for p in L["items"]["img_path"]],
                          "cls_id": [int(c) for c in L["cls_id"]], "loss": float(L["loss"].item()), "per_layer": per,
                          "defect_pixels": [int(g.sum()) for g in gt_b]})

        def on_after(fr):
            k = len(steps)
            if k in (1, 3):
                for key, v in state(fr).items():
                    i, kind = re.match(r"fc\.(\d+)\.(weight|bias)$", key).groups()
                    tensors[f"train/step{k}/adapter.{i}.{kind}"] = f32(v)

        T = train_mod.train
        h = (Hooks().at(T, 131, "optimizer = torch.optim.Adam", on_init)
             .at(T, 199, "loss = 0.0", on_masks)
             .at(T, 207, "optimizer.zero_grad()", on_step)
             .at(T, 210, "loss_list.append(loss.item())", on_after))
        train_mod.setup_seed(targs.seed)
        with h:
            T(targs)
        shutil.copyfile(os.path.join(ck, "epoch_1.pth"), os.path.join(out, "epoch_1.pth"))
        ref["train"] = {"seed": targs.seed, "batch": 2, "lr": 0.001, "aug_rate": -1.0, "epochs": 1, "steps": steps,
                        "init": "init.pth", "checkpoint": "epoch_1.pth"}

        # ---- zero-shot test on both datasets (test.py __main__: setup_seed(args.seed), test(args))
        class MVTecDatasetB(test_mod.MVTecDataset):
            def __init__(self, root, transform, target_transform, target_transform_type=None, aug_rate=-1, mode="test", **kw):
                super().__init__(root, transform, target_transform, aug_rate, mode=mode, **kw)

            def __getitem__(self, index):
                item = super().__getitem__(index)
                gt = item["img_mask"]
                if torch.is_tensor(gt) and gt.ndim == 3 and gt.shape[0] == 1:
                    gt = gt.squeeze(0)
                item["img_mask_b"] = (gt > 0.5).float()
                return item

        S, E = test_mod.test, test_mod.evaluate_one_object
        for ds, root in roots.items():
            images, captured = [], {}

            def on_text(fr, ds=ds):
                for cls, tf in fr.f_locals["text_prompts"].items():
                    tensors[f"text/{ds}/{cls}"] = f32(tf)

            def on_image(fr, images=images, root=root):
                L = fr.f_locals
                images.append({"img_path": os.path.relpath(L["items"]["img_path"][0], root),
                               "cls_name": L["cls_name"][0], "label": int(L["items"]["anomaly"].item())})

            def on_probs(fr, images=images):
                images[-1]["softmax_probs"] = f32(fr.f_locals["text_probs"][0]).tolist()

            def on_final(fr, images=images, ds=ds):
                m = fr.f_locals["anomaly_map"][0]
                i = len(images) - 1
                tensors[f"test/{ds}/{i}/map"] = sampled(m)
                images[i].update({"map_sum": float(np.sum(f32(m), dtype=np.float64)), "map_max": float(np.max(m)),
                                  "top3_mean": top3(m)})

            def on_results(fr, captured=captured):
                captured["results"] = fr.f_locals["results"]
                raise Stop()

            h = (Hooks().at(S, 294, "results = {}", on_text)
                 .at(S, 316, "image_features /= image_features.norm", on_image)
                 .at(S, 328, "patch_tokens = linearlayer(patch_tokens)", on_probs)
                 .at(S, 387, "results['anomaly_maps'].append(anomaly_map)", on_final)
                 .at(S, 404, "table_ls = []", on_results))
            sargs = argparse.Namespace(data_path=root, save_path=os.path.join(tmp, "test_" + ds),
                                       checkpoint_path=os.path.join(ck, "epoch_1.pth"), config_path=cfg, dataset=ds,
                                       model=NAME, pretrained="openai", features_list=LAYERS, few_shot_features=LAYERS,
                                       image_size=wmeta["image_size"], mode="zero_shot", k_shot=10, quantile=0.0001,
                                       seed=42, visualization=False)
            orig = test_mod.MVTecDataset
            if ds == "mvtec":
                test_mod.MVTecDataset = MVTecDatasetB
                if "mvtec_ds" not in used:
                    used.append("mvtec_ds")
            test_mod.setup_seed(sargs.seed)
            try:
                with h:
                    S(sargs)
            except Stop:
                pass
            finally:
                test_mod.MVTecDataset = orig
            res = captured["results"]
            final = {}
            hook = Hooks().at(E, 141, "auroc_px = roc_auc_score", lambda fr: final.__setitem__(
                fr.f_locals["obj"], f32(fr.f_locals["pr_sp"]).tolist()))
            for obj in dict.fromkeys(res["cls_names"]):
                with hook:
                    try:
                        E(obj, res)
                    except Exception:  # metrics of three images may fail after line 141
                        pass
            seen = {}
            for i, c in enumerate(res["cls_names"]):
                j = seen.get(c, 0)
                seen[c] = j + 1
                images[i]["softmax_score"] = float(res["pr_sp"][i])  # sum(softmax[1:]), test.py:325
                images[i]["image_score"] = float(final[c][j])         # min-max of the top-3 means, test.py:122-139
            ref["test"][ds] = {"seed": sargs.seed, "checkpoint": "epoch_1.pth", "images": images}
        ref["patches"] = {k: PATCHES[k] for k in used}
        write_safetensors(os.path.join(out, "reference.safetensors"), tensors)
        with open(os.path.join(out, "reference.json"), "w") as f:
            json.dump(ref, f, indent=1)
            f.write("\n")
        with open(os.path.join(os.path.dirname(out), "prompts.json"), "w") as f:
            json.dump(prompts, f, indent=1)
            f.write("\n")
        print("reference: wrote", out)
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
