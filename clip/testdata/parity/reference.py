#!/usr/bin/python3
"""Reference forward passes of the CLIP towers in numpy, for parity_test.go.

Written from docs/methods.md#clip-parity and docs/methods.md#clip-variants
(and the sections they link to) and the structure of the official PyTorch
code those sections describe (open_clip's
VisionTransformer/TextTransformer as modified by DAPO, AnomalyCLIP's DPAM
blocks and compound prompts), in float64, without reference to the Go graph
builder. Inputs and weights come from the files the Go test writes:

    weights.safetensors          tiny CLIP weights (OpenAI key names), seed 1
    <variant>.model.json         the model directory's manifest (sizes, layers)
    <variant>.inputs.safetensors pixels, prompts, token embeddings, EOT indices

and the outputs go to <variant>.expected.safetensors.

The positional-embedding resize uses PIL's bicubic resampling of float
("F") images for open_clip's antialiased bicubic interpolate, and
scipy.ndimage.zoom (order 1, grid mode) for PyTorch's bilinear
align_corners=False.

Usage: cd clip/testdata/parity && /usr/bin/python3 reference.py VARIANT
(`go test ./clip -run Parity -update` runs it for every variant.)
"""
import json
import struct
import sys

import numpy as np
import scipy.ndimage
import scipy.special
from PIL import Image

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}


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
        lo, hi = e["data_offsets"]
        out[name] = np.frombuffer(data[lo:hi], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype=np.float32)
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


class Model:
    def __init__(self, weights, manifest):
        self.w = {k: v.astype(np.float64) for k, v in weights.items()}
        self.m = manifest
        self.arch = manifest["arch"]

    # -- building blocks (torch semantics) ---------------------------------
    def layer_norm(self, x, name):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-5) * self.w[name + ".weight"] + self.w[name + ".bias"]

    def act(self, x):
        if self.arch["act"] == "quick_gelu":
            return x * (1.0 / (1.0 + np.exp(-1.702 * x)))
        return 0.5 * x * (1.0 + scipy.special.erf(x / np.sqrt(2.0)))

    def linear(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def split_heads(self, t, heads):
        n, l, c = t.shape
        return t.reshape(n, l, heads, c // heads).transpose(0, 2, 1, 3)

    def mha(self, x, prefix, heads, mask=None, vv=False):
        """nn.MultiheadAttention(x, x, x) on batch-first x; with vv also
        AnomalyCLIP's Attention V-V output (q = k = v)."""
        n, l, c = x.shape
        qkv = x @ self.w[prefix + "attn.in_proj_weight"].T + self.w[prefix + "attn.in_proj_bias"]
        q, k, v = np.split(qkv, 3, axis=-1)
        q, k, v = (self.split_heads(t, heads) for t in (q, k, v))
        scale = (c // heads) ** -0.5

        def attend(a, b, vals):
            s = (a @ b.transpose(0, 1, 3, 2)) * scale
            if mask is not None:
                s = s + mask
            s = s - s.max(-1, keepdims=True)
            p = np.exp(s)
            p = p / p.sum(-1, keepdims=True)
            o = (p @ vals).transpose(0, 2, 1, 3).reshape(n, l, c)
            return o @ self.w[prefix + "attn.out_proj.weight"].T + self.w[prefix + "attn.out_proj.bias"]

        ori = attend(q, k, v)
        if not vv:
            return ori
        return ori, attend(v, v, v)

    def resblock(self, x, prefix, heads, mask=None):
        x = x + self.mha(self.layer_norm(x, prefix + "ln_1"), prefix, heads, mask)
        h = self.act(self.linear(self.layer_norm(x, prefix + "ln_2"), prefix + "mlp.c_fc"))
        return x + self.linear(h, prefix + "mlp.c_proj")

    def mlp(self, x, prefix):
        h = self.act(self.linear(self.layer_norm(x, prefix + "ln_2"), prefix + "mlp.c_fc"))
        return self.linear(h, prefix + "mlp.c_proj")

    # -- vision -------------------------------------------------------------
    def pos_embed(self):
        pos = self.w["visual.positional_embedding"]
        g0 = int(round((pos.shape[0] - 1) ** 0.5))
        g1 = self.m["grid"]
        if g0 == g1:
            return pos
        grid = pos[1:].reshape(g0, g0, -1)
        if self.m["pos_resize"] == "bicubic-antialias":
            chans = []
            for c in range(grid.shape[-1]):
                im = Image.fromarray(grid[:, :, c].astype(np.float32), mode="F")
                chans.append(np.asarray(im.resize((g1, g1), Image.BICUBIC), dtype=np.float64))
            new = np.stack(chans, -1)
        elif self.m["pos_resize"] == "bilinear":
            new = scipy.ndimage.zoom(grid, (g1 / g0, g1 / g0, 1), order=1, grid_mode=True, mode="nearest")
        else:
            raise ValueError(self.m["pos_resize"])
        return np.concatenate([pos[:1], new.reshape(g1 * g1, -1)], 0)

    def embed(self, pixels):
        """conv1 → flatten → CLS → + positional embedding (before ln_pre)."""
        w = self.w["visual.conv1.weight"]  # [width, 3, p, p]
        p = w.shape[-1]
        g = self.m["grid"]
        x = pixels[:, :, :g * p, :g * p].astype(np.float64)
        n = x.shape[0]
        # conv with kernel = stride = p, written as a sum over kernel taps
        out = np.zeros((n, w.shape[0], g, g))
        for dy in range(p):
            for dx in range(p):
                patch = x[:, :, dy::p, dx::p][:, :, :g, :g]  # [n, 3, g, g]
                out += np.einsum("ncyx,oc->noyx", patch, w[:, :, dy, dx])
        tokens = out.reshape(n, w.shape[0], g * g).transpose(0, 2, 1)
        cls = np.broadcast_to(self.w["visual.class_embedding"], (n, 1, w.shape[0]))
        return np.concatenate([cls, tokens], 1) + self.pos_embed()

    def vision(self, pixels, visual_prompts=None):
        a, m = self.arch, self.m
        heads, layers = a["vision_heads"], a["vision_layers"]
        feats = set(m["feature_layers"])
        out = {}
        emb = self.embed(pixels)
        if m["variant"] == "winclip":
            out["tokens"] = emb
        x = self.layer_norm(emb, "visual.ln_pre")
        pre = lambda i: "visual.transformer.resblocks.%d." % i

        if m["variant"] == "dapo":
            # open_clip Transformer.forward, DAPO's visual branch (docs/methods.md#dapo-visual-prompts)
            n = x.shape[0]
            num = visual_prompts.shape[1]
            hidden = None
            for i in range(layers):
                if i == 0:
                    hidden = np.concatenate([x[:, :1], np.broadcast_to(visual_prompts[0], (n,) + visual_prompts[0].shape), x[:, 1:]], 1)
                elif i <= visual_prompts.shape[0] - 1:
                    learnable = 0.01 * hidden[:, 1:num + 1] + 0.99 * visual_prompts[i]
                    hidden = np.concatenate([hidden[:, :1], learnable, hidden[:, 1 + num:]], 1)
                hidden = self.resblock(hidden, pre(i), heads)
                if i + 1 in feats:
                    # [CLS] + patches without the prompts; the graph drops CLS too
                    # (docs/methods.md#dapo-patch-tokens)
                    kept = np.concatenate([hidden[:, :1], hidden[:, 1 + num:]], 1)
                    out["patch_%d" % (i + 1)] = kept[:, 1:]
            pooled = self.layer_norm(hidden[:, 0], "visual.ln_post")
            out["image_embed"] = pooled @ self.w["visual.proj"]
            return out

        if m["variant"] == "anomalyclip":
            # AnomalyCLIP VisionTransformer with DAPM_replace (docs/methods.md#anomalyclip-dpam):
            # the last dpam_layers blocks run the dual path.
            dpam_from = layers - m["dpam_layers"]
            for i in range(layers):
                if i < dpam_from:
                    x = self.resblock(x, pre(i), heads)
                elif not isinstance(x, list):  # start of the dual path
                    ori, vv = self.mha(self.layer_norm(x, pre(i) + "ln_1"), pre(i), heads, vv=True)
                    x_ori = x + ori
                    x_ori = x_ori + self.mlp(x_ori, pre(i))
                    x = [x + vv, x_ori]
                else:
                    x_vv, x_ori = x
                    ori, vv = self.mha(self.layer_norm(x_ori, pre(i) + "ln_1"), pre(i), heads, vv=True)
                    x_ori = x_ori + ori
                    x_ori = x_ori + self.mlp(x_ori, pre(i))
                    x = [x_vv + vv, x_ori]
                if i + 1 in feats:
                    tok = x[0] if isinstance(x, list) else x
                    out["patch_%d" % (i + 1)] = self.layer_norm(tok, "visual.ln_post") @ self.w["visual.proj"]
            x_ori = x[1] if isinstance(x, list) else x
            out["image_embed"] = x_ori[:, 0] @ self.w["visual.proj"]
            return out

        # plain CLIP (APRIL-GAN style raw block outputs) and WinCLIP's full image
        for i in range(layers):
            x = self.resblock(x, pre(i), heads)
            if i + 1 in feats:
                out["patch_%d" % (i + 1)] = x
        out["image_embed"] = self.layer_norm(x[:, 0], "visual.ln_post") @ self.w["visual.proj"]
        return out

    def window(self, tokens):
        """WinCLIP: token subset → ln_pre → transformer → ln_post(CLS) → proj."""
        x = self.layer_norm(tokens, "visual.ln_pre")
        for i in range(self.arch["vision_layers"]):
            x = self.resblock(x, "visual.transformer.resblocks.%d." % i, self.arch["vision_heads"])
        return self.layer_norm(x[:, 0], "visual.ln_post") @ self.w["visual.proj"]

    # -- text ---------------------------------------------------------------
    def text(self, embeds, eot, deep=None):
        a, m = self.arch, self.m
        heads, layers = a["text_heads"], a["text_layers"]
        ctx = a["context_length"]
        pre = lambda i: "transformer.resblocks.%d." % i
        x = embeds.astype(np.float64) + self.w["positional_embedding"]
        n = x.shape[0]
        causal = np.triu(np.full((ctx, ctx), -np.inf), 1)

        if m["variant"] == "dapo":
            # encode_learn_prompts: no attention mask; deep tokens inserted at
            # block 0 and blended before the later ones (docs/methods.md#dapo-deep-text-prompts)
            length = 4
            counter = 0
            for i in range(layers):
                if i == 0:
                    x = np.concatenate([x[:, :1], np.broadcast_to(deep[counter], (n,) + deep[counter].shape), x[:, 1:]], 1)
                elif counter <= len(deep) - 1:
                    new = 0.01 * x[:, 1:length + 1] + 0.99 * deep[counter]
                    x = np.concatenate([x[:, :1], new, x[:, 1 + length:]], 1)
                counter += 1
                x = self.resblock(x, pre(i), heads, mask=None)
        elif m["variant"] == "anomalyclip":
            # ResidualAttentionBlock_learnable_token: from the second block on,
            # positions 1..4 are overwritten by compound[counter].half()
            nctx = 4
            counter = 0
            for i in range(layers):
                if i > 0 and not counter > len(deep) - 1:
                    ctxt = np.broadcast_to(deep[counter].astype(np.float16).astype(np.float64), (n, nctx, deep.shape[-1]))
                    x = np.concatenate([x[:, :1], ctxt, x[:, 1 + nctx:]], 1)
                    counter += 1
                x = self.resblock(x, pre(i), heads, mask=causal)
        else:
            for i in range(layers):
                x = self.resblock(x, pre(i), heads, mask=causal)
        x = self.layer_norm(x, "ln_final")
        # argmax of the 77-token template, applied to the (possibly 81-token) output
        return x[np.arange(n), eot] @ self.w["text_projection"]


def main():
    variant = sys.argv[1]
    weights = read_safetensors("weights.safetensors")
    with open(variant + ".model.json") as f:
        manifest = json.load(f)
    ins = read_safetensors(variant + ".inputs.safetensors")
    model = Model(weights, manifest)
    vp = ins.get("visual_prompts")
    out = model.vision(ins["pixels"], None if vp is None else vp.astype(np.float64))
    deep = ins.get("deep_tokens")
    out["text_features"] = model.text(ins["embeds"], ins["eot_index"], None if deep is None else deep.astype(np.float64))
    if variant == "winclip":
        for name in ("window2", "window3"):
            idx = ins[name]
            sub = out["tokens"][:, idx]  # [batch, windows, L, width]
            out[name] = model.window(sub.reshape((-1,) + sub.shape[2:]))
    write_safetensors(variant + ".expected.safetensors", out)


if __name__ == "__main__":
    main()
