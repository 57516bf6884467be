// Package vand is what APRIL-GAN (VAND 2023 challenge) and MultiADS, its
// descendant, share: handcrafted prompt ensembles averaged per state
// group, a trained nn.Linear per feature layer on the raw patch tokens,
// and per-layer maps whose logits (×100) are upsampled bilinearly with
// align_corners=True before the softmax over the states
// (docs/methods.md#aprilgan-overview, docs/methods.md#multiads-overview).
// The two schemes differ in their prompts and in how maps and image
// scores are read off the per-pixel probabilities.
package vand

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
)

// LogitScale multiplies every cosine similarity before a softmax:
// `100.0 * patch_tokens @ text_features` and `(image_features @
// text_features) * 100.` in both test.py files, not the model's own
// logit_scale (docs/methods.md#aprilgan-scoring).
const LogitScale = 100

// temperature is LogitScale as the divisor postproc.CosineLogits takes.
const temperature = postproc.APRILGANTemperature

// chunk bounds the prompts per text-tower run: ViT-L's text tower holds
// every token's activations at once.
const chunk = 512

// Group is one state group of an ensemble: its states, each a phrase with
// {} where the object name goes.
type Group struct {
	Name   string   `json:"name"`
	States []string `json:"states"`
}

// Ensemble is a prompt ensemble: templates with {} where a state goes, and
// the state groups, normal first. Each group becomes one class vector.
type Ensemble struct {
	Templates []string `json:"templates"`
	Groups    []Group  `json:"groups"`
}

// Check reports an empty ensemble or a phrase without its {}.
func (e Ensemble) Check() error {
	if len(e.Templates) == 0 || len(e.Groups) < 2 {
		return fmt.Errorf("vand: ensemble of %d templates and %d groups; want templates and at least two groups", len(e.Templates), len(e.Groups))
	}
	for _, t := range e.Templates {
		if strings.Count(t, "{}") != 1 {
			return fmt.Errorf("vand: template %q has no single {}", t)
		}
	}
	for _, g := range e.Groups {
		if len(g.States) == 0 {
			return fmt.Errorf("vand: group %q has no states", g.Name)
		}
		for _, s := range g.States {
			if strings.Count(s, "{}") != 1 {
				return fmt.Errorf("vand: state %q of group %q has no single {}", s, g.Name)
			}
		}
	}
	return nil
}

// Names lists the group names, normal first.
func (e Ensemble) Names() []string {
	out := make([]string, len(e.Groups))
	for i, g := range e.Groups {
		out[i] = g.Name
	}
	return out
}

// Sentences are the prompts of each group for an object, in the order the
// official loops build them: state-major, every template for each state,
// `template.format(state.format(obj))`
// (https://github.com/ByChelsea/VAND-APRIL-GAN/blob/f13b8a634e04f9fde8fa03db125b25af5695d8e1/prompt_ensemble.py#L14-L31).
// The object name is used verbatim (metal_nut, pipe_fryum).
func (e Ensemble) Sentences(obj string) [][]string {
	out := make([][]string, len(e.Groups))
	for i, g := range e.Groups {
		for _, st := range g.States {
			s := strings.Replace(st, "{}", obj, 1)
			for _, t := range e.Templates {
				out[i] = append(out[i], strings.Replace(t, "{}", s, 1))
			}
		}
	}
	return out
}

// Size is the number of prompts per object.
func (e Ensemble) Size() int {
	n := 0
	for _, g := range e.Groups {
		n += len(g.States)
	}
	return n * len(e.Templates)
}

// Encode returns the class vectors of an object, one unit row per group:
// each prompt's text feature divided by its norm, the mean over the
// group's prompts, divided by its norm (the official
// encode_text_with_prompt_ensemble; docs/methods.md#aprilgan-prompts).
func Encode(ctx context.Context, m *bench.Model, e Ensemble, obj string) (postproc.Mat, error) {
	if err := e.Check(); err != nil {
		return postproc.Mat{}, err
	}
	groups := e.Sentences(obj)
	var all []string
	for _, g := range groups {
		all = append(all, g...)
	}
	feats, err := encodeTexts(ctx, m, all)
	if err != nil {
		return postproc.Mat{}, err
	}
	if err := postproc.NormalizeRows(feats); err != nil {
		return postproc.Mat{}, err
	}
	de := feats.Cols
	out := postproc.Mat{Rows: len(groups), Cols: de, Data: make([]float32, len(groups)*de)}
	row := 0
	acc := make([]float64, de)
	for i, g := range groups {
		clear(acc)
		for range g {
			for k, v := range feats.Row(row) {
				acc[k] += float64(v)
			}
			row++
		}
		dst := out.Row(i)
		for k := range acc {
			dst[k] = float32(acc[k] / float64(len(g)))
		}
	}
	if err := postproc.NormalizeRows(out); err != nil {
		return postproc.Mat{}, err
	}
	return out, nil
}

// encodeTexts runs the text tower over texts in chunks, each cut after its
// last end-of-text token where the model allows it (clip.TruncateText).
func encodeTexts(ctx context.Context, m *bench.Model, texts []string) (postproc.Mat, error) {
	var out postproc.Mat
	for lo := 0; lo < len(texts); lo += chunk {
		part := texts[lo:min(lo+chunk, len(texts))]
		embeds, eot, err := clip.TextInputs(m.Tokenizer, m.TokenEmbedding, part)
		if err != nil {
			return postproc.Mat{}, err
		}
		f, err := m.EncodeText(ctx, clip.TruncateText(m.Manifest.Variant, embeds, eot), eot, nil)
		if err != nil {
			return postproc.Mat{}, err
		}
		if len(f.Shape) != 2 || f.Shape[0] != len(part) || len(f.Data) != f.Shape[0]*f.Shape[1] {
			return postproc.Mat{}, fmt.Errorf("vand: text tower returned shape %v for %d prompts", f.Shape, len(part))
		}
		out.Cols = f.Shape[1]
		out.Rows += len(part)
		out.Data = append(out.Data, f.Data...)
	}
	return out, nil
}

// Head is the trained LinearLayer of a model: one nn.Linear(Dv → De) per
// feature layer, applied to the patch tokens without the class token
// (`tokens[i] = fc[i](tokens[i][:, 1:, :])`;
// docs/methods.md#aprilgan-linear).
type Head struct {
	Layers     []int // the model's feature layers, fc.0 first
	lin        []*bench.Linear
	dv, de     int
	grid, size int
}

// NewHead loads the learned linear layers of l for the model's feature
// layers.
func NewHead(ctx context.Context, m *bench.Model, l *checkpoints.Learned) (*Head, error) {
	man := m.Manifest
	if !man.PatchCLS || man.PatchDim != man.Arch.VisionWidth {
		return nil, fmt.Errorf("vand: model %s returns patch tokens of width %d (class token %v); want the raw block outputs", man.Arch.Name, man.PatchDim, man.PatchCLS)
	}
	if len(man.FeatureLayers) == 0 {
		return nil, fmt.Errorf("vand: model %s returns no patch tokens (no feature layers)", man.Arch.Name)
	}
	if err := l.Check(man); err != nil {
		return nil, err
	}
	h := &Head{Layers: slices.Clone(man.FeatureLayers), dv: man.PatchDim, de: man.EmbedDim, grid: man.Grid, size: man.ImageSize}
	for i := range man.FeatureLayers {
		w, b := l.Tensors[checkpoints.AdapterWeight(i)], l.Tensors[checkpoints.AdapterBias(i)]
		lin, err := bench.NewLinear(ctx, m.Runtime, w.Data, b.Data, h.dv, h.de)
		if err != nil {
			h.Close()
			return nil, err
		}
		h.lin = append(h.lin, lin)
	}
	return h, nil
}

// Close releases the linear layers' sessions.
func (h *Head) Close() error {
	for _, l := range h.lin {
		l.Close()
	}
	return nil
}

// Project returns fc[j] of feature layer j's patch tokens, class token
// dropped: [G², De], not normalised.
func (h *Head) Project(ctx context.Context, f bench.Features, j int) (postproc.Mat, error) {
	name := clip.OutPatch(h.Layers[j])
	t, ok := f.Tensor(name)
	if !ok {
		return postproc.Mat{}, fmt.Errorf("vand: features lack %s", name)
	}
	g2 := h.grid * h.grid
	if len(t.Data) != (1+g2)*h.dv {
		return postproc.Mat{}, fmt.Errorf("vand: %s has %d values (shape %v), want %d×%d", name, len(t.Data), t.Shape, 1+g2, h.dv)
	}
	y, err := h.lin[j].Apply(ctx, t.Data[h.dv:])
	if err != nil {
		return postproc.Mat{}, err
	}
	return postproc.Mat{Rows: g2, Cols: h.de, Data: y}, nil
}

// Grid and Size are the patch grid side and the map side.
func (h *Head) Grid() int { return h.grid }
func (h *Head) Size() int { return h.size }

// ImageProbs is softmax(100·f·Tᵀ) of the normalised global feature
// against class vectors text [C, De] (docs/methods.md#aprilgan-scoring).
func ImageProbs(f bench.Features, text postproc.Mat) ([]float32, error) {
	emb, ok := f.Tensor(clip.OutImageEmbed)
	if !ok {
		return nil, fmt.Errorf("vand: features lack %s", clip.OutImageEmbed)
	}
	if len(emb.Data) != text.Cols {
		return nil, fmt.Errorf("vand: %s has %d values, want %d", clip.OutImageEmbed, len(emb.Data), text.Cols)
	}
	p := postproc.Mat{Rows: 1, Cols: text.Rows, Data: make([]float32, text.Rows)}
	if err := postproc.CosineLogits(p, postproc.Mat{Rows: 1, Cols: text.Cols, Data: emb.Data}, text, temperature); err != nil {
		return nil, err
	}
	if err := postproc.Softmax(p); err != nil {
		return nil, err
	}
	return p.Data, nil
}

// Upsampler turns one layer's projected tokens into per-pixel class
// probabilities: logits 100·cos(p, t_c) on the G×G grid, upsampled
// bilinearly with align_corners=True to S×S, then the softmax over the
// classes at every pixel (upsample first, softmax second;
// docs/methods.md#aprilgan-scoring).
type Upsampler struct {
	up         *postproc.Bilinear
	grid, size int
	// AlignCorners is the upsampling mode (true in the official code).
	AlignCorners bool
}

// NewUpsampler plans G×G → S×S resizing.
func NewUpsampler(grid, size int, alignCorners bool) (*Upsampler, error) {
	up, err := postproc.NewBilinear(grid, grid, size, size, alignCorners)
	if err != nil {
		return nil, err
	}
	return &Upsampler{up: up, grid: grid, size: size, AlignCorners: alignCorners}, nil
}

// Logits returns the upsampled logit planes [C, S²] of tokens p [G², De]
// against class vectors text [C, De].
func (u *Upsampler) Logits(p, text postproc.Mat) (postproc.Grid, error) {
	g2, c := u.grid*u.grid, text.Rows
	if p.Rows != g2 {
		return postproc.Grid{}, fmt.Errorf("vand: %d tokens, want %d×%d", p.Rows, u.grid, u.grid)
	}
	logits := postproc.Mat{Rows: g2, Cols: c, Data: make([]float32, g2*c)}
	if err := postproc.CosineLogits(logits, p, text, temperature); err != nil {
		return postproc.Grid{}, err
	}
	planes := postproc.Mat{Rows: c, Cols: g2, Data: make([]float32, g2*c)}
	if err := postproc.Transpose(planes, logits); err != nil {
		return postproc.Grid{}, err
	}
	out := postproc.Grid{C: c, H: u.size, W: u.size, Data: make([]float32, c*u.size*u.size)}
	if err := u.up.Apply(out, postproc.Grid{C: c, H: u.grid, W: u.grid, Data: planes.Data}); err != nil {
		return postproc.Grid{}, err
	}
	return out, nil
}

// SoftmaxPlanes replaces planar logits [C, N] by their softmax over C at
// every position, in place: the maximum subtracted first, exponentials
// summed in float64, in blocks of pixels as DefectMass.
func SoftmaxPlanes(g postproc.Grid) error {
	n := g.H * g.W
	if g.C < 1 || len(g.Data) != g.C*n {
		return fmt.Errorf("vand: %d values for %d planes of %d×%d", len(g.Data), g.C, g.H, g.W)
	}
	const block = 128
	var hi, sum [block]float64
	var top [block]float32
	e := make([]float64, g.C*block)
	for i0 := 0; i0 < n; i0 += block {
		m := min(block, n-i0)
		copy(top[:m], g.Data[i0:i0+m])
		for c := 1; c < g.C; c++ {
			for k, v := range g.Data[c*n+i0 : c*n+i0+m] {
				if v > top[k] {
					top[k] = v
				}
			}
		}
		for k := range m {
			hi[k], sum[k] = float64(top[k]), 0
		}
		for c := range g.C {
			ec := e[c*block : c*block+m]
			for k, v := range g.Data[c*n+i0 : c*n+i0+m] {
				ec[k] = expNeg(float64(v) - hi[k])
				sum[k] += ec[k]
			}
		}
		for k := range m {
			if math.IsNaN(sum[k]) || math.IsInf(hi[k], 0) {
				return fmt.Errorf("vand: a logit at pixel %d is not finite", i0+k)
			}
			sum[k] = 1 / sum[k]
		}
		for c := range g.C {
			dst := g.Data[c*n+i0 : c*n+i0+m]
			for k, x := range e[c*block : c*block+m] {
				dst[k] = float32(x * sum[k])
			}
		}
	}
	return nil
}

// DefectMass returns Σ_{c≥1} softmax(logits)_c at every position of
// planar logits [C, N]: the abnormal probability of APRIL-GAN's two
// classes (softmax(...)[:, 1]) and MultiADS' sum of the defect channels
// (torch.sum(softmax(...)[:, 1:], dim=1)), without writing the C planes.
// As in torch, each probability is rounded to float32 and the sum is
// taken in float32 in class order: MultiADS' min–max normalised image
// scores magnify differences in the maps' largest values a hundredfold
// when a category's scores lie close together.
//
// When local names some of the classes, DefectMass also adds the softmax
// over those classes alone to acc (one plane of N per local class):
// MultiADS' multi-type maps, whose logits are the same columns
// (docs/methods.md#multiads-multitype). The softmax is invariant to the
// shift, so the exponentials are shared.
//
// Pixels are taken in blocks, plane by plane, so that every inner loop
// runs over contiguous memory.
func DefectMass(g postproc.Grid, local []int, acc [][]float32) ([]float32, error) {
	n := g.H * g.W
	if g.C < 2 || len(g.Data) != g.C*n {
		return nil, fmt.Errorf("vand: %d values for %d planes of %d×%d", len(g.Data), g.C, g.H, g.W)
	}
	if len(acc) != len(local) {
		return nil, fmt.Errorf("vand: %d local classes, %d planes to add to", len(local), len(acc))
	}
	for k, c := range local {
		if c < 0 || c >= g.C || len(acc[k]) != n {
			return nil, fmt.Errorf("vand: local class %d of %d, plane of %d values for %d pixels", c, g.C, len(acc[k]), n)
		}
	}
	const block = 128
	out := make([]float32, n)
	var hi, inv, linv [block]float64
	var top [block]float32
	e := make([]float64, g.C*block)
	for i0 := 0; i0 < n; i0 += block {
		m := min(block, n-i0)
		copy(top[:m], g.Data[i0:i0+m])
		for c := 1; c < g.C; c++ {
			// A plain comparison (max treats NaN specially and is slow);
			// a NaN logit is caught through its exponential below.
			for k, v := range g.Data[c*n+i0 : c*n+i0+m] {
				if v > top[k] {
					top[k] = v
				}
			}
		}
		for k := range m {
			hi[k], inv[k], linv[k] = float64(top[k]), 0, 0
		}
		for c := range g.C {
			ec := e[c*block : c*block+m]
			for k, v := range g.Data[c*n+i0 : c*n+i0+m] {
				ec[k] = expNeg(float64(v) - hi[k])
				inv[k] += ec[k]
			}
		}
		for k := range m {
			if math.IsNaN(inv[k]) || math.IsInf(hi[k], 0) {
				return nil, fmt.Errorf("vand: a logit at pixel %d is not finite", i0+k)
			}
			inv[k] = 1 / inv[k]
		}
		o := out[i0 : i0+m]
		for c := 1; c < g.C; c++ {
			for k, x := range e[c*block : c*block+m] {
				o[k] += float32(x * inv[k])
			}
		}
		if len(local) == 0 {
			continue
		}
		for _, c := range local {
			for k, x := range e[c*block : c*block+m] {
				linv[k] += x
			}
		}
		for k := range m {
			linv[k] = 1 / linv[k]
		}
		for j, c := range local {
			dst := acc[j][i0 : i0+m]
			for k, x := range e[c*block : c*block+m] {
				dst[k] += float32(x * linv[k])
			}
		}
	}
	return out, nil
}
