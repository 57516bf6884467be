package clip

import (
	"hash/fnv"
	"math"
	"sort"
	"strings"
)

// TinyArch is the small architecture of the seeded test models: the full
// 49,408-token vocabulary and 77-token context, with widths and depths
// small enough that building and running a model takes milliseconds.
// WinCLIP's tiny model uses GELU like ViT-B-16-plus-240, APRIL-GAN's and
// MultiADS' exact GELU like the ViT-L their factory rebuilds at 518 pixels
// (FactoryArch); the others use QuickGELU like ViT-L-14-336. AdaCLIP's runs
// exact GELU as its code runs ViT-L (docs/methods.md#adaclip-gelu), with
// embed_dim = text_width as its text prompts need, at 48 pixels: 36
// patches, enough for its 20 k-means clusters (docs/methods.md#adaclip-hsf).
func TinyArch(v Variant) Arch {
	act := QuickGELU
	if v == WinCLIP || v == AdaCLIP || v == APRILGAN || v == MultiADS {
		act = GELU
	}
	a := Arch{
		Name: "tiny-" + string(act), ImageSize: 32, PatchSize: 8,
		VisionWidth: 32, VisionLayers: 4, VisionHeads: 2,
		TextWidth: 32, TextLayers: 4, TextHeads: 2,
		ContextLength: 77, VocabSize: 49408, EmbedDim: 16, Act: act,
	}
	if v == AdaCLIP {
		a.Name, a.ImageSize, a.EmbedDim = "tiny-adaclip", 48, a.TextWidth
	}
	return a
}

// TinyWeights returns seeded random weights for a. The same seed always
// gives the same weights, on every platform and Go version: each tensor is
// drawn from its own splitmix64 stream keyed by the seed and its name.
func TinyWeights(a Arch, seed uint64) Weights {
	shapes := a.shapes()
	names := make([]string, 0, len(shapes))
	for n := range shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	w := Weights{}
	for _, name := range names {
		shape := shapes[name]
		t := NewTensor(shape...)
		h := fnv.New64a()
		h.Write([]byte(name))
		r := splitmix{state: seed ^ h.Sum64()}
		mean, std := tinyInit(a, name, shape)
		for i := range t.Data {
			t.Data[i] = float32(mean + std*r.normal())
		}
		w[name] = t
	}
	return w
}

// tinyInit gives the mean and spread of each tensor, after CLIP's own
// initialisation, with layer-norm gains near 1 so every block matters.
func tinyInit(a Arch, name string, shape []int) (mean, std float64) {
	last := float64(shape[len(shape)-1])
	switch {
	case strings.HasSuffix(name, "ln_1.weight"), strings.HasSuffix(name, "ln_2.weight"),
		strings.HasSuffix(name, "ln_pre.weight"), strings.HasSuffix(name, "ln_post.weight"),
		strings.HasSuffix(name, "ln_final.weight"):
		return 1, 0.1
	case strings.HasSuffix(name, ".bias"), strings.HasSuffix(name, "in_proj_bias"):
		return 0, 0.05
	case name == "token_embedding.weight":
		return 0, 0.5
	case name == "positional_embedding":
		return 0, 0.1
	case name == "visual.conv1.weight":
		return 0, 1 / math.Sqrt(float64(3*a.PatchSize*a.PatchSize))
	case name == "visual.class_embedding", name == "visual.positional_embedding":
		return 0, 1 / math.Sqrt(last)
	}
	// projections: fan-in scaling
	if len(shape) == 2 {
		fanIn := float64(shape[1])
		if name == "visual.proj" || name == "text_projection" {
			fanIn = float64(shape[0])
		}
		return 0, 1 / math.Sqrt(fanIn)
	}
	return 0, 0.1
}

// splitmix is splitmix64 with Box–Muller normals: a tiny generator whose
// output is fixed by its definition.
type splitmix struct {
	state uint64
	spare float64
	has   bool
}

func (s *splitmix) next() uint64 {
	s.state += 0x9e3779b97f4a7c15
	z := s.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform is in (0, 1].
func (s *splitmix) uniform() float64 {
	return (float64(s.next()>>11) + 1) / (1 << 53)
}

func (s *splitmix) normal() float64 {
	if s.has {
		s.has = false
		return s.spare
	}
	r := math.Sqrt(-2 * math.Log(s.uniform()))
	th := 2 * math.Pi * s.uniform()
	s.spare, s.has = r*math.Sin(th), true
	return r * math.Cos(th)
}

// seededUniform returns n seeded values uniform in [-1, 1).
func seededUniform(seed uint64, n int) []float32 {
	r := splitmix{state: seed}
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(2*r.uniform() - 1)
	}
	return out
}

// SeededUniform returns n values uniform in [-1, 1) from a seed, the
// generator of the tiny models, for test inputs that must not drift.
func SeededUniform(seed uint64, n int) []float32 { return seededUniform(seed, n) }
