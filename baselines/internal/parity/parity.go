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
	"image/jpeg"
	"image/png"
	"maps"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/safetensors"
	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/internal/half"
	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/results"
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
// two defects of two categories. JPEG images are read from PNG copies
// (pngCopy).
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
			if ext := path.Ext(s.RelImage); strings.EqualFold(ext, ".jpg") {
				s.RelImage = strings.TrimSuffix(s.RelImage, ext) + ".png"
				s.ImagePath = filepath.Join(root, filepath.FromSlash(s.RelImage))
				pngCopy(t, filepath.Join(root, filepath.FromSlash(p)), s.ImagePath)
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

// pngCopy writes a lossless PNG copy of a JPEG image. Both sides of a
// parity test read the copies: Go's JPEG decoder and Pillow's
// libjpeg-turbo differ by a few levels (docs/methods.md#preprocess-jpeg),
// a matter of the preprocessing, not of the schemes compared here.
func pngCopy(t testing.TB, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := jpeg.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
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

// Image is one image of a reference's test run.
type Image struct {
	ImgPath    string  `json:"img_path"`
	ClsName    string  `json:"cls_name"`
	Label      int     `json:"label"`
	ImageScore float64 `json:"image_score"`
	MapSum     float64 `json:"map_sum"`
	MapMax     float64 `json:"map_max"`
	Top3Mean   float64 `json:"top3_mean"`
}

// Run runs a scheme over a selection through bench.Run with the maps
// saved (features cached in cache, which may be nil) and returns, by
// dataset-relative image path, the map and the image score.
func Run(t testing.TB, d *Data, dataset string, m *bench.Model, s bench.Scheme, cache *featcache.Cache) (map[string][]float32, map[string]float64) {
	t.Helper()
	out := t.TempDir()
	recs, err := bench.Run(context.Background(), bench.Config{Dataset: dataset, Loader: d.Loader(dataset), Model: m, Scheme: s,
		Out: out, SaveMaps: true, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	maps, scores := map[string][]float32{}, map[string]float64{}
	for _, rec := range recs {
		imgs, _, _, sc, err := results.ReadScores(out, rec.Category)
		if err != nil {
			t.Fatal(err)
		}
		for i, rel := range imgs {
			scores[rel] = sc[i]
			a, err := npy.ReadFile(filepath.Join(out, results.MapsDir, filepath.FromSlash(strings.TrimSuffix(rel, path.Ext(rel))+".npy")))
			if err != nil {
				t.Fatal(err)
			}
			maps[rel] = a.Data
		}
	}
	return maps, scores
}

// Comparison is one image against the reference.
type Comparison struct {
	Image        string
	DMap, DScore float64
	Got, Want    float64 // image scores
	Detail       string
}

// Compare compares each image's sampled map (reference tensor
// prefix+"<i>/map"), map sum, maximum and top-3 mean, and its image score
// with the reference, logging every image.
func Compare(t testing.TB, images []Image, ref *Reference, prefix string, sample MapSample, maps map[string][]float32, scores map[string]float64, size int) []Comparison {
	t.Helper()
	var out []Comparison
	worstMap, worstScore := 0.0, 0.0
	for i, im := range images {
		got, ok := maps[im.ImgPath]
		if !ok || len(got) != size*size {
			t.Fatalf("%s: no %d×%d map", im.ImgPath, size, size)
		}
		want := ref.Tensor(t, fmt.Sprintf("%s%d/map", prefix, i))
		dm := MaxAbsDiff(sample.Take(got, size), want.Data)
		var sum float64
		for _, v := range got {
			sum += float64(v)
		}
		ds := math.Abs(sum-im.MapSum) / float64(size*size) // mean per-pixel difference
		dx := math.Abs(float64(slices.Max(got)) - im.MapMax)
		dt := math.Abs(Top3(got) - im.Top3Mean)
		c := Comparison{Image: im.ImgPath, DMap: math.Max(math.Max(dm, ds), math.Max(dx, dt)),
			Got: scores[im.ImgPath], Want: im.ImageScore,
			Detail: fmt.Sprintf("sampled pixels %.2g, mean %.2g, maximum %.2g, top-3 mean %.2g", dm, ds, dx, dt)}
		c.DScore = math.Abs(c.Got - c.Want)
		t.Logf("%s: map within %.2g (%s), image score %.7f, official %.7f", c.Image, c.DMap, c.Detail, c.Got, c.Want)
		worstMap, worstScore = math.Max(worstMap, c.DMap), math.Max(worstScore, c.DScore)
		out = append(out, c)
	}
	t.Logf("%d images: maps within %.2g, image scores within %.2g of the official test.py", len(out), worstMap, worstScore)
	return out
}

// Check fails t for every comparison beyond the tolerances.
func Check(t testing.TB, cs []Comparison, mapTol, scoreTol float64) {
	t.Helper()
	for _, c := range cs {
		if c.DMap > mapTol {
			t.Errorf("%s: the map differs from the official one by %.3g (%s)", c.Image, c.DMap, c.Detail)
		}
		if c.DScore > scoreTol {
			t.Errorf("%s: image score %.7f, official %.7f", c.Image, c.Got, c.Want)
		}
	}
}

// Top3 is test.py's np.mean(np.partition(map, -3)[-3:]).
func Top3(m []float32) float64 {
	s := slices.Clone(m)
	slices.Sort(s)
	return (float64(s[len(s)-1]) + float64(s[len(s)-2]) + float64(s[len(s)-3])) / 3
}
