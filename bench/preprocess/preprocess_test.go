package preprocess

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dapobench/dapobench/internal/budget"
	"github.com/dapobench/dapobench/internal/budget/budgettest"
)

// -images points BenchmarkFiles at a folder of images; the bench-preprocess
// make target fills one with images of the datasets' sizes.
var imagesFlag = flag.String("images", "", "folder of images for BenchmarkFiles (default testdata/images)")

func TestSpecs(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		size int
	}{{"DAPO", DAPO(), 518}, {"AnomalyCLIP", AnomalyCLIP(), 518}, {"WinCLIP", WinCLIP(), 240}} {
		if tc.spec.Size != tc.size || tc.spec.Mean != [3]float32{0.48145466, 0.4578275, 0.40821073} || tc.spec.Std != [3]float32{0.26862954, 0.26130258, 0.27577711} {
			t.Errorf("%s: %+v", tc.name, tc.spec)
		}
	}
	if got := fmt.Sprint(DAPO().Shape(4)); got != "[4 3 518 518]" {
		t.Errorf("Shape(4) = %s", got)
	}
}

// TestFiles checks that the parallel path writes each image into its own
// slot, identical to processing the images one by one.
func TestFiles(t *testing.T) {
	paths, err := filepath.Glob("testdata/images/*")
	if err != nil {
		t.Fatal(err)
	}
	paths = slices.DeleteFunc(paths, func(p string) bool { return strings.HasSuffix(p, "mask.png") })
	spec := WinCLIP()
	dst := make([]float32, len(paths)*spec.ImageLen())
	if err := spec.Files(context.Background(), dst, paths); err != nil {
		t.Fatal(err)
	}
	for i, p := range paths {
		img, err := Decode(p)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, spec.ImageLen())
		if err := spec.Image(want, img); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(dst[i*spec.ImageLen():(i+1)*spec.ImageLen()], want) {
			t.Errorf("image %d (%s) differs from Spec.Image", i, p)
		}
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, _ := filepath.Abs("testdata/images/rgb8.png")
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// A valid header claiming 20000×20000 pixels: IHDR's width and height,
	// then its CRC.
	huge := slices.Clone(raw)
	copy(huge[16:24], []byte{0, 0, 0x4e, 0x20, 0, 0, 0x4e, 0x20})
	binary.BigEndian.PutUint32(huge[29:33], crc32.ChecksumIEEE(huge[12:29]))
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "absent.png"), "no such file"},
		{"empty", write("empty.png", nil), "unknown format"},
		{"text", write("text.png", []byte("hello")), "unknown format"},
		{"truncated png", write("cut.png", raw[:len(raw)/2]), "not enough pixel data"},
		{"truncated jpeg", write("cut.jpg", mustRead(t, "testdata/images/photo.jpg")[:5000]), map[string]string{"go:image/jpeg": "short Huffman data", "libturbojpeg": "Premature end of JPEG file"}[JPEGDecoder]},
		{"too large", write("huge.png", huge), "20000×20000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode: %v; want an error naming %s and containing %q", err, tc.path, tc.want)
			}
			spec := WinCLIP()
			err = spec.Files(context.Background(), make([]float32, 3*spec.ImageLen()), []string{good, tc.path, good})
			if err == nil || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("Files: %v; want an error naming %s", err, tc.path)
			}
		})
	}

	spec := WinCLIP()
	img := image.NewGray(image.Rect(0, 0, 4, 4))
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"short destination", spec.Image(make([]float32, 10), img), "destination holds 10 values"},
		{"bad size", Spec{Size: 0}.Image(nil, img), "Spec.Size = 0"},
		{"zero std", Spec{Size: 2}.Image(make([]float32, 12), img), "Spec.Std[0] = 0"},
		{"empty image", spec.Image(make([]float32, spec.ImageLen()), image.NewGray(image.Rect(0, 0, 0, 0))), "empty image"},
		{"files destination", spec.Files(context.Background(), make([]float32, 5), []string{good}), "destination holds 5 values"},
		{"mask size", spec.Mask(make([]uint8, 240*240), make([]uint8, 5), 2, 2), "mask of 2×2 with 5 values"},
		{"mask destination", spec.Mask(make([]uint8, 3), make([]uint8, 4), 2, 2), "mask destination holds 3 values"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, tc.err, tc.want)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFilesCancel(t *testing.T) {
	spec := DAPO()
	paths := slices.Repeat([]string{"testdata/images/big.png"}, 64)
	dst := make([]float32, len(paths)*spec.ImageLen())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := spec.Files(ctx, dst, paths)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	// 64 images of 1100×830 take seconds; stopping between images returns
	// within about one image's time per worker.
	t.Logf("stopped after %v", time.Since(start))
}

// TestMaskEdges: empty masks stay empty, full masks stay full, and values
// other than 0 and 1 count as defect.
func TestMaskEdges(t *testing.T) {
	spec := OpenAI(7)
	dst := make([]uint8, 49)
	for _, tc := range []struct {
		name string
		fill uint8
		want uint8
	}{{"empty", 0, 0}, {"full of 1", 1, 1}, {"full of 255", 255, 1}, {"full of 3", 3, 1}} {
		if err := spec.Mask(dst, bytes.Repeat([]byte{tc.fill}, 30*20), 30, 20); err != nil {
			t.Fatal(err)
		}
		for i, v := range dst {
			if v != tc.want {
				t.Fatalf("%s: pixel %d = %d, want %d", tc.name, i, v, tc.want)
			}
		}
		// The levels of a uniform mask are uniform too: a full mask stays
		// at 255, which the training reading of DAPO needs (package train).
		if err := spec.MaskLevels(dst, bytes.Repeat([]byte{tc.fill}, 30*20), 30, 20); err != nil {
			t.Fatal(err)
		}
		for i, v := range dst {
			if v != 255*tc.want {
				t.Fatalf("%s: level of pixel %d = %d, want %d", tc.name, i, v, 255*tc.want)
			}
		}
	}
}

// TestTranslucentRGBA: premultiplied images with alpha are unpremultiplied
// before alpha is dropped, so colour under transparency is kept as Pillow
// keeps it in straight-alpha files.
func TestTranslucentRGBA(t *testing.T) {
	straight := image.NewNRGBA(image.Rect(0, 0, 3, 3))
	pre := image.NewRGBA(straight.Rect)
	alpha := make([]float64, 9)
	for i := range 9 {
		c := color.NRGBA{R: uint8(28 * i), G: 200, B: 17, A: uint8(255 - 25*i)}
		straight.Set(i%3, i/3, c)
		pre.Set(i%3, i/3, c)
		alpha[i] = float64(c.A)
	}
	spec := OpenAI(3) // same size: no resampling, pixels compare one to one
	a, b := make([]float32, spec.ImageLen()), make([]float32, spec.ImageLen())
	if err := spec.Image(a, straight); err != nil {
		t.Fatal(err)
	}
	if err := spec.Image(b, pre); err != nil {
		t.Fatal(err)
	}
	// Premultiplied 8-bit storage loses about 255/alpha levels; reading it
	// without unpremultiplying would lose far more (200 → 43 at alpha 55).
	for i := range a {
		c, p := i/9, i%9
		tol := (255/alpha[p] + 1) / 255 / float64(spec.Std[c])
		if d := float64(a[i] - b[i]); d > tol || d < -tol {
			t.Errorf("channel %d pixel %d (alpha %v): straight %v, premultiplied %v", c, p, alpha[p], a[i], b[i])
		}
	}
}

func ExampleSpec_Files() {
	spec := DAPO()
	paths := []string{"testdata/images/rgb8.png", "testdata/images/gray8.png"}
	// The slice that backs the [2, 3, 518, 518] pixel tensor.
	pixels := make([]float32, len(paths)*spec.ImageLen())
	if err := spec.Files(context.Background(), pixels, paths); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(spec.Shape(len(paths)), len(pixels))
	// Output: [2 3 518 518] 1609944
}

func ExampleSpec_Mask() {
	// A 4×2 mask with a defect on the right half, resized for WinCLIP.
	spec := WinCLIP()
	m := make([]uint8, spec.Size*spec.Size)
	if err := spec.Mask(m, []uint8{0, 0, 1, 1, 0, 0, 1, 1}, 4, 2); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m[0], m[spec.Size-1])
	// Output: 0 1
}

// TestDecodeBombs decodes images whose headers declare 10^10 and 4·10^9
// pixels in a few dozen bytes: the pixel budget refuses them, naming the
// file and how to raise it, before anything is allocated.
func TestDecodeBombs(t *testing.T) {
	for _, name := range []string{"gray.png", "rgb.jpg"} {
		p := budgettest.Bomb(t, name)
		budgettest.Allocs(t, 1<<20, func() {
			_, err := Decode(p)
			if !errors.Is(err, budget.ErrExceeded) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), budget.PixelsEnv) {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
}

// FuzzDecode feeds arbitrary bytes through decoding and preprocessing
// under a small pixel budget: whatever decodes must preprocess without
// panicking, and nothing may allocate more than the budget and the input
// allow (a bomb the fuzzer finds fails the run).
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"gray8.png", "la.png", "palette.png", "thin.png"} {
		f.Add(mustReadF(f, "testdata/images/"+name))
	}
	var tiny bytes.Buffer
	png.Encode(&tiny, image.NewGray16(image.Rect(0, 0, 2, 3)))
	f.Add(tiny.Bytes())
	for _, name := range []string{"gray.png", "rgb.jpg"} {
		f.Add(mustReadF(f, budgettest.Bomb(f, name)))
	}
	budgettest.Limit(f, budgettest.SmallPixels, 1<<16)
	f.Fuzz(func(t *testing.T, b []byte) {
		budgettest.Allocs(t, 1<<20+16*uint64(len(b)), func() {
			img, err := decode(bytes.NewReader(b))
			if err != nil {
				return
			}
			spec := OpenAI(5)
			if err := spec.Image(make([]float32, spec.ImageLen()), img); err != nil {
				t.Errorf("decoded %T but preprocessing failed: %v", img, err)
			}
		})
	})
}

func mustReadF(f *testing.F, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// TestYCbCr checks the row-wise chroma indexing against image.YCbCr.At for
// every subsampling ratio, on a sub-image with an odd origin.
func TestYCbCr(t *testing.T) {
	for _, ratio := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		full := image.NewYCbCr(image.Rect(0, 0, 23, 17), ratio)
		for i := range full.Y {
			full.Y[i] = uint8(i * 7)
		}
		for i := range full.Cb {
			full.Cb[i], full.Cr[i] = uint8(i*13), uint8(255-i*5)
		}
		img := full.SubImage(image.Rect(3, 5, 22, 16)).(*image.YCbCr)
		p, err := toPlane(img)
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		for y := range p.h {
			for x := range p.w {
				c := img.At(b.Min.X+x, b.Min.Y+y).(color.YCbCr)
				r, g, bb := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
				if got := p.pix[y*p.stride+3*x:][:3]; got[0] != r || got[1] != g || got[2] != bb {
					t.Fatalf("%v (%d,%d): %v, want %v", ratio, x, y, got, []uint8{r, g, bb})
				}
			}
		}
	}
}
