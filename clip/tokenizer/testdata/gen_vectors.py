#!/usr/bin/python3
"""Reference ids for the Go CLIP tokenizer.

This is OpenAI CLIP's simple_tokenizer algorithm (byte-level BPE over the
bpe_simple_vocab_16e6 merges, the same token regex, the same cleaning and
lower-casing, SOT/EOT, context 77), written out here so that the test
vectors come from Python's own regex engine, Unicode tables and str.lower.

ftfy cannot be installed here, so the ftfy.fix_text step is replaced on
both sides by the same documented subset (see FTFY_SUBSET below and
clean.go): NFC normalisation, curly quotes to straight ones, Latin
ligatures expanded, full-width ASCII to ASCII. Mojibake repair is not
reproduced. Every committed vector is plain text where ftfy changes
nothing else.

Needs Debian's python3-regex (the `regex` module supports \\p{L}).

Usage (from the repository root):
    /usr/bin/python3 clip/tokenizer/testdata/gen_vectors.py > clip/tokenizer/testdata/vectors.json
    /usr/bin/python3 clip/tokenizer/testdata/gen_vectors.py --unicode > clip/tokenizer/testdata/unicode.json
"""
import gzip
import html
import json
import os
import re
import sys
import unicodedata

import regex

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = os.path.join(HERE, "..", "bpe_simple_vocab_16e6.txt.gz")
CONTEXT = 77


def byte_symbols():
    """Maps every byte to a printable code point, printable ASCII and
    Latin-1 first (kept as themselves), the rest to 256, 257, ..."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    order = keep + [b for b in range(256) if b not in keep]
    return table, order


# The ftfy replacement, mirrored by clean.go.
SINGLE_QUOTES = "\u02bc\u2018\u2019\u201a\u201b"
DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f"
LIGATURES = {
    "\u0132": "IJ", "\u0133": "ij", "\u0149": "\u02bcn",
    "\u01c7": "LJ", "\u01c8": "Lj", "\u01c9": "lj",
    "\u01ca": "NJ", "\u01cb": "Nj", "\u01cc": "nj",
    "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi",
    "\ufb04": "ffl", "\ufb05": "\u017ft", "\ufb06": "st",
}


def ftfy_subset(text):
    out = []
    for ch in text:
        if ch in SINGLE_QUOTES:
            out.append("'")
        elif ch in DOUBLE_QUOTES:
            out.append('"')
        elif ch in LIGATURES:
            out.append(LIGATURES[ch])
        elif 0xFF01 <= ord(ch) <= 0xFF5E:
            out.append(chr(ord(ch) - 0xFF01 + 0x21))
        elif ch == "\u3000":
            out.append(" ")
        else:
            out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


class Tokenizer:
    def __init__(self):
        self.byte_enc, order = byte_symbols()
        lines = gzip.open(VOCAB).read().decode("utf-8").split("\n")
        merges = [tuple(l.split()) for l in lines[1:49152 - 256 - 2 + 1]]
        vocab = [self.byte_enc[b] for b in order]
        vocab += [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.ids = {v: i for i, v in enumerate(vocab)}
        self.rank = {m: i for i, m in enumerate(merges)}
        self.sot = self.ids["<|startoftext|>"]
        self.eot = self.ids["<|endoftext|>"]
        self.pat = regex.compile(
            r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE)

    def bpe(self, token):
        if token in ("<|startoftext|>", "<|endoftext|>"):
            return [token]
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            best = None
            for pair in zip(word, word[1:]):
                r = self.rank.get(pair)
                if r is not None and (best is None or r < best[0]):
                    best = (r, pair)
            if best is None:
                break
            a, b = best[1]
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    def encode(self, text):
        text = ftfy_subset(text)
        text = html.unescape(html.unescape(text)).strip()
        # CLIP's whitespace_clean uses the standard re module, whose \s is
        # str.isspace.
        text = re.sub(r"\s+", " ", text).strip().lower()
        out = []
        for tok in self.pat.findall(text):
            sym = "".join(self.byte_enc[b] for b in tok.encode("utf-8"))
            out.extend(self.ids[p] for p in self.bpe(sym))
        return out

    def tokenize(self, text, truncate):
        ids = [self.sot] + self.encode(text) + [self.eot]
        if len(ids) > CONTEXT:
            if not truncate:
                return None
            ids = ids[:CONTEXT]
            ids[-1] = self.eot
        return ids + [0] * (CONTEXT - len(ids))


# Defect vocabularies of docs/methods.md#dapo-vocab-binary,
# docs/methods.md#dapo-vocab-train and docs/methods.md#dapo-vocab-multitype
# (verbatim, case kept).
VOCABS = [
    "bent broken discoloration compound contamination crack cut fabric|faulty imprint|gluing hole missing puncture rough scratch compressed threading liquid misaligned wear",
    "bent broken color combined contamination crack cut fabric|faulty imprint|glue hole missing poke rough scratch squeeze thread liquid misplaced damaged",
    "damage scratch breakage burnt|irregular wick|stuck crack|wrong place|partical bubble melded hole melt bent spot extra chip missing",
    "hole scratch bent rust flattening mismatch|defective painting",
    "misplaced damaged stains missing burrs",
    "hole deformed scratch damage|missing parts|contamination",
    "good normal|weird wick|Stains Missing Burrs pit deformation abrasion foreign",
    "crack hole damaged contamination",
]

OBJECTS = [
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut", "metal nut", "pill",
    "screw", "tile", "toothbrush", "transistor", "wood", "zipper", "candle", "capsules", "cashew",
    "chewinggum", "fryum", "macaroni1", "macaroni2", "pcb1", "pcb4", "pipe_fryum", "bracket_black",
    "connector", "metal_plate", "tubes", "Gorilla", "Pheonix", "Obesobeso", "sim_card_set",
    "porcelain_doll", "usb_adaptor", "object",
]

WINCLIP_STATES_NORMAL = ["{}", "flawless {}", "perfect {}", "unblemished {}", "{} without flaw",
                         "{} without defect", "{} without damage"]
WINCLIP_STATES_ANOMALOUS = ["damaged {}", "{} with flaw", "{} with defect", "{} with damage"]
WINCLIP_TEMPLATES = [
    "a cropped photo of the {}", "a cropped photo of a {}", "a close-up photo of a {}",
    "a close-up photo of the {}", "a bright photo of a {}", "a bright photo of the {}",
    "a dark photo of the {}", "a dark photo of a {}", "a jpeg corrupted photo of a {}",
    "a jpeg corrupted photo of the {}", "a blurry photo of the {}", "a blurry photo of a {}",
    "a photo of a {}", "a photo of the {}", "a photo of a small {}", "a photo of the small {}",
    "a photo of a large {}", "a photo of the large {}", "a photo of the {} for visual inspection",
    "a photo of a {} for visual inspection", "a photo of the {} for anomaly detection",
    "a photo of a {} for anomaly detection",
]

MISC = [
    "", " ", "a photo of a cat", "Hi there", "hello world!", "magnificently", "X", "flawless", "object",
    "anomaly", "it's", "don't", "we're", "they've", "I'm", "we'll", "he'd", "IT'S LOUD", "rock'n'roll",
    "hello,world", "hello , world !!", "...", "?!?!", "a--b", "e-mail: test@example.com",
    "https://example.com/path?x=1&y=2", "12345", "3.14159", "1st 2nd 3rd", "v2.0.1-rc1", "100%",
    "#hashtag @user", "$9.99", "(parenthesised) [bracketed] {braced}", "tab\tseparated\twords",
    "line\nbreaks\r\nand\rreturns", "   leading and trailing   ", "multiple     spaces",
    "&amp;", "&amp;amp;", "&lt;b&gt;bold&lt;/b&gt;", "AT&T", "fish &amp; chips", "&#39;quoted&#39;",
    "<|startoftext|>", "<|endoftext|>", "a <|endoftext|> b", "<|ENDOFTEXT|>",
    "café", "cafe\u0301", "naïve résumé", "Straße", "ÆØÅ æøå", "ΟΔΟΣ", "Σ", "ΣΑΣ σας", "İstanbul",
    "Ÿ", "ǅungla", "Москва", "日本語のテキスト", "中文测试", "한국어", "العربية", "עברית", "हिन्दी",
    "ไทย", "emoji 😀🎉", "👍🏽", "👨‍👩‍👧", "©®™", "½ ¼ ¾", "x² y³", "٣", "Ⅻ", "ﬁne ﬂow ﬀ",
    "‘single’ “double”", "ＦＵＬＬ　ｗｉｄｔｈ！", "zero\u200bwidth", "nbsp\u00a0space",
    "em\u2003space", "ideographic\u3000space", "soft\u00adhyphen", "\x1cunit\x1fsep",
    "mixedCASE WoRdS", "snake_case_name", "camelCaseName", "a" * 300,
    "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
    " ".join(["word"] * 80), " ".join(str(i) for i in range(100)),
    "the quick brown fox jumps over the lazy dog " * 10,
    "X X X X X X X X X X X X object.", "X X X X X X X X X X X X damaged object.",
    "X X X X X flawless object",
]


def vectors():
    texts = []
    for line in VOCABS:
        words = []
        for part in line.split("|"):
            if " " in part and part not in ("faulty imprint", "irregular wick", "wrong place",
                                             "defective painting", "missing parts", "weird wick"):
                words.extend(part.split(" "))
            else:
                words.append(part)
        for w in words:
            texts.append(w)
            texts.append("X X X X X " + w + " anomaly object")
    for o in OBJECTS:
        texts.append(o)
    for t in WINCLIP_TEMPLATES:
        for s in WINCLIP_STATES_NORMAL + WINCLIP_STATES_ANOMALOUS:
            texts.append(t.format(s.format("object")))
        texts.append(t.format("metal nut") + ".")
    texts += MISC
    seen, out = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def main():
    if "--unicode" in sys.argv:
        # Python's str.isspace and str.lower over every code point, so the
        # Go side can check its cleaning against Python's tables.
        space = [c for c in range(0x110000) if chr(c).isspace()]
        lower = [[c, chr(c).lower()] for c in range(0x110000)
                 if not (0xD800 <= c <= 0xDFFF) and chr(c).lower() != chr(c)]
        json.dump({"unicode_version": unicodedata.unidata_version, "space": space, "lower": lower},
                  sys.stdout, ensure_ascii=True)
        sys.stdout.write("\n")
        return
    tok = Tokenizer()
    rows = []
    for t in vectors():
        row = {"text": t, "ids": tok.encode(t)}
        full = tok.tokenize(t, truncate=False)
        if full is None:
            row["too_long"] = True
        row["tokens"] = tok.tokenize(t, truncate=True)
        rows.append(row)
    sys.stdout.write("[\n")
    for i, row in enumerate(rows):
        sep = "," if i + 1 < len(rows) else ""
        sys.stdout.write(json.dumps(row, ensure_ascii=True, separators=(",", ":")) + sep + "\n")
    sys.stdout.write("]\n")


if __name__ == "__main__":
    main()
