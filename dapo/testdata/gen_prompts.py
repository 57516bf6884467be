#!/usr/bin/env python3
"""Reference values for DAPO's prompt assembly (docs/methods.md#dapo-prompt-assembly).

Tokenizes the DAPO templates of every vocabulary word with the reference
tokenizer re-implementation in clip/tokenizer/testdata/gen_vectors.py
(OpenAI's simple_tokenizer algorithm), records the token ids and the
end-of-text index, and assembles a small batch with learned context spliced
into positions 1..l, independently of the Go code.

Run with Debian's Python: /usr/bin/python3 dapo/testdata/gen_prompts.py
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "clip", "tokenizer", "testdata"))
from gen_vectors import Tokenizer  # noqa: E402

tok = Tokenizer()
vocab = json.load(open(os.path.join(HERE, "..", "vocabularies.json")))


def template(word, l=5):
    ctx = " ".join(["X"] * l)
    if word is None:
        return ctx + " flawless object"
    return " ".join(p for p in [ctx, word, "anomaly", "object"] if p)


def ids77(text):
    ids = tok.tokenize(text, True)
    return [int(i) for i in ids]


words = set()
for group in ("train", "binary", "multi"):
    for lst in vocab[group].values():
        words.update(lst)
cases = [{"word": None}] + [{"word": w} for w in sorted(words)] + [{"word": ""}]
for c in cases:
    t = template(c["word"])
    ids = ids77(t)
    c["text"] = t
    c["ids"] = [i for i in ids if i != 0]
    # EOT index = argmax of the 77 template ids (EOT 49407 is the largest id).
    c["eot"] = int(np.argmax(np.array(ids)))

# Assembly: E=2 groups, l=5, a 4-dim table; words "bent" and "weird wick".
rng = np.random.default_rng(7)
E, L, D = 2, 5, 4
words2 = ["bent", "weird wick"]
texts = [template(None)] * E + [template(w) for w in words2 for _ in range(E)]
all_ids = [ids77(t) for t in texts]
used = sorted({i for ids in all_ids for i in ids})
rows = {i: rng.standard_normal(D).astype(np.float32) for i in used}
normal = rng.standard_normal((E, L, D)).astype(np.float32)
abnormal = rng.standard_normal((E, L, D)).astype(np.float32)
emb = np.stack([np.stack([rows[i] for i in ids]) for ids in all_ids])  # [N,77,D]
for n in range(len(texts)):
    ctx = normal if n < E else abnormal
    emb[n, 1:1 + L] = ctx[n % E]
out = {
    "cases": cases,
    "assembly": {
        "groups": E, "context": L, "dim": D, "words": words2,
        "table_rows": {str(i): rows[i].tolist() for i in used},
        "normal_ctx": normal.ravel().tolist(),
        "abnormal_ctx": abnormal.ravel().tolist(),
        "embeds": emb.ravel().tolist(),
        "eot": [int(np.argmax(np.array(ids))) for ids in all_ids],
    },
}
with open(os.path.join(HERE, "prompts.json"), "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", len(cases), "templates")
