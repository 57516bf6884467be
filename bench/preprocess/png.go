package preprocess

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"sync"

	"github.com/dapobench/dapobench/internal/budget"
)

// This file decodes the common PNGs of the benchmarks (8-bit grayscale,
// RGB and RGBA, not interlaced) straight into a plane: each scanline is
// inflated into its row of the plane and unfiltered in place against the
// row above, so the image exists once, in the layout the resampler reads,
// with no image.Image, no RGB→RGBA expansion and no conversion pass. The
// pixels are those image/png decodes (the PNG specification leaves no
// choice); any other PNG (palette, 16-bit, gray+alpha, interlaced) goes
// through image/png (decodePlane falls back).

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

// pngChunks walks the chunks of a PNG after its signature, checking each
// chunk's CRC as image/png does, and reads the IDAT chunks as one stream.
type pngChunks struct {
	r    *bufio.Reader
	left uint32 // bytes left in the current IDAT; its CRC follows them
	crc  hash.Hash32
	bad  bool // the stream met something other than IDAT data
}

// next reads a chunk header.
func (c *pngChunks) next() (typ string, n uint32, ok bool) {
	var head [8]byte
	if _, err := io.ReadFull(c.r, head[:]); err != nil {
		return "", 0, false
	}
	n = binary.BigEndian.Uint32(head[:4])
	c.crc = crc32.NewIEEE()
	c.crc.Write(head[4:])
	return string(head[4:]), n, n <= 0x7fffffff
}

// body reads a whole (non-IDAT) chunk and checks its CRC.
func (c *pngChunks) body(n uint32) ([]byte, bool) {
	if n > 1<<24 {
		return nil, false
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.r, b); err != nil {
		return nil, false
	}
	c.crc.Write(b)
	return b, c.checkCRC()
}

func (c *pngChunks) checkCRC() bool {
	var b [4]byte
	if _, err := io.ReadFull(c.r, b[:]); err != nil {
		return false
	}
	return binary.BigEndian.Uint32(b[:]) == c.crc.Sum32()
}

// Read reads IDAT data across consecutive IDAT chunks.
func (c *pngChunks) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.bad || !c.checkCRC() {
			c.bad = true
			return 0, errNotFast
		}
		typ, n, ok := c.next()
		if !ok || typ != "IDAT" {
			c.bad = true
			return 0, errNotFast
		}
		c.left = n
	}
	if uint32(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	c.left -= uint32(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
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
func decodePNG(data []byte) (plane, error) {
	if !bytes.HasPrefix(data, pngSignature) {
		return plane{}, errNotFast
	}
	c := &pngChunks{r: bufio.NewReaderSize(bytes.NewReader(data[len(pngSignature):]), 1<<16)}
	typ, n, ok := c.next()
	if !ok || typ != "IHDR" || n != 13 {
		return plane{}, errNotFast
	}
	ihdr, ok := c.body(n)
	if !ok {
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
	for {
		typ, n, ok = c.next()
		if !ok {
			return plane{}, errNotFast
		}
		if typ == "IDAT" {
			break
		}
		if !ancillary(typ) || (typ == "PLTE" && ctype == 0) {
			return plane{}, errNotFast
		}
		if _, ok := c.body(n); !ok {
			return plane{}, errNotFast
		}
	}
	c.left = n
	p, err := inflateRows(c, w, h, bpp)
	if err != nil {
		return plane{}, errNotFast
	}
	// What image/png checks after the pixels: the rest of the current
	// IDAT is empty and its CRC right; then every chunk up to IEND has a
	// good CRC (later IDATs are ignored), with no critical surprises.
	if c.left != 0 || c.bad || !c.checkCRC() {
		putPix(p.pix)
		return plane{}, errNotFast
	}
	for {
		typ, n, ok = c.next()
		if !ok || (!ancillary(typ) && typ != "IDAT" && typ != "IEND") || typ == "PLTE" {
			putPix(p.pix)
			return plane{}, errNotFast
		}
		if _, ok := c.body(n); !ok {
			putPix(p.pix)
			return plane{}, errNotFast
		}
		if typ == "IEND" {
			if n != 0 {
				putPix(p.pix)
				return plane{}, errNotFast
			}
			return p, nil
		}
	}
}

// inflateRows reads h filtered scanlines of w·bpp bytes from the IDAT
// stream, unfilters them in place, and checks that the zlib stream ends
// (with a good checksum) right after the last one.
func inflateRows(c *pngChunks, w, h, bpp int) (plane, error) {
	z, err := zlib.NewReader(c)
	if err != nil {
		return plane{}, err
	}
	stride := w * bpp
	pix := getPix(stride * h)
	fail := func(err error) (plane, error) {
		putPix(pix)
		return plane{}, err
	}
	var filter [1]byte
	for y := range h {
		row := pix[y*stride : (y+1)*stride]
		if _, err := io.ReadFull(z, filter[:]); err != nil {
			return fail(err)
		}
		if _, err := io.ReadFull(z, row); err != nil {
			return fail(err)
		}
		var prev []uint8
		if y > 0 {
			prev = pix[(y-1)*stride : y*stride]
		}
		if err := unfilter(filter[0], row, prev, bpp); err != nil {
			return fail(err)
		}
	}
	// The zlib stream must end here (checking its checksum), as image/png
	// requires.
	n, err := 0, error(nil)
	for i := 0; n == 0 && err == nil; i++ {
		if i == 100 {
			return fail(io.ErrNoProgress)
		}
		n, err = z.Read(filter[:])
	}
	if n != 0 || err != io.EOF {
		return fail(errors.New("png: too much pixel data"))
	}
	return plane{pix: pix, w: w, h: h, stride: stride, ch: min(bpp, 3), ps: bpp, pooled: true}, nil
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
