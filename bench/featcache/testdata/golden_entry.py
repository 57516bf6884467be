#!/usr/bin/python3
"""Writes a version-1 feature-cache entry from the format description alone.

Run from this folder with Debian's python3-numpy:

    /usr/bin/python3 golden_entry.py

golden_v1.feat   the entry file for KEY and TENSORS below, written by this script (not by the Go code)
golden_v1.json   the key, its digest (hashlib.sha256 as Key.Digest defines it), the tensors, the CRC-32C
                 of the header and payload, and the sha256 of the whole file (for HashFile)

The Go tests check that their encoder produces these exact bytes and that the decoder reads them back.
CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) is computed by the table-free loop below, since
Python's zlib only has the IEEE polynomial; check value: crc32c(b"123456789") == 0xE3069283.
"""
import hashlib
import json
import struct

import numpy as np

MAGIC = b"\x89DBFEAT\n"
END = b"FEND"
DIGEST_DOMAIN = b"dapobench/featcache/key/v1\n"

KEY = ("sha256:0d5f…model", "squash-bicubic-518 mean=openai std=openai", "9f86d081884c7d659a2feaa0c55ad015")
TENSORS = [
    ("image_embed", (4,), np.array([0.5, -1.25, 3.0e-8, 1e30], dtype=np.float32)),
    ("patch_6", (3, 2), (np.arange(6, dtype=np.float32) / np.float32(7)).reshape(3, 2)),
    ("scalar", (), np.array(np.float32(-0.0))),
    ("empty", (0, 5), np.zeros((0, 5), dtype=np.float32)),
]


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def string(s):
    b = s.encode()
    return struct.pack("<H", len(b)) + b


def main():
    assert crc32c(b"123456789") == 0xE3069283
    body = b"".join(string(s) for s in KEY)
    body += struct.pack("<I", len(TENSORS))
    payload = b""
    for name, shape, data in TENSORS:
        assert data.shape == shape and data.dtype == np.float32
        body += string(name) + struct.pack("<BB", 1, len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        payload += data.astype("<f4").tobytes()
    body += struct.pack("<Q", len(payload))
    head = MAGIC + struct.pack("<HHI", 1, 0, len(body)) + body
    hcrc = crc32c(head)
    pcrc = crc32c(payload)
    blob = head + struct.pack("<I", hcrc) + payload + struct.pack("<I", pcrc) + END
    with open("golden_v1.feat", "wb") as f:
        f.write(blob)

    h = hashlib.sha256(DIGEST_DOMAIN)
    for s in KEY:
        b = s.encode()
        h.update(struct.pack("<I", len(b)) + b)
    meta = dict(
        key=dict(model=KEY[0], preprocess=KEY[1], content=KEY[2]),
        digest=h.hexdigest(),
        tensors=[dict(name=n, shape=list(s), values=[float(v) for v in d.ravel()]) for n, s, d in TENSORS],
        header_crc32c="%08x" % hcrc,
        payload_crc32c="%08x" % pcrc,
        file_sha256=hashlib.sha256(blob).hexdigest(),
    )
    with open("golden_v1.json", "w") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
