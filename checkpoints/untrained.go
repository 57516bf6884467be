package checkpoints

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/dapobench/dapobench/clip"
)

// anomalyCLIPInitStd is the standard deviation of AnomalyCLIP's
// nn.init.normal_ on ctx_pos, ctx_neg and compound_prompts_text
// (docs/methods.md#anomalyclip-prompt-init).
const anomalyCLIPInitStd = 0.02

// visualInitFanIn is the factor of patch² in DAPO's visual prompt range
// v = sqrt(6 / (3·patch² + width)): three colour channels per patch pixel
// (DAPO's visual prompt code; docs/methods.md#dapo-visual-prompt-init).
const visualInitFanIn = 3

// Untrained returns the scheme's learned tensors as the official code
// initialises them before training, drawn from seed, for the model of m
// (nil: the official ViT-L/14@336px sizes). They are labelled
// Trained=false so that every result computed with them can say so.
//
// DAPO (its prompt learner, visual prompts and adapters, docs/methods.md#dapo-prompt-init):
// normal_ctx, abnormal_ctx and text_deep are randn·std + mean with the
// per-dimension mean and (unbiased, torch.std's default) standard
// deviation of the whole token-embedding table
// (docs/methods.md#dapo-prompt-init); visual_prompts are U(−v, v) with
// v = sqrt(6/(3·patch²+Dv)) (docs/methods.md#dapo-visual-prompt-init); the
// adapters are torch.nn.Linear's default, weight and bias
// U(−1/sqrt(Dv), 1/sqrt(Dv)) (docs/methods.md#dapo-adapters). AnomalyCLIP:
// every tensor N(0, 0.02²) (docs/methods.md#anomalyclip-prompt-init).
// AdaCLIP: static prompts N(0, 0.02²), heads torch.nn.Linear's default
// (docs/methods.md#adaclip-init). APRIL-GAN and MultiADS: their
// LinearLayer's nn.Linear default, weight and bias U(−1/sqrt(Dv),
// 1/sqrt(Dv)) (docs/methods.md#aprilgan-linear). tokenEmbedding is used by
// DAPO alone and may be empty otherwise.
//
// The draws are this package's own (torch's generator is not
// reproduced): each tensor has a PCG stream keyed by the seed and its
// name, so the same seed gives the same bytes on every platform.
func Untrained(scheme string, m *clip.Manifest, tokenEmbedding clip.Tensor, seed uint64) (*Learned, error) {
	d, err := DimsOf(scheme, m)
	if err != nil {
		return nil, err
	}
	arch, err := archOf(m)
	if err != nil {
		return nil, err
	}
	l := &Learned{Scheme: scheme, Seed: seed, Tensors: map[string]clip.Tensor{}}
	shapes := d.Shapes()
	fill := func(name string, draw func(r *stream, i int) float64) {
		t := clip.NewTensor(shapes[name]...)
		r := newStream(seed, name)
		for i := range t.Data {
			t.Data[i] = float32(draw(r, i))
		}
		l.Tensors[name] = t
	}
	if scheme == AdaCLIP {
		adaclipUntrained(d, fill)
		return l, nil
	}
	bound := 1 / math.Sqrt(float64(d.VisionWidth)) // fan_in of every adapter
	adapters := func() {
		for i := range d.Adapters {
			for _, name := range []string{AdapterWeight(i), AdapterBias(i)} {
				fill(name, func(r *stream, _ int) float64 { return bound * r.symmetric() })
			}
		}
	}
	switch {
	case scheme == AnomalyCLIP:
		for _, name := range []string{NormalCtx, AbnormalCtx, TextDeep} {
			fill(name, func(r *stream, _ int) float64 { return anomalyCLIPInitStd * r.normal() })
		}
		return l, nil
	case LinearOnly(scheme):
		adapters()
		return l, nil
	}
	mean, std, err := columnStats(tokenEmbedding, arch.VocabSize, d.TextWidth)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{NormalCtx, AbnormalCtx, TextDeep} {
		fill(name, func(r *stream, i int) float64 {
			j := i % d.TextWidth
			return r.normal()*std[j] + mean[j]
		})
	}
	v := visualBound(arch.PatchSize, d.VisionWidth)
	fill(VisualPrompts, func(r *stream, _ int) float64 { return v * r.symmetric() })
	adapters()
	return l, nil
}

// visualBound is the half-width v of DAPO's uniform visual prompt
// initialisation, sqrt(6/(3·patch²+width))
// (docs/methods.md#dapo-visual-prompt-init).
func visualBound(patch, width int) float64 {
	return math.Sqrt(6 / float64(visualInitFanIn*patch*patch+width))
}

// archOf is m's architecture, or the official one.
func archOf(m *clip.Manifest) (clip.Arch, error) {
	if m != nil {
		return m.Arch, nil
	}
	a, err := clip.Preset(officialArch)
	if err != nil {
		return clip.Arch{}, fmt.Errorf("checkpoints: %w", err)
	}
	return a, nil
}

// columnStats are the per-column mean and unbiased standard deviation of
// a [vocab, width] table, as text_embeddings.mean(dim=0) and
// .std(dim=0) compute them.
func columnStats(t clip.Tensor, vocab, width int) (mean, std []float64, err error) {
	if len(t.Shape) != 2 || t.Shape[0] != vocab || t.Shape[1] != width || len(t.Data) != vocab*width {
		return nil, nil, fmt.Errorf("checkpoints: token-embedding table has shape %v (%d values), want [%d %d]", t.Shape, len(t.Data), vocab, width)
	}
	if vocab < 2 {
		return nil, nil, fmt.Errorf("checkpoints: token-embedding table has %d rows; the standard deviation needs two", vocab)
	}
	mean, std = make([]float64, width), make([]float64, width)
	for r := range vocab {
		for j, x := range t.Data[r*width : (r+1)*width] {
			mean[j] += float64(x)
		}
	}
	for j := range mean {
		mean[j] /= float64(vocab)
	}
	for r := range vocab {
		for j, x := range t.Data[r*width : (r+1)*width] {
			dx := float64(x) - mean[j]
			std[j] += dx * dx
		}
	}
	for j := range std {
		std[j] = math.Sqrt(std[j] / float64(vocab-1))
	}
	return mean, std, nil
}

// stream draws uniform and normal values from a PCG generator whose
// output the algorithm fixes; normals use Box–Muller, both values of each
// pair, so no library algorithm can change the draws.
type stream struct {
	pcg   *rand.PCG
	spare float64
	has   bool
}

func newStream(seed uint64, name string) *stream {
	h := fnv.New64a()
	h.Write([]byte(name))
	return &stream{pcg: rand.NewPCG(seed, h.Sum64())}
}

// unit is uniform in [0, 1) with 53 random bits.
func (s *stream) unit() float64 { return float64(s.pcg.Uint64()>>11) / (1 << 53) }

// symmetric is uniform in [-1, 1).
func (s *stream) symmetric() float64 { return 2*s.unit() - 1 }

func (s *stream) normal() float64 {
	if s.has {
		s.has = false
		return s.spare
	}
	r := math.Sqrt(-2 * math.Log(1-s.unit())) // 1−u is in (0, 1]
	th := 2 * math.Pi * s.unit()
	s.spare, s.has = r*math.Sin(th), true
	return r * math.Cos(th)
}
