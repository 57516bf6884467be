package preprocess

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/dapobench/dapobench/internal/budget"
)

// This file decodes the common PNGs of the benchmarks (8-bit grayscale,
// RGB and RGBA, not interlaced) straight into a plane: the image data is
// inflated into a buffer of scanlines (inflateIDAT) and each is unfiltered
// in place against the row above, so the image exists once, in the layout
// the resampler reads, with no image.Image, no RGB→RGBA expansion and no
// conversion pass. The pixels are those image/png decodes (the PNG
// specification leaves no choice); any other PNG (palette, 16-bit,
// gray+alpha, interlaced) goes through image/png (decodePlane falls back).

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// errNotFast marks a PNG the fast path leaves to image/png.
var errNotFast = errors.New("not a fast-path PNG")

// Pixel buffers are recycled between images (docs/README.md#preprocess-speed),
// decoded planes and the resampler's intermediate rows in pools of their
// own, so that each pool holds buffers of one typical size.
var decodedPool, resizePool sync.Pool // *[]uint8

func getPix(n int) []uint8 { return getFrom(&decodedPool, n) }

func getFrom(pool *sync.Pool, n int) []uint8 {
	if p, ok := pool.Get().(*[]uint8); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]uint8, n)
}

func putPix(b []uint8) { decodedPool.Put(&b) }

// pngChunks walks the chunks of a PNG held in memory, checking each
// chunk's CRC as image/png does.
type pngChunks struct {
	rest []byte // after the chunks read so far
}

// next returns the next chunk's type and data; ok is false at the end of
// the data, for a chunk that does not fit in it, or a bad CRC.
func (c *pngChunks) next() (typ string, body []byte, ok bool) {
	if len(c.rest) < 12 {
		return "", nil, false
	}
	n := binary.BigEndian.Uint32(c.rest[:4])
	if n > 0x7fffffff || uint64(n) > uint64(len(c.rest)-12) {
		return "", nil, false
	}
	whole := c.rest[4 : 8+n] // type and data, what the CRC covers
	crc := binary.BigEndian.Uint32(c.rest[8+n : 12+n])
	c.rest = c.rest[12+n:]
	if crc32.ChecksumIEEE(whole) != crc {
		return "", nil, false
	}
	return string(whole[:4]), whole[4:], true
}

// ancillary lists the chunks before the image data that do not change the
// RGB values convert("RGB") gives: gamma and colour profiles are not
// applied, text and times are metadata, a palette is optional for
// truecolour, and tRNS transparency is dropped. Any other critical chunk
// sends the file to image/png.
func ancillary(typ string) bool {
	return typ[0]&0x20 != 0 || typ == "PLTE"
}

// decodePNG decodes data (a whole PNG file) into a plane whose pixels come
// from getPix, or returns errNotFast for a PNG it leaves to image/png:
// another format, interlacing, other bit depths and colour types, and
// any damage, which image/png then reports in its words.
//
// The image data (the consecutive IDAT chunks) is inflated in one go into
// a buffer of filtered scanlines, each with its filter byte in front, and
// unfiltered in place: the plane's rows are the scanlines, one byte apart.
func decodePNG(data []byte) (plane, error) {
	if !bytes.HasPrefix(data, pngSignature) {
		return plane{}, errNotFast
	}
	c := &pngChunks{rest: data[len(pngSignature):]}
	typ, ihdr, ok := c.next()
	if !ok || typ != "IHDR" || len(ihdr) != 13 {
		return plane{}, errNotFast
	}
	w, h := int(binary.BigEndian.Uint32(ihdr[0:4])), int(binary.BigEndian.Uint32(ihdr[4:8]))
	depth, ctype, comp, filt, interlace := ihdr[8], ihdr[9], ihdr[10], ihdr[11], ihdr[12]
	if depth != 8 || comp != 0 || filt != 0 || interlace != 0 || w <= 0 || h <= 0 {
		return plane{}, errNotFast
	}
	// Over the pixel budget (docs/README.md#budgets): image/png's path
	// refuses it with the reason, before any pixel is allocated.
	if budget.CheckPixels(w, h) != nil {
		return plane{}, errNotFast
	}
	bpp := map[byte]int{0: 1, 2: 3, 6: 4}[ctype]
	if bpp == 0 {
		return plane{}, errNotFast
	}
	var body []byte
	for {
		if typ, body, ok = c.next(); !ok {
			return plane{}, errNotFast
		}
		if typ == "IDAT" {
			break
		}
		if !ancillary(typ) || (typ == "PLTE" && ctype == 0) || len(body) > 1<<24 {
			return plane{}, errNotFast
		}
	}
	// The stream is the run of consecutive IDATs; it must end in the last
	// one that holds data. Later IDATs are ignored, as image/png does.
	idat := [][]byte{body}
	for {
		if typ, body, ok = c.next(); !ok {
			return plane{}, errNotFast
		}
		if typ != "IDAT" {
			break
		}
		idat = append(idat, body)
	}
	for len(idat) > 1 && len(idat[len(idat)-1]) == 0 {
		idat = idat[:len(idat)-1]
	}
	for {
		if (!ancillary(typ) && typ != "IDAT" && typ != "IEND") || typ == "PLTE" || len(body) > 1<<24 {
			return plane{}, errNotFast
		}
		if typ == "IEND" {
			if len(body) != 0 {
				return plane{}, errNotFast
			}
			break
		}
		if typ, body, ok = c.next(); !ok {
			return plane{}, errNotFast
		}
	}
	stride := w*bpp + 1
	buf := getPix(stride * h)
	if err := inflateIDAT(idat, buf); err != nil {
		putPix(buf)
		return plane{}, errNotFast
	}
	for y := range h {
		row := buf[y*stride : (y+1)*stride]
		var prev []uint8
		if y > 0 {
			prev = buf[(y-1)*stride+1 : y*stride]
		}
		if err := unfilter(row[0], row[1:], prev, bpp); err != nil {
			putPix(buf)
			return plane{}, errNotFast
		}
	}
	return plane{pix: buf[1:], whole: buf, w: w, h: h, stride: stride, ch: min(bpp, 3), ps: bpp, pooled: true}, nil
}

// unfilter reverses a scanline's filter in place (PNG specification,
// section 9); prev is nil for the first row, read as zeros.
func unfilter(f byte, cur, prev []uint8, bpp int) error {
	switch f {
	case 0: // None
	case 1: // Sub
		for i := bpp; i < len(cur); i++ {
			cur[i] += cur[i-bpp]
		}
	case 2: // Up
		if prev != nil {
			prev = prev[:len(cur)]
			for i, p := range prev {
				cur[i] += p
			}
		}
	case 3: // Average
		if prev == nil {
			for i := bpp; i < len(cur); i++ {
				cur[i] += cur[i-bpp] / 2
			}
			break
		}
		prev = prev[:len(cur)]
		for i := range bpp {
			cur[i] += prev[i] / 2
		}
		for i := bpp; i < len(cur); i++ {
			cur[i] += uint8((int(cur[i-bpp]) + int(prev[i])) / 2)
		}
	case 4: // Paeth
		if prev == nil { // with a zero row above, Paeth is Sub
			for i := bpp; i < len(cur); i++ {
				cur[i] += cur[i-bpp]
			}
			break
		}
		paeth(cur, prev[:len(cur)], bpp)
	default:
		return fmt.Errorf("png: bad filter type %d", f)
	}
	return nil
}

// paeth undoes the Paeth filter, one channel at a time so that the
// predictor's left and upper-left bytes stay in registers.
func paeth(cur, prev []uint8, bpp int) {
	for c := range bpp {
		var a, b, cc int // left, up, upper-left: zero before the first pixel
		for i := c; i < len(cur); i += bpp {
			b = int(prev[i])
			p := a + b - cc
			pa, pb, pc := p-a, p-b, p-cc
			if pa < 0 {
				pa = -pa
			}
			if pb < 0 {
				pb = -pb
			}
			if pc < 0 {
				pc = -pc
			}
			pred := cc
			if pa <= pb && pa <= pc {
				pred = a
			} else if pb <= pc {
				pred = b
			}
			a = int(cur[i] + uint8(pred))
			cur[i] = uint8(a)
			cc = b
		}
	}
}
