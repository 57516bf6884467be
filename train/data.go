package train

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"

	"github.com/dapobench/dapobench/bench/preprocess"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/runner"
)

// example is one training image and the pixel class of its defect.
type example struct {
	sample loaders.Sample
	class  int
}

// trainingSet is the training data of the zero-shot protocol: the test
// split of the training dataset, every category (docs/methods.md#train-dapo-data,
// docs/methods.md#dapo-protocol).
type trainingSet struct {
	examples []example
	spec     preprocess.Spec
	// rule reads the resized masks (MaskRule).
	rule MaskRule
	// hash identifies the samples and their classes, so that a resumed
	// run reads the data it started with.
	hash string
	// APRIL-GAN and MultiADS: the class vectors of each category (rows
	// [C·De], nil for the other schemes), whether a batch of one image
	// reads its dice loss by rows (InDiceRows), and the mosaic
	// augmentation: its rate, the seed of its draws, and the test images
	// of each category by defect folder.
	texts    map[string][]float32
	classes  int
	diceRows bool
	augRate  float64
	seed     uint64
	folders  map[string]*mosaicFolders
}

// loadTrainingSet reads the dataset and checks every sample before the
// first step: an anomalous image needs a mask and a pixel class.
func loadTrainingSet(ctx context.Context, h *Head, dataset string, opts loaders.Options, m *clip.Manifest, rule MaskRule) (*trainingSet, error) {
	set, err := loaders.Load(ctx, dataset, opts)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	ts := &trainingSet{spec: preprocess.OpenAI(m.ImageSize), rule: rule}
	for c := range 3 {
		ts.spec.Mean[c], ts.spec.Std[c] = float32(m.Mean[c]), float32(m.Std[c])
	}
	hs := sha256.New()
	for _, s := range set.Samples {
		if s.Split != loaders.Test {
			continue
		}
		k, err := h.PixelClass(s)
		if err != nil {
			return nil, fmt.Errorf("train: %s: %w", dataset, err)
		}
		if s.Label == 1 && s.MaskPath == "" {
			return nil, fmt.Errorf("train: %s: %s: anomalous image without a mask; the pixel loss needs one", dataset, s.RelImage)
		}
		ts.examples = append(ts.examples, example{s, k})
		fmt.Fprintf(hs, "%s %s %d %d\n", s.RelImage, s.RelMask, s.Label, k)
	}
	if len(ts.examples) == 0 {
		return nil, fmt.Errorf("train: %s: no test samples to train on under %s", dataset, opts.Root)
	}
	ts.hash = hex.EncodeToString(hs.Sum(nil))
	return ts, nil
}

// order is the example order of an epoch: a permutation drawn from a PCG
// stream keyed by the seed and the epoch, so that a resumed run visits
// the images in the order an uninterrupted one does. (torch's
// DataLoader(shuffle=True) order cannot be reproduced outside torch.)
func (ts *trainingSet) order(seed uint64, epoch int) []int {
	return EpochOrder(seed, epoch, len(ts.examples))
}

// EpochOrder is the order in which a run visits its n training images in
// epoch (0-based): the samples in loader order, permuted by a PCG stream of
// the seed and the epoch.
func EpochOrder(seed uint64, epoch, n int) []int {
	return rand.New(rand.NewPCG(seed, uint64(epoch)+0x5eed)).Perm(n)
}

// batches cuts an order into batches of n; the last one may be smaller,
// as DataLoader's default drop_last=False keeps it.
func batches(order []int, n int) [][]int {
	var out [][]int
	for len(order) > 0 {
		k := min(n, len(order))
		out = append(out, order[:k])
		order = order[k:]
	}
	return out
}

// feeds prepares the data inputs of a batch: pixels, masks, pixel
// classes and labels. A mask is resized as the official datasets resize
// it (the 0/255 image, PIL bilinear: Spec.MaskLevels) and read with the
// run's MaskRule: DAPO's trainer keeps only the pixels at level 255,
// AnomalyCLIP's those at 128 or more. Normal images get an empty mask, as
// the official datasets give.
func (ts *trainingSet) feeds(ctx context.Context, epoch int, idx []int) (map[string]runner.Tensor, error) {
	n, s := len(idx), ts.spec.Size
	il := ts.spec.ImageLen()
	pixels := make([]float32, n*il)
	mask := make([]float32, n*s*s)
	m8 := make([]uint8, s*s)
	// Mosaics first (docs/methods.md#train-mosaic); the other images are
	// decoded together.
	var plain []int
	var paths []string
	for i, j := range idx {
		if ts.augRate > 0 && mosaicStream(ts.seed, epoch, j).Float64() < ts.augRate {
			r := mosaicStream(ts.seed, epoch, j)
			r.Float64()
			img, mk, w, h, err := ts.folders[ts.examples[j].sample.Category].mosaic(r)
			if err != nil {
				return nil, fmt.Errorf("train: mosaic for %s: %w", ts.examples[j].sample.RelImage, err)
			}
			if err := ts.spec.Image(pixels[i*il:(i+1)*il], img); err != nil {
				return nil, fmt.Errorf("train: mosaic for %s: %w", ts.examples[j].sample.RelImage, err)
			}
			if err := ts.spec.MaskLevels(m8, mk, w, h); err != nil {
				return nil, fmt.Errorf("train: mosaic for %s: %w", ts.examples[j].sample.RelImage, err)
			}
			ts.readMask(mask[i*s*s:(i+1)*s*s], m8)
			continue
		}
		plain = append(plain, i)
		paths = append(paths, ts.examples[j].sample.ImagePath)
	}
	if len(plain) == n {
		if err := ts.spec.Files(ctx, pixels, paths); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	} else if len(plain) > 0 {
		buf := make([]float32, len(plain)*il)
		if err := ts.spec.Files(ctx, buf, paths); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		for k, i := range plain {
			copy(pixels[i*il:(i+1)*il], buf[k*il:(k+1)*il])
		}
	}
	class := make([]int64, n)
	label := make([]float32, n)
	for _, i := range plain {
		j := idx[i]
		e := ts.examples[j]
		if e.sample.Label == 0 {
			continue
		}
		raw, err := loaders.ReadMask(e.sample.MaskPath)
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		if err := ts.spec.MaskLevels(m8, raw.Pix, raw.Width, raw.Height); err != nil {
			return nil, fmt.Errorf("train: %s: %w", e.sample.RelMask, err)
		}
		ts.readMask(mask[i*s*s:(i+1)*s*s], m8)
	}
	for i, j := range idx {
		e := ts.examples[j]
		class[i], label[i] = int64(e.class), float32(e.sample.Label)
	}
	feeds := map[string]runner.Tensor{
		InPixels: {Shape: ts.spec.Shape(n), Float32: pixels},
		InMask:   {Shape: []int64{int64(n), int64(s), int64(s)}, Float32: mask},
		InClass:  {Shape: []int64{int64(n)}, Int64: class},
	}
	if ts.texts == nil {
		feeds[InLabel] = runner.Tensor{Shape: []int64{int64(n)}, Float32: label}
		return feeds, nil
	}
	var text []float32
	for _, j := range idx {
		text = append(text, ts.texts[ts.examples[j].sample.Category]...)
	}
	de := len(text) / (n * ts.classes)
	feeds[InText] = runner.Tensor{Shape: []int64{int64(n), int64(ts.classes), int64(de)}, Float32: text}
	if ts.diceRows {
		rows := float32(0)
		if n == 1 {
			rows = 1
		}
		feeds[InDiceRows] = runner.Tensor{Shape: []int64{1}, Float32: []float32{rows}}
	}
	return feeds, nil
}

// readMask sets dst to 1 where the resized mask levels m8 are defect under
// the run's MaskRule.
func (ts *trainingSet) readMask(dst []float32, m8 []uint8) {
	for p, v := range m8 {
		if ts.rule.Defect(v) {
			dst[p] = 1
		}
	}
}
