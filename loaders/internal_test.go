package loaders

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/internal/budget"
	"github.com/dapobench/dapobench/internal/budget/budgettest"
)

func TestNaturalCompare(t *testing.T) {
	in := []string{"10.png", "1_mask.png", "2.png", "1.png", "0.png", "10_mask.png", "001.png", "01.png", "b2", "a10", "a9"}
	slices.SortFunc(in, naturalCompare)
	want := []string{"0.png", "1.png", "01.png", "001.png", "1_mask.png", "2.png", "10.png", "10_mask.png", "a9", "a10", "b2"}
	if !slices.Equal(in, want) {
		t.Errorf("got  %v\nwant %v", in, want)
	}
}

func writePNG(t *testing.T, img image.Image) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "m.png")
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadMask(t *testing.T) {
	r := image.Rect(0, 0, 3, 2)
	gray := image.NewGray(r)
	gray.Pix = []uint8{0, 255, 0, 0, 0, 255}
	classIDs := image.NewGray(r)
	classIDs.Pix = []uint8{0, 1, 3, 0, 0, 0}
	// Palette index 0 is a non-black colour: reading by colour would call
	// every pixel defect; reading by index must not.
	pal := image.NewPaletted(r, color.Palette{color.RGBA{200, 10, 10, 255}, color.RGBA{0, 0, 0, 255}, color.RGBA{0, 0, 0, 255}})
	pal.Pix = []uint8{0, 2, 0, 1, 0, 0}
	rgb := image.NewRGBA(r)
	for i := range 6 {
		rgb.Pix[4*i+3] = 255
	}
	rgb.Pix[4*4+2] = 255 // only the blue channel of pixel 4
	g16 := image.NewGray16(r)
	g16.SetGray16(2, 0, color.Gray16{Y: 1})
	cases := []struct {
		name   string
		img    image.Image
		want   []uint8
		binary bool
		values []uint16
	}{
		{"gray 0/255", gray, []uint8{0, 1, 0, 0, 0, 1}, true, []uint16{0, 255}},
		{"class ids", classIDs, []uint8{0, 1, 1, 0, 0, 0}, false, []uint16{0, 1, 3}},
		{"paletted by index", pal, []uint8{0, 1, 0, 1, 0, 0}, false, []uint16{0, 1, 2}},
		{"rgb any channel", rgb, []uint8{0, 0, 0, 0, 1, 0}, true, []uint16{0, 255}},
		{"16-bit", g16, []uint8{0, 0, 1, 0, 0, 0}, true, []uint16{0, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, st, err := ReadMaskStats(writePNG(t, c.img))
			if err != nil {
				t.Fatal(err)
			}
			if m.Width != 3 || m.Height != 2 || !slices.Equal(m.Pix, c.want) {
				t.Errorf("mask %dx%d %v, want 3x2 %v", m.Width, m.Height, m.Pix, c.want)
			}
			if st.Binary != c.binary || !slices.Equal(st.Values, c.values) {
				t.Errorf("stats %+v, want binary=%v values %v", st, c.binary, c.values)
			}
		})
	}
}

func TestReadMaskErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.png")
	os.WriteFile(p, []byte("not a png"), 0o644)
	if _, err := ReadMask(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("error %v does not name %s", err, p)
	}
	if _, err := ReadMask(filepath.Join(t.TempDir(), "absent.png")); err == nil {
		t.Error("no error for a missing file")
	}
}

// TestReadMaskBombs reads masks whose headers declare 10^10 pixels, as the
// pipeline, training and reports read masks: the pixel budget refuses each
// with an error naming the file, before anything is allocated.
func TestReadMaskBombs(t *testing.T) {
	for _, name := range []string{"rgb.png", "palette.png", "gray16.png", "gray.png"} {
		p := budgettest.Bomb(t, name)
		budgettest.Allocs(t, 1<<20, func() {
			_, err := ReadMask(p)
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), p) {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
	// A raised budget lets the header through; the decoder then finds the
	// data missing (the PNG decoder allocates the image first, so the
	// raised budget here stays small).
	t.Setenv(budget.PixelsEnv, "20000000000")
	budgettest.Allocs(t, 1<<20, func() {
		if _, err := ReadMask(budgettest.Bomb(t, "thin.png")); !errors.Is(err, ErrCorruptImage) {
			t.Errorf("thin.png: %v", err)
		}
	})
}

// FuzzDecodeMask feeds arbitrary bytes through the one image decoder of
// the loaders and the mask reading under a small pixel budget: no panic,
// and no allocation beyond what the budget and the input allow, so that a
// decompression bomb the fuzzer finds fails the run.
func FuzzDecodeMask(f *testing.F) {
	r := image.Rect(0, 0, 5, 3)
	pal := image.NewPaletted(r, color.Palette{color.Black, color.White})
	pal.Pix[4] = 1
	for _, img := range []image.Image{image.NewGray(r), pal, image.NewRGBA(r), image.NewGray16(r)} {
		var b bytes.Buffer
		png.Encode(&b, img)
		f.Add(b.Bytes())
	}
	var j bytes.Buffer
	jpeg.Encode(&j, image.NewRGBA(r), nil)
	f.Add(j.Bytes())
	for _, name := range []string{"rgb.png", "palette.png", "thin.png", "rgb.jpg"} {
		if b, err := os.ReadFile(budgettest.Bomb(f, name)); err == nil {
			f.Add(b)
		}
	}
	budgettest.Limit(f, budgettest.SmallPixels, 1<<16)
	f.Fuzz(func(t *testing.T, data []byte) {
		// The budget's pixels at 8 bytes (RGBA64) plus the mask, and the
		// decoders' own buffers.
		budgettest.Allocs(t, 1<<20+16*uint64(len(data)), func() {
			img, err := decodeImageFrom(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				return
			}
			m, _ := maskOf(img)
			if b := img.Bounds(); len(m.Pix) != b.Dx()*b.Dy() {
				t.Fatalf("mask of %d pixels for a %v image", len(m.Pix), b)
			}
		})
	})
}

func TestResolve(t *testing.T) {
	l := &loader{root: "/data/visa"}
	for _, bad := range []string{"", "/etc/passwd", "../x.JPG", "candle/../../x", `candle\..\x`} {
		if _, err := l.resolve(l.root, bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, ok := range []string{"candle/Data/Images/Normal/0000.JPG", "candle/../capsules/x.JPG"} {
		if _, err := l.resolve(l.root, ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// Fuzz targets for every parser of split and metadata files: they must
// return an error, never panic, on any input.

func FuzzVisASplit(f *testing.F) {
	f.Add([]byte("object,split,label,image,mask\r\ncandle,train,normal,candle/Data/Images/Normal/0000.JPG,\r\n"))
	f.Add([]byte("object,split,label,image,mask\ncandle,test,anomaly,candle/Data/Images/Anomaly/000.JPG,candle/Data/Masks/Anomaly/000.png\n"))
	f.Add([]byte("object,split\n\"a\"\"b,c"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := readVisASplit(bytes.NewReader(data))
		if err == nil {
			for _, r := range rows {
				if r.split != Train && r.split != Test || r.line < 2 {
					t.Fatalf("accepted row %+v", r)
				}
			}
		}
	})
}

func FuzzImageAnno(f *testing.F) {
	f.Add([]byte("image,label,mask\r\ncandle/a.JPG,\"chunk of wax missing,weird candle wick\",candle/a.png\r\n"))
	f.Add([]byte("label,image\nx,y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		readImageAnno(bytes.NewReader(data))
	})
}

func FuzzRealIADJSON(f *testing.F) {
	f.Add([]byte(`{"meta": {"prefix": "audiojack/", "normal_class": "OK"}, "train": [{"category": "audiojack", "anomaly_class": "OK", "image_path": "OK/S0001/a_C1_.jpg", "mask_path": null}], "test": []}`))
	f.Add([]byte(`{"meta": null, "train": [], "test": [1]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parseRealIAD(data)
		if err != nil {
			return
		}
		for _, raw := range append(file.Train, file.Test...) {
			if r, err := parseRealIADRecord(raw); err == nil && r.ImagePath == "" {
				t.Fatal("accepted an empty image_path")
			}
		}
	})
}

func FuzzMeta(f *testing.F) {
	f.Add([]byte(`{"train": {}, "test": {"bottle": [{"img_path": "bottle/test/good/000.png", "mask_path": "", "cls_name": "bottle", "specie_name": "good", "anomaly": 0}]}}`))
	f.Add([]byte(`{"candle": [{"img_path": "a", "mask_path": "", "product_cls": "candle", "defect_cls": "normal", "anomaly": 0}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMeta(data)
		if err != nil {
			return
		}
		var b bytes.Buffer
		if _, err := m.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
	})
}
