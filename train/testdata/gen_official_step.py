#!/usr/bin/python3
"""One training step of the official DAPO trainer, for train's TestOfficialStep.

Runs the official code of https://github.com/boschresearch/defect-aware-prompt-optimization
(train.py, dataset.py, loss.py, learnable_prompt.py, visual_prompt_tuning.py,
adapter.py and its open_clip) unchanged, on PyTorch's CPU in float32:

  1. train.py's set_seed(42) and create_model_components(args) build the model
     and the learned modules. The CLIP is a tiny one with ViT-L/14's depth
     (arch.json: 24 vision and 12 text blocks, widths 32) registered as an
     open_clip model config; its weights (weights.safetensors, clip.TinyWeights
     written by the Go test) are loaded by open_clip's own load_checkpoint
     through the `pretrained` path argument. The learned tensors are drawn by
     the official modules from torch's generator.
  2. The official Trainer writes them with its save_checkpoint() before the
     first step (epoch_0.pth, the official checkpoint format): the Go test
     imports that file and starts from it, so both sides start from the same
     tensors.
  3. train.py's create_data_loaders reads the fixture images (64x48, resized
     to 32x32) through the official Dataset with batch = all images, and the
     Trainer's train_epoch() runs one step: loss, backward, Adam.

It does this twice, once per mask reading:

  truncate   the official trainer as it is: train.py casts the resized float
             mask to torch.long before thresholding it (train.py line 197), so
             only pixels whose resized level is 255 are defect.
  threshold  the same trainer fed masks already thresholded at 0.5 (a
             Lambda appended to the official target_transform, nothing else
             changed), i.e. the reading of AnomalyCLIP's trainer and of every
             evaluation.

Recorded: the losses (total, local = 4 * sum of terms, image cross-entropy,
and the unweighted sums of the focal and dice terms over the 4 feature
layers, taken from the official loss modules as the trainer calls them), the
binary mask of each image as the trainer read it (the target of its anomaly
dice term), the gradients of all 12 learned tensors and the tensors after
Adam's first step, under the canonical names of package checkpoints.

Nothing is changed in the official code. One import is satisfied without its
package: `ftfy` (not packaged by Debian), whose fix_text open_clip's
tokenizer calls, by the identity, which is what ftfy does to the plain-ASCII
prompts DAPO tokenizes. The data loader's shuffle only orders the one batch.

Needs Debian's python3-torch (1.13), python3-torchvision, python3-regex,
python3-opencv (imported by dataset.py), python3-pil, python3-numpy.

Usage (from the repository root):

  go test ./train -run OfficialStep -official-inputs /tmp/dapo-step
  /usr/bin/python3 train/testdata/gen_official_step.py OFFICIAL_DAPO_REPO /tmp/dapo-step train/testdata

OFFICIAL_DAPO_REPO is a checkout of the official repository (the commit used
is recorded; give --commit when the folder is not a git checkout). Writes
official_step.json, official_step.safetensors and official_init.pth into the
last folder.
"""
import argparse
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import types

import numpy as np

READINGS = ("truncate", "threshold")
OFFICIAL_FILES = ["train.py", "dataset.py", "loss.py", "learnable_prompt.py", "visual_prompt_tuning.py",
                  "adapter.py", "open_clip/model.py", "open_clip/transformer.py", "open_clip/factory.py"]


def read_safetensors(path):
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    data = buf[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        lo, hi = e["data_offsets"]
        out[name] = np.frombuffer(data[lo:hi], dtype=dtypes[e["dtype"]]).reshape(e["shape"]).copy()
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        b = np.ascontiguousarray(tensors[name], dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("official", help="checkout of boschresearch/defect-aware-prompt-optimization")
    ap.add_argument("inputs", help="folder written by go test ./train -run OfficialStep -official-inputs")
    ap.add_argument("out", nargs="?", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--commit", help="commit of the official checkout (default: git rev-parse HEAD)")
    opt = ap.parse_args()
    os.makedirs(opt.out, exist_ok=True)

    commit = opt.commit
    if commit is None:
        commit = subprocess.run(["git", "-C", opt.official, "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True).stdout.strip()

    try:
        import ftfy  # noqa: F401
    except ImportError:
        sys.modules["ftfy"] = types.SimpleNamespace(fix_text=lambda s: s)
    sys.path.insert(0, os.path.abspath(opt.official))
    import PIL
    import torch
    import torchvision
    from torch.utils.data import DataLoader
    from torchvision import transforms

    import open_clip
    import train as official
    from dataset import Dataset
    from loss import BinaryDiceLoss, FocalLoss

    torch.set_num_threads(1)
    arch = json.load(open(os.path.join(opt.inputs, "arch.json")))
    samples = json.load(open(os.path.join(opt.inputs, "samples.json")))
    root = os.path.join(opt.inputs, "mvtec")
    tmp = tempfile.mkdtemp(prefix="dapo-official-step-")
    try:
        # The architecture as an open_clip model config; the weights as the
        # torch file open_clip's load_checkpoint reads (logit_scale, unused
        # by training, at CLIP's initial value).
        name = arch["name"] + "-quickgelu"
        configs = os.path.join(tmp, "configs")
        os.makedirs(configs)
        assert arch["act"] == "quick_gelu"
        cfg = {"embed_dim": arch["embed_dim"], "quick_gelu": True,
               "vision_cfg": {"image_size": arch["image_size"], "layers": arch["vision_layers"], "width": arch["vision_width"],
                              "head_width": arch["vision_width"] // arch["vision_heads"], "patch_size": arch["patch_size"]},
               "text_cfg": {"context_length": arch["context_length"], "vocab_size": arch["vocab_size"],
                            "width": arch["text_width"], "heads": arch["text_heads"], "layers": arch["text_layers"]}}
        with open(os.path.join(configs, name + ".json"), "w") as f:
            json.dump(cfg, f)
        open_clip.add_model_config(configs)
        weights = os.path.join(opt.inputs, "weights.safetensors")
        sd = {k: torch.from_numpy(v) for k, v in read_safetensors(weights).items()}
        sd["logit_scale"] = torch.tensor(np.log(1 / 0.07), dtype=torch.float32)
        pt = os.path.join(tmp, "weights.pt")
        torch.save(sd, pt)

        # train.py's arguments: its defaults, at the tiny model's size, one
        # batch of every image, one epoch.
        args = argparse.Namespace(
            pretrained=pt, model_name=name, image_size=arch["image_size"], dataset="mvtec",
            train_data_path=root, model_configs=configs,
            depth=24, prefix_token_cnt=4, feature_layers=[6, 12, 18, 24],
            text_depth=12, normal_token_cnt=5, abnormal_token_cnt=5, prompt_count=10, layer_token_cnt=4,
            epoch=1, learning_rate=0.001, batch_size=len(samples), seed=42,
            checkpoint_dir=os.path.join(tmp, "checkpoint"), checkpoint_interval=1, resume=None)
        assert args.depth == arch["vision_layers"] and args.text_depth == arch["text_layers"]

        # dataset.py reads meta.json: the official layout of the samples.
        meta = {"train": {}, "test": {}}
        for s in samples:
            cls, _, specie = s["image"].split("/")[:3]
            meta["test"].setdefault(cls, []).append({
                "img_path": s["image"], "mask_path": s["mask"], "cls_name": cls, "specie_name": specie,
                "anomaly": 0 if specie == "good" else 1})
        with open(os.path.join(root, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)

        results, init_sha, init_state = {}, None, None
        for reading in READINGS:
            official.set_seed(args.seed)
            comps = official.create_model_components(args)
            loader = official.create_data_loaders(args, comps["preprocessor"])["train_loader"]
            if reading == "threshold":
                target = transforms.Compose([
                    transforms.Resize((args.image_size, args.image_size)),
                    transforms.CenterCrop(args.image_size),
                    transforms.ToTensor(),
                    transforms.Lambda(lambda m: (m > 0.5).to(m.dtype)),
                ])
                data = Dataset(root=root, transform=comps["preprocessor"], target_transform=target,
                               dataset_name="mvtec", mode="test", k_shot=0)
                loader = DataLoader(data, batch_size=args.batch_size, shuffle=True)
            assert len(loader) == 1

            rec = Recorder()
            losses = {"focal_loss": rec.wrap("focal", FocalLoss()), "dice_loss": rec.wrap("dice", BinaryDiceLoss())}
            tap = Tap(loader)
            trainer = official.Trainer(args, comps, {"train_loader": tap}, losses, args.checkpoint_dir)
            trainer.save_checkpoint()  # epoch_0.pth: the initial tensors
            path = os.path.join(args.checkpoint_dir, "epoch_0.pth")
            state = learned(comps, grads=False)
            if init_sha is None:
                shutil.copyfile(path, os.path.join(opt.out, "official_init.pth"))
                init_sha, init_state = sha256(path), state
            for k in state:
                assert np.array_equal(state[k], init_state[k]), f"{reading}: initial {k} differs between runs"

            local, image = trainer.train_epoch()
            grads = learned(comps, grads=True)
            after = learned(comps, grads=False)

            # The masks the trainer read: the target of the anomaly dice
            # term (dice calls alternate normal, anomaly) of the first layer.
            (batch,) = tap.batches
            gt_b = rec.args["dice"][1][1]
            masks = {}
            for i, p in enumerate(batch["img_path"]):
                rel = os.path.relpath(p, root).replace(os.sep, "/")
                m = gt_b[i].reshape(-1).numpy()
                assert set(np.unique(m)) <= {0, 1}
                masks[rel] = "".join("1" if v else "0" for v in m)
            assert len(rec.values["focal"]) == 4 and len(rec.values["dice"]) == 8
            results[reading] = {
                "loss": float(np.float32(local) + np.float32(image)),
                "loss_local": float(local), "loss_image": float(image),
                "loss_focal": float(sum(rec.values["focal"])), "loss_dice": float(sum(rec.values["dice"])),
                "defect_pixels": {k: v.count("1") for k, v in masks.items()},
                "masks": masks,
                "grads": grads, "after": after,
            }
            print(f"{reading}: loss {results[reading]['loss']:.8g} (local {local:.8g}, image {image:.8g}), "
                  f"defect pixels {results[reading]['defect_pixels']}", file=sys.stderr)

        files = {}
        for s in samples:
            for rel in (s["image"], s["mask"]):
                if rel:
                    files[rel] = sha256(os.path.join(root, rel))
        tensors = {}
        for reading, r in results.items():
            for kind in ("grads", "after"):
                for k, v in r.pop(kind).items():
                    tensors[f"{kind[:-1] if kind == 'grads' else kind}/{reading}/{k}"] = v
        write_safetensors(os.path.join(opt.out, "official_step.safetensors"), tensors)
        ref = {
            "note": "written by gen_official_step.py from the official DAPO train.py; do not edit",
            "official": {"repo": "boschresearch/defect-aware-prompt-optimization", "commit": commit,
                         "files_sha256": {f: sha256(os.path.join(opt.official, f)) for f in OFFICIAL_FILES}},
            "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__, "pillow": PIL.__version__,
                         "numpy": np.__version__},
            "inputs": {"weights_sha256": sha256(weights), "files_sha256": files},
            "init": {"file": "official_init.pth", "sha256": init_sha},
            "image_size": args.image_size, "batch": args.batch_size, "lr": args.learning_rate, "seed": args.seed,
            "readings": results,
        }
        with open(os.path.join(opt.out, "official_step.json"), "w") as f:
            json.dump(ref, f, indent=1, sort_keys=True)
            f.write("\n")
    finally:
        shutil.rmtree(tmp)


class Recorder:
    """Keeps the value and the arguments of every call of the loss modules."""

    def __init__(self):
        self.values, self.args = {}, {}

    def wrap(self, key, module):
        import torch

        rec = self
        rec.values[key], rec.args[key] = [], []

        class Wrapped(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = module

            def forward(self, *a):
                v = self.inner(*a)
                rec.values[key].append(float(v.detach()))
                rec.args[key].append([x.detach().clone() for x in a])
                return v

        return Wrapped()


class Tap:
    """Iterates a data loader and keeps the batches it gave."""

    def __init__(self, loader):
        self.loader, self.batches = loader, []

    def __iter__(self):
        for b in self.loader:
            self.batches.append(b)
            yield b

    def __len__(self):
        return len(self.loader)


def learned(comps, grads):
    """The learned tensors (or their gradients) under package checkpoints' names."""
    pl, vp, ad = comps["prompt_learner"], comps["visual_prompt"], comps["trainable_adapter"]

    def get(p):
        if not grads:
            return p.detach().numpy().copy()
        if p.grad is None:
            return np.zeros(tuple(p.shape), dtype=np.float32)
        return p.grad.detach().numpy().copy()

    out = {
        "normal_ctx": get(pl.learnable_normal_tokens),
        "abnormal_ctx": get(pl.learnable_abnormal_tokens),
        "text_deep": np.stack([get(p) for p in pl.learnable_layer_tokens]),
        "visual_prompts": get(vp.learnable_visual_tokens),
    }
    for i, fc in enumerate(ad.fc):
        out[f"adapter.{i}.weight"] = get(fc.weight)
        out[f"adapter.{i}.bias"] = get(fc.bias)
    return out


if __name__ == "__main__":
    main()
