package train

import (
	"fmt"
	"image"
	"image/draw"
	"math/rand/v2"
	"slices"

	"github.com/dapobench/dapobench/bench/preprocess"
	"github.com/dapobench/dapobench/loaders"
)

// Mosaic augmentation of APRIL-GAN's and MultiADS' MVTecDataset
// (docs/methods.md#train-mosaic): with probability aug_rate a training
// image is replaced by four images of its category's test split pasted
// 2×2 into a canvas twice the size of the first, row by row, each drawn by
// choosing a defect folder (good included) and then a file in it
// uniformly; the masks are pasted likewise. The sample keeps its label and
// its own defect folder, so MultiADS labels every defect pixel of the
// mosaic with the class of the original sample's folder, a known bug of
// the official code kept here.
// The draws are this package's own (Python's random and os.listdir order
// cannot be reproduced), from a PCG stream keyed by the seed, the epoch
// and the sample.

// mosaicFolders lists a category's test images by defect folder ("good"
// for normal images), folders and files in name order.
type mosaicFolders struct {
	names []string
	files map[string][]loaders.Sample
}

func newMosaicFolders(examples []example) map[string]*mosaicFolders {
	out := map[string]*mosaicFolders{}
	for _, e := range examples {
		s := e.sample
		f := out[s.Category]
		if f == nil {
			f = &mosaicFolders{files: map[string][]loaders.Sample{}}
			out[s.Category] = f
		}
		folder := s.DefectType
		if s.Label == 0 {
			folder = "good"
		}
		if _, ok := f.files[folder]; !ok {
			f.names = append(f.names, folder)
		}
		f.files[folder] = append(f.files[folder], s)
	}
	for _, f := range out {
		slices.Sort(f.names)
		for _, v := range f.files {
			slices.SortFunc(v, func(a, b loaders.Sample) int {
				if a.RelImage < b.RelImage {
					return -1
				}
				if a.RelImage > b.RelImage {
					return 1
				}
				return 0
			})
		}
	}
	return out
}

// mosaicStream is the random stream of one sample in one epoch.
func mosaicStream(seed uint64, epoch, index int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0x6d6f73616963, uint64(epoch)<<32|uint64(index)))
}

// mosaic draws four images of f and returns the pasted image and its
// binary mask (0 or 255) at the canvas size.
func (f *mosaicFolders) mosaic(r *rand.Rand) (image.Image, []uint8, int, int, error) {
	var tiles []image.Image
	var masks []*loaders.Mask
	for range 4 {
		folder := f.names[r.IntN(len(f.names))]
		files := f.files[folder]
		s := files[r.IntN(len(files))]
		img, err := preprocess.Decode(s.ImagePath)
		if err != nil {
			return nil, nil, 0, 0, err
		}
		tiles = append(tiles, img)
		var m *loaders.Mask
		if s.Label == 1 && s.MaskPath != "" {
			if m, err = loaders.ReadMask(s.MaskPath); err != nil {
				return nil, nil, 0, 0, err
			}
		}
		masks = append(masks, m)
	}
	b0 := tiles[0].Bounds()
	w, h := b0.Dx(), b0.Dy()
	canvas := image.NewRGBA(image.Rect(0, 0, 2*w, 2*h))
	mask := make([]uint8, 4*w*h)
	for i, t := range tiles {
		x, y := (i%2)*w, (i/2)*h
		b := t.Bounds()
		draw.Draw(canvas, image.Rect(x, y, x+b.Dx(), y+b.Dy()), t, b.Min, draw.Src)
		m := masks[i]
		if m == nil {
			continue // a normal image pastes zeros onto zeros
		}
		for my := 0; my < m.Height && y+my < 2*h; my++ {
			for mx := 0; mx < m.Width && x+mx < 2*w; mx++ {
				v := uint8(0)
				if m.Pix[my*m.Width+mx] != 0 {
					v = 255
				}
				mask[(y+my)*2*w+x+mx] = v
			}
		}
	}
	if len(tiles) != 4 {
		return nil, nil, 0, 0, fmt.Errorf("mosaic of %d images", len(tiles))
	}
	return canvas, mask, 2 * w, 2 * h, nil
}
