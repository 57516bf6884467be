#!/usr/bin/python3
"""Map files for the mapio tests, written by the libraries users write maps
with: tifffile (what the MVTec AD evaluation script reads maps with),
Pillow, GDAL (for the LZW and floating-point-predictor TIFFs tifffile
cannot encode without imagecodecs) and numpy.

    /usr/bin/python3 metrics/mapio/testdata/gen_maps.py

manifest.json maps each file to the .npy holding the float32 values the
reference reader returns for it (tifffile.imread for TIFF, or GDAL where
tifffile needs imagecodecs to decode; Pillow for PNG; numpy.load for .npy),
so the Go tests compare against the readers themselves, not against the
array that was written.
"""
import json
import os

import numpy as np
import tifffile
from osgeo import gdal
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
gdal.UseExceptions()


def main():
    rng = np.random.default_rng(3)
    h, w = 37, 53  # not a multiple of any strip or tile size
    f32 = (rng.normal(size=(h, w)) * 3).astype(np.float32)
    f32[0, 0], f32[0, 1], f32[1, 0] = 0.0, -0.0, 1e-40  # signed zero, subnormal
    u8 = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
    u16 = rng.integers(0, 65536, size=(h, w), dtype=np.uint16)
    i16 = rng.integers(-32768, 32768, size=(h, w), dtype=np.int16)
    manifest = {}

    def expect(name, arr, rounded=False, reader="tifffile"):
        ref = name.rsplit(".", 1)[0] + ".expected.npy"
        np.save(os.path.join(HERE, ref), np.asarray(arr).astype(np.float32))
        manifest[name] = {"expected": ref, "rounded": rounded, "reader": reader}

    def read_tiff(p):
        try:
            return tifffile.imread(p), "tifffile"
        except ValueError:  # codec needs imagecodecs
            pass
        ds = gdal.Open(p)
        band = ds.GetRasterBand(1)
        dt = {gdal.GDT_Float32: "<f4", gdal.GDT_Float64: "<f8", gdal.GDT_UInt16: "<u2",
              gdal.GDT_Byte: "u1"}[band.DataType]
        raw = band.ReadRaster(0, 0, ds.RasterXSize, ds.RasterYSize)
        return np.frombuffer(raw, dtype=dt).reshape(ds.RasterYSize, ds.RasterXSize), "gdal"

    def tif(name, arr, **kw):
        p = os.path.join(HERE, name)
        tifffile.imwrite(p, arr, **kw)
        arr2, reader = read_tiff(p)
        expect(name, arr2, arr.dtype == np.float64, reader)

    tif("f32.tif", f32)
    tif("f32_be.tif", f32, byteorder=">")
    tif("f32_zlib.tif", f32, compression="zlib")
    tif("f32_strips.tif", f32, rowsperstrip=5)
    tif("f32_tiled.tif", f32, tile=(16, 32))
    tif("f16.tif", f32.astype(np.float16))
    tif("f64.tif", f32.astype(np.float64) / 3)
    tif("u8.tif", u8)
    tif("u16_be.tif", u16, byteorder=">")
    tif("i16.tif", i16)

    def pil(name, arr, mode, **kw):
        p = os.path.join(HERE, name)
        Image.fromarray(arr, mode=mode).save(p, **kw)
        if name.endswith(".png"):
            expect(name, np.array(Image.open(p)), reader="pillow")
        else:
            arr, reader = read_tiff(p)
            expect(name, arr, reader=reader)

    pil("pil_f32.tiff", f32, "F")
    pil("pil_f32_lzw.tiff", f32, "F", compression="tiff_lzw")
    pil("pil_f32_packbits.tiff", f32, "F", compression="packbits")
    pil("pil_f32_deflate.tiff", f32, "F", compression="tiff_adobe_deflate")
    pil("u8.png", u8, "L")
    pil("u16.png", u16, "I;16")

    def gd(name, arr, dtype, options):
        p = os.path.join(HERE, name)
        ds = gdal.GetDriverByName("GTiff").Create(p, w, h, 1, dtype, options=options)
        ds.GetRasterBand(1).WriteRaster(0, 0, w, h, np.ascontiguousarray(arr).tobytes())
        ds = None
        for extra in os.listdir(HERE):
            if extra.startswith(name) and extra != name:  # .aux.xml side files
                os.remove(os.path.join(HERE, extra))
        arr, reader = read_tiff(p)
        expect(name, arr, dtype == gdal.GDT_Float64, reader)

    gd("gdal_f32_lzw_pred3.tif", f32, gdal.GDT_Float32, ["COMPRESS=LZW", "PREDICTOR=3"])
    gd("gdal_f32_deflate_pred3_tiled.tif", f32, gdal.GDT_Float32,
       ["COMPRESS=DEFLATE", "PREDICTOR=3", "TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"])
    gd("gdal_f32_pred3_be.tif", f32, gdal.GDT_Float32, ["COMPRESS=LZW", "PREDICTOR=3", "ENDIANNESS=BIG"])
    gd("gdal_u16_lzw_pred2.tif", u16, gdal.GDT_UInt16, ["COMPRESS=LZW", "PREDICTOR=2"])
    gd("gdal_u8_deflate_pred2_be.tif", u8, gdal.GDT_Byte, ["COMPRESS=DEFLATE", "PREDICTOR=2", "ENDIANNESS=BIG"])
    gd("gdal_f64_packbits.tif", f32.astype(np.float64) / 7, gdal.GDT_Float64, ["COMPRESS=PACKBITS"])

    def npy(name, arr, version=None):
        p = os.path.join(HERE, name)
        if version is None:
            np.save(p, arr)
        else:
            with open(p, "wb") as f:
                np.lib.format.write_array(f, arr, version=version)
        expect(name, np.load(p), np.load(p).dtype == np.float64, "numpy")

    npy("f32.npy", f32)
    npy("f32_be.npy", f32.astype(">f4"))
    npy("f32_fortran.npy", np.asfortranarray(f32))
    npy("f32_v2.npy", f32, version=(2, 0))
    npy("f32_v3.npy", f32, version=(3, 0))
    npy("f32_1hw.npy", f32[None])
    npy("f32_hw1.npy", f32[:, :, None])
    npy("f64.npy", f32.astype(np.float64) / 3)
    npy("f16.npy", f32.astype(np.float16))
    npy("u8.npy", u8)
    npy("u16.npy", u16)
    npy("i16_be.npy", i16.astype(">i2"))
    npy("bool.npy", u8 > 128)

    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
