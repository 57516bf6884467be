package mapio

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/dapobench/dapobench/internal/half"
	"golang.org/x/image/tiff/lzw"

	"github.com/dapobench/dapobench/internal/budget"
)

// TIFF tags and values used by maps (TIFF 6.0; predictor 3 from Adobe's
// technical note 3, as libtiff and tifffile write it).
const (
	tagWidth           = 256
	tagHeight          = 257
	tagBitsPerSample   = 258
	tagCompression     = 259
	tagPhotometric     = 262
	tagStripOffsets    = 273
	tagSamplesPerPixel = 277
	tagRowsPerStrip    = 278
	tagStripByteCounts = 279
	tagPlanarConfig    = 284
	tagPredictor       = 317
	tagTileWidth       = 322
	tagTileLength      = 323
	tagTileOffsets     = 324
	tagTileByteCounts  = 325
	tagSampleFormat    = 339

	compNone     = 1
	compLZW      = 5
	compDeflate  = 8
	compPackBits = 32773
	compDeflate2 = 32946 // old Adobe code for Deflate

	sfUint  = 1
	sfInt   = 2
	sfFloat = 3
)

// DecodeTIFF decodes the first (and only) page of a single-channel TIFF:
// float32 as the MVTec AD evaluation script reads it, also float16/64 and
// 8/16-bit integers; uncompressed, LZW, Deflate or PackBits; strips or
// tiles; predictors none, horizontal (integers) and floating point.
func DecodeTIFF(data []byte) (*Map, error) {
	t, err := parseTIFF(data)
	if err != nil {
		return nil, err
	}
	return t.decode()
}

type tiffFile struct {
	data []byte
	bo   binary.ByteOrder
	tags map[uint16][]uint64

	width, height int
	bps, format   int
	compression   int
	predictor     int
}

func tiffErr(format string, a ...any) error {
	return fmt.Errorf("mapio: tiff: %s: %w", fmt.Sprintf(format, a...), ErrFormat)
}

func parseTIFF(data []byte) (*tiffFile, error) {
	if len(data) < 8 {
		return nil, tiffErr("file too short")
	}
	t := &tiffFile{data: data, tags: map[uint16][]uint64{}}
	switch string(data[:2]) {
	case "II":
		t.bo = binary.LittleEndian
	case "MM":
		t.bo = binary.BigEndian
	default:
		return nil, tiffErr("no II/MM byte-order mark")
	}
	switch v := t.bo.Uint16(data[2:4]); v {
	case 42:
	case 43:
		return nil, tiffErr("BigTIFF is not supported")
	default:
		return nil, tiffErr("version %d is not 42", v)
	}
	ifd := int64(t.bo.Uint32(data[4:8]))
	if ifd < 8 || ifd+2 > int64(len(data)) {
		return nil, tiffErr("first IFD offset %d is outside the file", ifd)
	}
	n := int64(t.bo.Uint16(data[ifd:]))
	end := ifd + 2 + 12*n
	if end+4 > int64(len(data)) {
		return nil, tiffErr("IFD with %d entries runs past the end of the file", n)
	}
	for i := int64(0); i < n; i++ {
		e := data[ifd+2+12*i : ifd+14+12*i]
		tag := t.bo.Uint16(e[0:2])
		vals, err := t.entry(e)
		if err != nil {
			return nil, tiffErr("tag %d: %v", tag, err)
		}
		if vals != nil {
			t.tags[tag] = vals
		}
	}
	if next := t.bo.Uint32(data[end : end+4]); next != 0 {
		return nil, tiffErr("more than one page: a map file must hold one image")
	}
	return t, t.check()
}

// entry returns the integer values of an IFD entry, or nil for types that
// maps never need (ASCII, rationals, floats), which are skipped.
func (t *tiffFile) entry(e []byte) ([]uint64, error) {
	typ := t.bo.Uint16(e[2:4])
	count := int64(t.bo.Uint32(e[4:8]))
	var size int64
	switch typ {
	case 1, 6, 7: // BYTE, SBYTE, UNDEFINED
		size = 1
	case 3, 8: // SHORT, SSHORT
		size = 2
	case 4, 9: // LONG, SLONG
		size = 4
	default:
		return nil, nil
	}
	raw := e[8:12]
	if count*size > 4 {
		off := int64(t.bo.Uint32(e[8:12]))
		if count > int64(len(t.data)) || off+count*size > int64(len(t.data)) {
			return nil, fmt.Errorf("%d values at offset %d run past the end of the file", count, off)
		}
		raw = t.data[off : off+count*size]
	}
	vals := make([]uint64, count)
	for i := range vals {
		switch size {
		case 1:
			vals[i] = uint64(raw[i])
		case 2:
			vals[i] = uint64(t.bo.Uint16(raw[2*i:]))
		case 4:
			vals[i] = uint64(t.bo.Uint32(raw[4*i:]))
		}
	}
	return vals, nil
}

// one returns the single value of tag, or def when the tag is absent.
func (t *tiffFile) one(tag uint16, def uint64) (uint64, error) {
	v, ok := t.tags[tag]
	if !ok {
		return def, nil
	}
	if len(v) == 0 {
		return 0, tiffErr("tag %d has no value", tag)
	}
	for _, x := range v[1:] { // per-sample tags repeat one value
		if x != v[0] {
			return 0, tiffErr("tag %d has differing values %v", tag, v)
		}
	}
	return v[0], nil
}

func (t *tiffFile) check() error {
	get := func(tag uint16, def uint64) int {
		v, err := t.one(tag, def)
		if err != nil || v > math.MaxInt32 {
			return -1
		}
		return int(v)
	}
	t.width, t.height = get(tagWidth, 0), get(tagHeight, 0)
	if err := budget.CheckPixels(t.width, t.height); err != nil {
		return tiffErr("image size: %v", err)
	}
	if spp := get(tagSamplesPerPixel, 1); spp != 1 {
		return tiffErr("%d samples per pixel: a map must be single-channel", spp)
	}
	if ph := get(tagPhotometric, 1); ph != 0 && ph != 1 {
		return tiffErr("photometric interpretation %d: a map must be grayscale", ph)
	}
	t.bps, t.format = get(tagBitsPerSample, 1), get(tagSampleFormat, sfUint)
	switch {
	case t.format == sfFloat && (t.bps == 16 || t.bps == 32 || t.bps == 64):
	case (t.format == sfUint || t.format == sfInt) && (t.bps == 8 || t.bps == 16):
	default:
		return tiffErr("%d-bit sample format %d: want float16/32/64 or 8/16-bit integers", t.bps, t.format)
	}
	t.compression = get(tagCompression, compNone)
	switch t.compression {
	case compNone, compLZW, compDeflate, compDeflate2, compPackBits:
	default:
		return tiffErr("compression %d: want none, LZW, Deflate or PackBits", t.compression)
	}
	t.predictor = get(tagPredictor, 1)
	switch {
	case t.predictor == 1:
	case t.predictor == 2 && t.format != sfFloat:
	case t.predictor == 3 && t.format == sfFloat:
	default:
		return tiffErr("predictor %d with sample format %d", t.predictor, t.format)
	}
	return nil
}

// maxRatio bounds how far each compression can expand its input (Deflate's
// limit is 1032:1, LZW's 4096 bytes per 12-bit code, PackBits' 128 per 2
// bytes), so that a small file cannot claim a huge image.
var maxRatio = map[int]int{compNone: 1, compLZW: 2731, compDeflate: 1032, compDeflate2: 1032, compPackBits: 64}

// decode assembles the image from its strips or tiles.
func (t *tiffFile) decode() (*Map, error) {
	bpp := t.bps / 8
	need := t.width * t.height * bpp
	var have int64
	for _, tag := range []uint16{tagStripByteCounts, tagTileByteCounts} {
		for _, c := range t.tags[tag] {
			have = min(have+int64(min(c, 1<<40)), 1<<40) // as claimed; block checks the file
		}
	}
	if have*int64(maxRatio[t.compression]) < int64(need) {
		return nil, tiffErr("%d bytes of image data cannot hold a %d×%d image", have, t.width, t.height)
	}
	raw := make([]byte, need)
	if _, tiled := t.tags[tagTileOffsets]; tiled {
		if err := t.tiles(raw, bpp); err != nil {
			return nil, err
		}
	} else if err := t.strips(raw, bpp); err != nil {
		return nil, err
	}
	m := &Map{Width: t.width, Height: t.height, Pix: make([]float32, t.width*t.height),
		Rounded: t.format == sfFloat && t.bps == 64}
	bo := t.bo
	if t.predictor == 3 {
		bo = binary.BigEndian // the float predictor stores the most significant byte first
	}
	for i := range m.Pix {
		b := raw[i*bpp : (i+1)*bpp]
		var v float32
		switch {
		case t.format == sfFloat && bpp == 2:
			v = half.ToFloat32(bo.Uint16(b))
		case t.format == sfFloat && bpp == 4:
			v = math.Float32frombits(bo.Uint32(b))
		case t.format == sfFloat && bpp == 8:
			v = float32(math.Float64frombits(bo.Uint64(b)))
		case t.format == sfUint && bpp == 1:
			v = float32(b[0])
		case t.format == sfUint && bpp == 2:
			v = float32(bo.Uint16(b))
		case t.format == sfInt && bpp == 1:
			v = float32(int8(b[0]))
		case t.format == sfInt && bpp == 2:
			v = float32(int16(bo.Uint16(b)))
		}
		m.Pix[i] = v
	}
	return m, nil
}

func (t *tiffFile) strips(raw []byte, bpp int) error {
	offs, counts := t.tags[tagStripOffsets], t.tags[tagStripByteCounts]
	rps, err := t.one(tagRowsPerStrip, math.MaxUint32)
	if err != nil {
		return err
	}
	rows := int(min(rps, uint64(t.height)))
	if rows <= 0 {
		return tiffErr("rows per strip is 0")
	}
	n := (t.height + rows - 1) / rows
	if len(offs) != n || len(counts) != n {
		return tiffErr("%d strips expected, file lists %d offsets and %d byte counts", n, len(offs), len(counts))
	}
	rowBytes := t.width * bpp
	for i := 0; i < n; i++ {
		h := min(rows, t.height-i*rows)
		dst := raw[i*rows*rowBytes : (i*rows+h)*rowBytes]
		if err := t.block(dst, offs[i], counts[i], t.width, bpp); err != nil {
			return tiffErr("strip %d: %v", i, err)
		}
	}
	return nil
}

func (t *tiffFile) tiles(raw []byte, bpp int) error {
	tw, err := t.one(tagTileWidth, 0)
	if err != nil {
		return err
	}
	th, err := t.one(tagTileLength, 0)
	if err != nil {
		return err
	}
	if tw == 0 || th == 0 || tw > 1<<16 || th > 1<<16 {
		return tiffErr("tile size %d×%d", tw, th)
	}
	tilesX := (t.width + int(tw) - 1) / int(tw)
	tilesY := (t.height + int(th) - 1) / int(th)
	offs, counts := t.tags[tagTileOffsets], t.tags[tagTileByteCounts]
	if n := tilesX * tilesY; len(offs) != n || len(counts) != n {
		return tiffErr("%d tiles expected, file lists %d offsets and %d byte counts", n, len(offs), len(counts))
	}
	tile := make([]byte, int(tw)*int(th)*bpp)
	rowBytes := t.width * bpp
	for ty := 0; ty < tilesY; ty++ {
		for tx := 0; tx < tilesX; tx++ {
			i := ty*tilesX + tx
			if err := t.block(tile, offs[i], counts[i], int(tw), bpp); err != nil {
				return tiffErr("tile %d: %v", i, err)
			}
			x0, y0 := tx*int(tw), ty*int(th)
			w := min(int(tw), t.width-x0) * bpp
			for y := 0; y < int(th) && y0+y < t.height; y++ {
				copy(raw[(y0+y)*rowBytes+x0*bpp:][:w], tile[y*int(tw)*bpp:][:w])
			}
		}
	}
	return nil
}

// block decompresses one strip or tile into dst (rows of width samples) and
// undoes the predictor.
func (t *tiffFile) block(dst []byte, off, count uint64, width, bpp int) error {
	if off > uint64(len(t.data)) || count > uint64(len(t.data))-off {
		return fmt.Errorf("%d bytes at offset %d run past the end of the file", count, off)
	}
	src := t.data[off : off+count]
	var r io.Reader
	switch t.compression {
	case compNone:
		if len(src) < len(dst) {
			return fmt.Errorf("%d bytes, want %d", len(src), len(dst))
		}
		copy(dst, src)
	case compLZW:
		r = lzw.NewReader(bytes.NewReader(src), lzw.MSB, 8)
	case compDeflate, compDeflate2:
		zr, err := zlib.NewReader(bytes.NewReader(src))
		if err != nil {
			return fmt.Errorf("deflate: %v", err)
		}
		r = zr
	case compPackBits:
		if err := unpackBits(dst, src); err != nil {
			return err
		}
	}
	if r != nil {
		if _, err := io.ReadFull(r, dst); err != nil {
			return fmt.Errorf("decompressing: %v", err)
		}
	}
	rowBytes := width * bpp
	switch t.predictor {
	case 2:
		for y := 0; y+rowBytes <= len(dst); y += rowBytes {
			row := dst[y : y+rowBytes]
			if bpp == 1 {
				for i := 1; i < len(row); i++ {
					row[i] += row[i-1]
				}
			} else {
				for i := 2; i < len(row); i += 2 {
					t.bo.PutUint16(row[i:], t.bo.Uint16(row[i:])+t.bo.Uint16(row[i-2:]))
				}
			}
		}
	case 3:
		tmp := make([]byte, rowBytes)
		for y := 0; y+rowBytes <= len(dst); y += rowBytes {
			row := dst[y : y+rowBytes]
			for i := 1; i < len(row); i++ {
				row[i] += row[i-1]
			}
			// Byte planes (most significant first) back to samples.
			for i := 0; i < width; i++ {
				for k := 0; k < bpp; k++ {
					tmp[i*bpp+k] = row[k*width+i]
				}
			}
			copy(row, tmp)
		}
	}
	return nil
}

// unpackBits decodes PackBits (Apple's run-length code) into dst.
func unpackBits(dst, src []byte) error {
	o := 0
	for i := 0; o < len(dst); {
		if i >= len(src) {
			return fmt.Errorf("packbits: %d of %d bytes", o, len(dst))
		}
		n := int(int8(src[i]))
		i++
		switch {
		case n >= 0:
			if i+n+1 > len(src) || o+n+1 > len(dst) {
				return fmt.Errorf("packbits: literal run overflows")
			}
			o += copy(dst[o:], src[i:i+n+1])
			i += n + 1
		case n != -128:
			if i >= len(src) || o+1-n > len(dst) {
				return fmt.Errorf("packbits: repeat run overflows")
			}
			for k := 0; k < 1-n; k++ {
				dst[o] = src[i]
				o++
			}
			i++
		}
	}
	return nil
}
