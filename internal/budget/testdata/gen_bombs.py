#!/usr/bin/python3
"""Writes the decompression bombs the decoders' tests feed them.

Each file is a few dozen bytes whose header declares a huge image or map:
a decoder that allocates what the header says before checking it runs out
of memory; one that checks the pixel budget first refuses it. The pixel
data is a valid stream that ends far too early.

Usage: cd internal/budget/testdata && /usr/bin/python3 gen_bombs.py
"""
import io
import struct
import zlib

from PIL import Image

SIDE = 100000


def png(path, width, height, depth, colour, palette=False):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
    if palette:
        out += chunk(b"PLTE", bytes([0, 0, 0, 255, 0, 0]))
    out += chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    out += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


def jpeg(path, width, height):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (128, 64, 32)).save(buf, "JPEG", quality=90)
    b = bytearray(buf.getvalue())
    sof = b.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    struct.pack_into(">HH", b, sof + 5, height, width)
    with open(path, "wb") as f:
        f.write(bytes(b))


def tiff(path, width, height):
    # little-endian, one IFD: float32 samples, one uncompressed strip of 16 bytes
    entries = [
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 32), (259, 3, 1, 1), (262, 3, 1, 1),
        (273, 4, 1, 0), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, 16), (339, 3, 1, 3),
    ]
    ifd = 8
    data = ifd + 2 + 12 * len(entries) + 4
    out = b"II*\x00" + struct.pack("<I", ifd) + struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        if tag == 273:
            value = data
        fmt = "<HHIHH" if typ == 3 else "<HHII"
        out += struct.pack(fmt, tag, typ, count, value, 0) if typ == 3 else struct.pack(fmt, tag, typ, count, value)
    out += struct.pack("<I", 0) + b"\x00" * 16
    with open(path, "wb") as f:
        f.write(out)


def npy(path, width, height):
    h = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (height, width)
    h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + b"\x00" * 16)


png("gray.png", SIDE, SIDE, 8, 0)             # an image
png("rgb.png", SIDE, SIDE, 8, 2)              # a colour mask, as OpenCV writes them
png("palette.png", SIDE, SIDE, 8, 3, True)    # a class-id mask (raw VisA)
png("gray16.png", SIDE, SIDE, 16, 0)          # a 16-bit map
png("thin.png", 13000, 13000, 8, 0)           # under the budget, but no 80-byte file holds it
jpeg("rgb.jpg", 65000, 65000)                 # the largest side JPEG can declare
tiff("f32.tif", SIDE, SIDE)                   # a float32 map
npy("f32.npy", SIDE, SIDE)                    # a float32 map
