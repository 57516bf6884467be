package train

import (
	"context"
	"image"
	"path/filepath"
	"testing"

	"github.com/dapobench/dapobench/bench/preprocess"
	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/loaders"
)

// TestMosaic: four images of the category drawn folder-first, pasted 2×2
// row by row on a canvas twice the first one's size, their masks likewise
// (zeros for normal images).
func TestMosaic(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := fixtures.Generate(ctx, dir, fixtures.DefaultSeed); err != nil {
		t.Fatal(err)
	}
	set, err := loaders.Load(ctx, loaders.MVTec, loaders.Options{Root: filepath.Join(dir, "mvtec")})
	if err != nil {
		t.Fatal(err)
	}
	var ex []example
	for _, s := range set.Samples {
		if s.Split == loaders.Test && s.Category == "bottle" {
			ex = append(ex, example{sample: s})
		}
	}
	f := newMosaicFolders(ex)["bottle"]
	if len(f.names) < 3 || f.names[0] != "broken_large" {
		t.Fatalf("folders %v", f.names)
	}
	anomalous := 0
	for seed := range uint64(8) {
		img, mask, w, h, err := f.mosaic(mosaicStream(seed, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		// replay the draws
		r := mosaicStream(seed, 0, 0)
		var tiles []loaders.Sample
		for range 4 {
			folder := f.names[r.IntN(len(f.names))]
			files := f.files[folder]
			tiles = append(tiles, files[r.IntN(len(files))])
		}
		first, err := preprocess.Decode(tiles[0].ImagePath)
		if err != nil {
			t.Fatal(err)
		}
		tw, th := first.Bounds().Dx(), first.Bounds().Dy()
		if w != 2*tw || h != 2*th || img.Bounds() != image.Rect(0, 0, w, h) || len(mask) != w*h {
			t.Fatalf("canvas %v (%d×%d, mask %d) for tiles of %d×%d", img.Bounds(), w, h, len(mask), tw, th)
		}
		for i, s := range tiles {
			x0, y0 := (i%2)*tw, (i/2)*th
			tile, err := preprocess.Decode(s.ImagePath)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range [][2]int{{0, 0}, {tw - 1, th - 1}, {tw / 2, th / 3}} {
				r1, g1, b1, _ := tile.At(p[0], p[1]).RGBA()
				r2, g2, b2, _ := img.At(x0+p[0], y0+p[1]).RGBA()
				if r1 != r2 || g1 != g2 || b1 != b2 {
					t.Fatalf("seed %d tile %d (%s) at %v: canvas %v, image %v", seed, i, s.RelImage, p, []uint32{r2, g2, b2}, []uint32{r1, g1, b1})
				}
			}
			defects := 0
			for y := range th {
				for x := range tw {
					if mask[(y0+y)*w+x0+x] != 0 {
						defects++
					}
				}
			}
			if (defects > 0) != (s.Label == 1) {
				t.Errorf("seed %d tile %d (%s, label %d): %d defect pixels", seed, i, s.RelImage, s.Label, defects)
			}
			if s.Label == 1 {
				anomalous++
			}
		}
	}
	if anomalous == 0 {
		t.Error("no anomalous tile was drawn: the test checks no mask")
	}
}
