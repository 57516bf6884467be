package preprocess

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"testing"
)

// samePlane reports whether two planes hold the same channel values.
func samePlane(a, b plane) bool {
	if a.w != b.w || a.h != b.h {
		return false
	}
	for y := range a.h {
		for x := range a.w {
			for c := range 3 {
				ca, cb := min(c, a.ch-1), min(c, b.ch-1) // gray reads as R=G=B
				if a.pix[y*a.stride+x*a.ps+ca] != b.pix[y*b.stride+x*b.ps+cb] {
					return false
				}
			}
		}
	}
	return true
}

// viaImage is the slow path: image/png, then toPlane.
func viaImage(t testing.TB, data []byte) (plane, error) {
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return plane{}, err
	}
	p, err := toPlane(img)
	if err != nil {
		t.Fatalf("image/png decoded %T but toPlane failed: %v", img, err)
	}
	return p, nil
}

// noisy draws an image with smooth areas, edges and noise, so that the
// encoder picks every filter type somewhere.
func noisy(w, h int, seed uint64, model color.Model) image.Image {
	r := rand.New(rand.NewPCG(seed, 1))
	var img interface {
		image.Image
		Set(x, y int, c color.Color)
	}
	switch model {
	case color.GrayModel:
		img = image.NewGray(image.Rect(0, 0, w, h))
	case color.NRGBAModel:
		img = image.NewNRGBA(image.Rect(0, 0, w, h))
	default:
		img = image.NewRGBA(image.Rect(0, 0, w, h))
	}
	for y := range h {
		for x := range w {
			v := uint8(x*3 + y)
			if y%7 < 3 {
				v = uint8(r.IntN(256))
			}
			a := uint8(255)
			if model == color.NRGBAModel {
				a = uint8(x * y)
			}
			img.Set(x, y, color.NRGBA{v, uint8(x ^ y), uint8(255 - v), a})
		}
	}
	return img
}

func encode(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// chunk encodes one PNG chunk.
func chunk(typ string, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	b = append(b, typ...)
	b = append(b, body...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(append([]byte(typ), body...)))
}

// chunks splits a PNG into its chunks (after the signature).
func chunks(data []byte) [][]byte {
	var out [][]byte
	for rest := data[8:]; len(rest) >= 12; {
		n := int(binary.BigEndian.Uint32(rest)) + 12
		out = append(out, rest[:n])
		rest = rest[n:]
	}
	return out
}

// handPNG writes a w×h 8-bit PNG of colour type ct whose rows are random
// bytes under filter types first (row 0), then 0, 1, 2, 3, 4 in turn.
func handPNG(t testing.TB, w, h int, ct, first byte, seed uint64) []byte {
	bpp := map[byte]int{0: 1, 2: 3, 6: 4}[ct]
	r := rand.New(rand.NewPCG(seed, 2))
	var raw bytes.Buffer
	for y := range h {
		f := byte(y % 5)
		if y == 0 {
			f = first
		}
		raw.WriteByte(f)
		for range w * bpp {
			raw.WriteByte(byte(r.IntN(256)))
		}
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw.Bytes())
	zw.Close()
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 8, ct, 0, 0, 0)
	out := []byte(pngSignature)
	out = append(out, chunk("IHDR", ihdr)...)
	out = append(out, chunk("IDAT", z.Bytes())...)
	return append(out, chunk("IEND", nil)...)
}

// TestDecodePNG checks the direct PNG decoder against image/png on the
// test images and on synthetic ones: every colour type it takes, split and
// trailing IDAT chunks, ancillary chunks; the others must be left to
// image/png.
func TestDecodePNG(t *testing.T) {
	cases := map[string][]byte{}
	names, _ := filepath.Glob("testdata/images/*.png")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		cases[filepath.Base(n)] = b
	}
	for i, m := range []color.Model{color.GrayModel, color.RGBAModel, color.NRGBAModel} {
		cases[[]string{"gray", "rgb", "rgba"}[i]] = encode(t, noisy(61, 37, uint64(i), m))
		cases[[]string{"gray", "rgb", "rgba"}[i]+"-1px"] = encode(t, noisy(1, 1, uint64(i), m))
	}
	// The RGB image with its IDAT split in three, a trailing empty IDAT,
	// and text and tRNS chunks: the same pixels.
	base := encode(t, noisy(40, 30, 9, color.RGBAModel))
	cs := chunks(base)
	idat := cs[1][8 : len(cs[1])-4]
	split := append([]byte{}, base[:8]...)
	split = append(split, cs[0]...)
	split = append(split, chunk("tEXt", []byte("Comment\x00split"))...)
	split = append(split, chunk("tRNS", []byte{0, 1, 0, 2, 0, 3})...)
	split = append(split, chunk("IDAT", idat[:5])...)
	split = append(split, chunk("IDAT", idat[5:7])...)
	split = append(split, chunk("IDAT", idat[7:])...)
	split = append(split, chunk("IDAT", nil)...)
	split = append(split, cs[len(cs)-1]...)
	cases["split"] = split
	// Hand-filtered images: any bytes are valid filtered data, so random
	// rows under every filter type, the first row included, test the
	// unfiltering of each against image/png's.
	for _, ct := range []byte{0, 2, 6} {
		for first := range byte(5) {
			cases[fmt.Sprintf("filters-ct%d-first%d", ct, first)] = handPNG(t, 13, 11, ct, first, uint64(ct)*7+uint64(first))
		}
	}
	fast := 0
	for name, data := range cases {
		want, werr := viaImage(t, data)
		got, err := decodePNG(data)
		switch {
		case err == nil && werr != nil:
			t.Errorf("%s: decoded directly, image/png says %v", name, werr)
		case err == nil && !samePlane(got, want):
			t.Errorf("%s: pixels differ from image/png", name)
		case err != nil && !errors.Is(err, errNotFast):
			t.Errorf("%s: error %v, want errNotFast", name, err)
		case err == nil:
			fast++
		}
	}
	for _, name := range []string{"gray", "rgb", "rgba", "split", "big.png", "rgb8.png", "gray8.png", "rgba.png", "filters-ct2-first3", "filters-ct6-first4", "filters-ct0-first3"} {
		if _, err := decodePNG(cases[name]); err != nil {
			t.Errorf("%s: not decoded directly: %v", name, err)
		}
	}
	for _, name := range []string{"palette.png", "rgb16.png", "gray16.png", "la.png"} {
		if _, err := decodePNG(cases[name]); err == nil {
			t.Errorf("%s: decoded directly, want image/png", name)
		}
	}
	// Damage: a flipped byte in the image data must leave the verdict to
	// image/png.
	bad := append([]byte{}, base...)
	bad[8+len(cs[0])+20] ^= 0x55
	if _, err := decodePNG(bad); !errors.Is(err, errNotFast) {
		t.Errorf("damaged IDAT: %v", err)
	}
	t.Logf("%d of %d images decoded directly", fast, len(cases))
}

// FuzzDecodePNG: whatever the direct decoder accepts, image/png decodes
// to the same pixels.
func FuzzDecodePNG(f *testing.F) {
	for i, m := range []color.Model{color.GrayModel, color.RGBAModel, color.NRGBAModel} {
		f.Add(encode(f, noisy(9, 5, uint64(i), m)))
	}
	f.Add(mustReadF(f, "testdata/images/gray8.png"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if cfg, err := png.DecodeConfig(bytes.NewReader(b)); err != nil || cfg.Width*cfg.Height > 1<<16 {
			return
		}
		got, err := decodePNG(b)
		if err != nil {
			return
		}
		want, werr := viaImage(t, b)
		if werr != nil {
			t.Fatalf("decoded directly, image/png says %v", werr)
		}
		if !samePlane(got, want) {
			t.Fatal("pixels differ from image/png")
		}
	})
}

// TestDecodePNGUnderGC decodes and resizes the test PNGs many times while
// the collector runs almost constantly, in parallel: the C inflation and
// resampling hand Go memory to C, which the collector must never find in a
// bad state.
func TestDecodePNGUnderGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(1))
	names, _ := filepath.Glob("testdata/images/*.png")
	var files [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	spec := DAPO()
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := make([]float32, spec.ImageLen())
			for i := range 300 {
				p, err := decodePNG(files[(i+w)%len(files)])
				if err != nil {
					continue // left to image/png
				}
				spec.fill(dst, p, spec.lut())
				p.release()
			}
		}()
	}
	wg.Wait()
}
