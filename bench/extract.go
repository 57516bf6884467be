package bench

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/bench/preprocess"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Extractor produces the features of images: from the cache when an entry
// for (model, preprocessing, content) exists and is intact, else by running
// the image tower. The image encoder is frozen, so comparing prompt
// variants costs one pass of it, not one per variant.
type Extractor struct {
	model  *Model
	scheme Scheme
	spec   preprocess.Spec
	cache  *featcache.Cache // nil: no caching
	inputs map[string]runner.Tensor
	// modelKey and preKey are the model and preprocessing parts of the
	// cache key.
	modelKey, preKey string
	// Computed and Cached count images by where their features came from.
	// Complete updates them; read them when no Complete is running.
	Computed, Cached int
}

// NewExtractor prepares extraction for one model and scheme. cache may be
// nil.
func NewExtractor(m *Model, s Scheme, cache *featcache.Cache) (*Extractor, error) {
	if s.Variant() != m.Manifest.Variant {
		return nil, fmt.Errorf("bench: scheme %s needs a %s model, %s is %s", s.Name(), s.Variant(), m.Dir, m.Manifest.Variant)
	}
	in, err := s.ImageInputs(m)
	if err != nil {
		return nil, err
	}
	spec := preprocess.OpenAI(m.Manifest.ImageSize)
	for c := range 3 {
		spec.Mean[c], spec.Std[c] = float32(m.Manifest.Mean[c]), float32(m.Manifest.Std[c])
	}
	x := &Extractor{model: m, scheme: s, spec: spec, cache: cache, inputs: in}
	// Every variant of a scheme family stores the same features; the family
	// keeps schemes that extract different tensors from one model apart.
	family, _, _ := strings.Cut(s.Name(), "/")
	x.modelKey = m.ImageHash + "+" + hashInputs(in) + "+" + family
	x.preKey = fmt.Sprintf("squash %d pil-bicubic mean %v std %v jpeg %s", spec.Size, spec.Mean, spec.Std, preprocess.JPEGDecoder)
	return x, nil
}

// Spec is the preprocessing of the model's images.
func (x *Extractor) Spec() preprocess.Spec { return x.spec }

// hashInputs digests the extra image-tower inputs (name, shape, values),
// so that features computed with other visual prompts are never reused.
func hashInputs(in map[string]runner.Tensor) string {
	if len(in) == 0 {
		return "none"
	}
	names := make([]string, 0, len(in))
	for k := range in {
		names = append(names, k)
	}
	sort.Strings(names)
	h := sha256.New()
	var b [8]byte
	for _, k := range names {
		t := in[k]
		io.WriteString(h, k)
		for _, d := range t.Shape {
			binary.LittleEndian.PutUint64(b[:], uint64(d))
			h.Write(b[:])
		}
		for _, v := range t.Float32 {
			binary.LittleEndian.PutUint32(b[:4], math.Float32bits(v))
			h.Write(b[:4])
		}
		for _, v := range t.Int64 {
			binary.LittleEndian.PutUint64(b[:], uint64(v))
			h.Write(b[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// Batch is a group of images whose features are being obtained: the
// prepared part (content keys, cached entries, pixels of the misses) is
// done by Prepare, which can run ahead of Complete.
type Batch struct {
	Paths    []string
	keys     []featcache.Key
	features []Features
	miss     []int     // indices of images not in the cache
	pixels   []float32 // preprocessed misses, NCHW
}

// Prepare hashes the images, reads what the cache holds, and decodes and
// preprocesses the rest. A corrupt cache entry is counted by the cache and
// recomputed, never used.
func (x *Extractor) Prepare(ctx context.Context, paths []string) (*Batch, error) {
	return x.PrepareHashed(ctx, paths, nil)
}

// PrepareHashed is Prepare for images whose sha256 (as featcache.HashFile
// gives them, the cache keys) the caller already has, as a run does after
// fingerprinting a category; nil contents hashes the files.
func (x *Extractor) PrepareHashed(ctx context.Context, paths, contents []string) (*Batch, error) {
	b := &Batch{Paths: paths, keys: make([]featcache.Key, len(paths)), features: make([]Features, len(paths))}
	for i, p := range paths {
		if x.cache != nil {
			var content string
			if contents != nil {
				content = contents[i]
			} else {
				var err error
				if content, err = featcache.HashFile(p); err != nil {
					return nil, fmt.Errorf("bench: %w", err)
				}
			}
			b.keys[i] = featcache.Key{Model: x.modelKey, Preprocess: x.preKey, Content: content}
			e, err := x.cache.Get(ctx, b.keys[i])
			if err == nil {
				b.features[i] = e
				continue
			}
			if !errors.Is(err, featcache.ErrMiss) && !errors.Is(err, featcache.ErrCorrupt) {
				return nil, fmt.Errorf("bench: feature cache: %w", err)
			}
		}
		b.miss = append(b.miss, i)
	}
	if len(b.miss) > 0 {
		missPaths := make([]string, len(b.miss))
		for j, i := range b.miss {
			missPaths[j] = paths[i]
		}
		b.pixels = make([]float32, len(b.miss)*x.spec.ImageLen())
		if err := x.spec.Files(ctx, b.pixels, missPaths); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Computed is the number of the batch's images whose features the image
// tower computes (the cache misses).
func (b *Batch) Computed() int { return len(b.miss) }

// Complete runs the image tower on the batch's misses, stores their
// features in the cache, and returns the features of every image in order.
func (x *Extractor) Complete(ctx context.Context, b *Batch) ([]Features, error) {
	x.Cached += len(b.Paths) - len(b.miss)
	if len(b.miss) == 0 {
		return b.features, nil
	}
	in := make(map[string]runner.Tensor, len(x.inputs)+1)
	for k, v := range x.inputs {
		in[k] = v
	}
	in[clip.InPixels] = runner.Tensor{Shape: x.spec.Shape(len(b.miss)), Float32: b.pixels}
	img, err := x.model.ImageTower(ctx)
	if err != nil {
		return nil, err
	}
	out, err := img.RunInto(ctx, in, outputBuffers(img, len(b.miss)))
	if err != nil {
		return nil, fmt.Errorf("bench: image tower: %w", err)
	}
	feats, err := x.scheme.Extract(ctx, x.model, out, len(b.miss))
	if err != nil {
		return nil, err
	}
	if len(feats) != len(b.miss) {
		return nil, fmt.Errorf("bench: scheme %s extracted %d feature sets for %d images", x.scheme.Name(), len(feats), len(b.miss))
	}
	for j, i := range b.miss {
		b.features[i] = feats[j]
		if x.cache != nil {
			if err := x.cache.Put(ctx, b.keys[i], feats[j]); err != nil {
				return nil, fmt.Errorf("bench: feature cache: %w", err)
			}
		}
	}
	x.Computed += len(b.miss)
	b.pixels = nil
	return b.features, nil
}

// outputBuffers allocates the outputs of a batch of n images in Go
// memory, for onnxruntime to write into (Session.RunInto) instead of
// into buffers of its own that would then be copied; outputs whose shape
// depends on more than the batch are left to onnxruntime.
func outputBuffers(s *runner.Session, n int) map[string]runner.Tensor {
	out := map[string]runner.Tensor{}
outputs:
	for _, info := range s.Outputs() {
		if info.Shape == nil || info.DType != runner.Float32 {
			continue
		}
		shape := make([]int64, len(info.Shape))
		size := int64(1)
		for i, d := range info.Shape {
			if d < 0 && i == 0 {
				d = int64(n)
			}
			if d < 0 {
				continue outputs
			}
			shape[i] = d
			size *= d
		}
		out[info.Name] = runner.Tensor{Shape: shape, Float32: make([]float32, size)}
	}
	return out
}

// SplitBatch cuts the named batched outputs [B, …] of a graph into
// per-image features, in the given name order. It is the Extract of every
// scheme whose features are the image tower's outputs as they are.
func SplitBatch(out map[string]runner.Tensor, names []string, batch int) ([]Features, error) {
	feats := make([]Features, batch)
	for _, name := range names {
		t, ok := out[name]
		if !ok {
			have := make([]string, 0, len(out))
			for k := range out {
				have = append(have, k)
			}
			slices.Sort(have)
			return nil, fmt.Errorf("bench: image tower has no output %q (has %v)", name, have)
		}
		if len(t.Shape) == 0 || t.Shape[0] != int64(batch) || t.Float32 == nil {
			return nil, fmt.Errorf("bench: output %s has shape %v, want [%d, …] float32", name, t.Shape, batch)
		}
		per := len(t.Float32) / batch
		shape := make([]int, len(t.Shape)-1)
		for i, d := range t.Shape[1:] {
			shape[i] = int(d)
		}
		for i := range batch {
			feats[i].Tensors = append(feats[i].Tensors, featcache.Tensor{Name: name, Shape: shape, Data: t.Float32[i*per : (i+1)*per]})
		}
	}
	return feats, nil
}
