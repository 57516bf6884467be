package preprocess

import (
	"context"
	"image"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// benchImage is a 1024×1024 RGB image, the size of most MVTec-AD categories.
func benchImage(b *testing.B) image.Image {
	img, err := Decode("testdata/images/big.png")
	if err != nil {
		b.Fatal(err)
	}
	p, _ := toPlane(img)
	big := image.NewRGBA(image.Rect(0, 0, 1024, 1024))
	row := make([]uint8, p.w*3)
	for y := range 1024 {
		packRow(row, p, y%p.h)
		for x := range 1024 {
			copy(big.Pix[y*big.Stride+4*x:], row[3*(x%p.w):3*(x%p.w)+3])
			big.Pix[y*big.Stride+4*x+3] = 255
		}
	}
	return big
}

// BenchmarkImage is resize and normalisation alone, 1024² RGB to 518².
func BenchmarkImage(b *testing.B) {
	img := benchImage(b)
	spec := DAPO()
	dst := make([]float32, spec.ImageLen())
	for b.Loop() {
		if err := spec.Image(dst, img); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMask is the bilinear mask resize with thresholding, 1024² to 518².
func BenchmarkMask(b *testing.B) {
	pix := make([]uint8, 1024*1024)
	for i := range pix {
		if (i/1024-500)*(i/1024-500)+(i%1024-400)*(i%1024-400) < 200*200 {
			pix[i] = 1
		}
	}
	spec := DAPO()
	dst := make([]uint8, spec.Size*spec.Size)
	for b.Loop() {
		if err := spec.Mask(dst, pix, 1024, 1024); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFiles is the whole path, decode + resize + normalise to 518, over
// every image in -images (default testdata/images), and reports images/s.
func BenchmarkFiles(b *testing.B) {
	dir := *imagesFlag
	if dir == "" {
		dir = "testdata/images"
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var paths []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && e.Name() != "mask.png" && slices.Contains([]string{".png", ".jpg", ".JPG", ".jpeg"}, ext) {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	if len(paths) == 0 {
		b.Fatalf("no images in %s", dir)
	}
	spec := DAPO()
	dst := make([]float32, len(paths)*spec.ImageLen())
	cpu0 := cpuTime()
	for b.Loop() {
		if err := spec.Files(context.Background(), dst, paths); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N * len(paths))
	b.ReportMetric(n/b.Elapsed().Seconds(), "images/s")
	// CPU time per image holds steady on a shared machine, where wall
	// time depends on what else runs.
	b.ReportMetric((cpuTime()-cpu0).Seconds()*1000/n, "cpu-ms/image")
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkResizeRGB is the resampler alone on a packed 1024² RGB plane,
// squashed to 518² (MVTec-AD's images into DAPO's input).
func BenchmarkResizeRGB(b *testing.B) {
	src := plane{pix: make([]uint8, 1024*1024*3), w: 1024, h: 1024, stride: 1024 * 3, ch: 3, ps: 3}
	for i := range src.pix {
		src.pix[i] = uint8(i * 7 >> 3)
	}
	var sum int
	for b.Loop() {
		resize(src, 518, 518, bicubic, func(y int, row []uint8) { sum += int(row[0]) })
	}
	_ = sum
}
