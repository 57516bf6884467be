// Package parity holds the inputs that the parity tests of APRIL-GAN and
// MultiADS share with the scripts that run the official code
// (baselines/aprilgan/testdata/reference.py,
// baselines/multiads/testdata/reference.py): a tiny seeded CLIP with
// ViT-L/14@336px's depth, fixture images chosen per dataset and written as
// the CLIP-style meta.json the official datasets read, and the reference
// values those scripts wrote.
package parity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/safetensors"
	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/internal/half"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Arch is OpenAI ViT-L/14@336px's depth (24 vision and 12 text blocks,
// patch 14, 336 pixels, context 77, the full vocabulary) with small
// widths. The text tower is 64 wide because the official loader infers
// heads = width // 64 (open_clip/model.py build_model_from_openai_state_dict)
// and cannot build a narrower one. Like OpenAI's weights it is a QuickGELU
// architecture: run at 518 pixels, the variants aprilgan and multiads
// switch to exact GELU as the official factory does (clip.FactoryArch).
var Arch = clip.Arch{
	Name: "tiny-vitl-depth", ImageSize: 336, PatchSize: 14,
	VisionWidth: 64, VisionLayers: 24, VisionHeads: 4,
	TextWidth: 64, TextLayers: 12, TextHeads: 4,
	ContextLength: 77, VocabSize: 49408, EmbedDim: 32, Act: clip.QuickGELU,
}

// ImageSize is the size both official scripts run at (--image_size 518).
const ImageSize = 518

// WeightsSeed seeds clip.TinyWeights for Arch.
const WeightsSeed = 7

// Weights are clip.TinyWeights(Arch, WeightsSeed) rounded to float16
// values: the official loader casts most weights to float16 and back
// (convert_weights_to_fp16), which is then exact.
func Weights() clip.Weights {
	w := clip.TinyWeights(Arch, WeightsSeed)
	for _, t := range w {
		for i, v := range t.Data {
			t.Data[i] = half.ToFloat32(half.FromFloat32(v))
		}
	}
	return w
}

// WeightsDigest is the sha256 of w's names, shapes and float32 bytes in
// name order: the reference records it to pin the weights it ran.
func WeightsDigest(w clip.Weights) string {
	h := sha256.New()
	var b [4]byte
	for _, k := range slices.Sorted(maps.Keys(w)) {
		fmt.Fprintf(h, "%s %v\n", k, w[k].Shape)
		for _, v := range w[k].Data {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			h.Write(b[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Selections are the fixture images of each dataset (paths relative to
// the dataset root), per category in meta.json order: a normal image and
// two defects of two categories.
var Selections = map[string][]string{
	"mvtec": {
		"bottle/test/good/000.png", "bottle/test/broken_large/000.png", "bottle/test/contamination/000.png",
		"hazelnut/test/good/000.png", "hazelnut/test/crack/000.png", "hazelnut/test/hole/000.png",
	},
	"visa": {
		"candle/Data/Images/Normal/0005.JPG", "candle/Data/Images/Anomaly/000.JPG", "candle/Data/Images/Anomaly/002.JPG",
		"capsules/Data/Images/Normal/005.JPG", "capsules/Data/Images/Anomaly/000.JPG", "capsules/Data/Images/Anomaly/001.JPG",
	},
}

// Data are the fixture datasets with a meta.json per selection.
type Data struct {
	Dir string
	// Roots are the dataset roots; Metas the meta.json files listing the
	// selected images as the test split.
	Roots, Metas map[string]string
}

// WriteData generates the fixtures under dir and writes
// dir/<dataset>.meta.json for each dataset.
func WriteData(t testing.TB, dir string, datasets ...string) *Data {
	t.Helper()
	ctx := context.Background()
	fx := filepath.Join(dir, "fixtures")
	if _, err := fixtures.Generate(ctx, fx, fixtures.DefaultSeed); err != nil {
		t.Fatal(err)
	}
	d := &Data{Dir: dir, Roots: map[string]string{}, Metas: map[string]string{}}
	for _, ds := range datasets {
		root := filepath.Join(fx, ds)
		set, err := loaders.Load(ctx, ds, loaders.Options{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		byPath := map[string]loaders.Sample{}
		for _, s := range set.Samples {
			if s.Split == loaders.Test {
				byPath[s.RelImage] = s
			}
		}
		sub := &loaders.Set{Dataset: ds, Root: root}
		for _, p := range Selections[ds] {
			s, ok := byPath[p]
			if !ok {
				t.Fatalf("%s: fixture %s is not a test image", ds, p)
			}
			sub.Samples = append(sub.Samples, s)
		}
		var b bytes.Buffer
		if _, err := loaders.MetaOf(sub).WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		meta := filepath.Join(dir, ds+".meta.json")
		if err := os.WriteFile(meta, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		d.Roots[ds], d.Metas[ds] = root, meta
	}
	return d
}

// Loader reads the selection of a dataset.
func (d *Data) Loader(ds string) loaders.Options {
	return loaders.Options{Root: d.Roots[ds], Meta: d.Metas[ds]}
}

// Files lists the selected images and masks of a dataset with their
// sha256, as the reference records them.
func (d *Data) Files(t testing.TB, ds string) map[string]string {
	t.Helper()
	set, err := loaders.Load(context.Background(), ds, d.Loader(ds))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range set.Samples {
		for _, rel := range []string{s.RelImage, s.RelMask} {
			if rel == "" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(d.Roots[ds], filepath.FromSlash(rel)))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			out[rel] = hex.EncodeToString(sum[:])
		}
	}
	return out
}

// WriteInputs writes what reference.py reads: arch.json,
// weights.safetensors with weights.json (its digest), and the fixture
// trees with <dataset>/meta.json.
func WriteInputs(t testing.TB, dir string, datasets ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := WriteData(t, dir, datasets...)
	for _, ds := range datasets {
		b, err := os.ReadFile(d.Metas[ds])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d.Roots[ds], "meta.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w := Weights()
	if err := w.WriteSafetensors(filepath.Join(dir, "weights.safetensors")); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{
		"arch.json":    Arch,
		"weights.json": map[string]any{"digest": WeightsDigest(w), "seed": WeightsSeed, "image_size": ImageSize},
	} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Model builds the parity model of a variant at ImageSize under dir and
// opens it on the CPU; everything is released when t ends.
func Model(t testing.TB, dir string, v clip.Variant) *bench.Model {
	t.Helper()
	ctx := context.Background()
	out := filepath.Join(dir, "model-"+string(v))
	if _, err := clip.Build(ctx, out, Arch, Weights(), clip.Options{Variant: v, ImageSize: ImageSize}, clip.SourceInfo{File: "parity"}); err != nil {
		t.Fatal(err)
	}
	rt, err := runner.Open(runner.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	m, err := bench.OpenModel(ctx, rt, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// Reference is a reference.safetensors written by a reference.py.
type Reference struct {
	f *safetensors.File
}

// ReadReference reads a reference tensor file.
func ReadReference(t testing.TB, path string) *Reference {
	t.Helper()
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return &Reference{f: f}
}

// Tensor returns a reference tensor as float32, or fails t.
func (r *Reference) Tensor(t testing.TB, name string) clip.Tensor {
	t.Helper()
	x, ok := r.f.Get(name)
	if !ok {
		t.Fatalf("reference lacks %s", name)
	}
	v, err := x.Float32()
	if err != nil {
		t.Fatal(err)
	}
	return clip.Tensor{Shape: x.Shape, Data: v}
}

// MapSample is the regular grid of map pixels a reference keeps: rows and
// columns Offset, Offset+Stride, … below the map size.
type MapSample struct {
	Offset int `json:"offset"`
	Stride int `json:"stride"`
}

// Take returns the sampled pixels of a size×size map, row-major.
func (s MapSample) Take(m []float32, size int) []float32 {
	var out []float32
	for y := s.Offset; y < size; y += s.Stride {
		for x := s.Offset; x < size; x += s.Stride {
			out = append(out, m[y*size+x])
		}
	}
	return out
}

// MaxAbsDiff is the largest |a−b|, +Inf when the lengths differ.
func MaxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}
