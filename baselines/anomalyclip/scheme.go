package anomalyclip

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Constants of AnomalyCLIP's test.py (docs/methods.md#anomalyclip-scoring).
const (
	// Temperature divides the cosine similarities of the image score and
	// of every patch (text_probs / 0.07; compute_similarity).
	Temperature = postproc.Temperature
	// Sigma is the σ of the Gaussian that smooths each map (--sigma 4,
	// scipy.ndimage.gaussian_filter with mode "reflect", truncate 4).
	Sigma = postproc.AnomalyCLIPSigma
	// Truncate is scipy's default truncate: a kernel radius of 16 at σ = 4.
	Truncate = postproc.GaussianTruncate
	// normal and abnormal index the text features, stacked [normal,
	// abnormal] (test.py text_probs[:, 0, 1]; similarity_map[..., 1]).
	normal, abnormal = 0, 1
)

// Options select an AnomalyCLIP variant. The zero value plus Learned is
// AnomalyCLIP as its test.sh runs it.
type Options struct {
	// Name labels the variant in results ("anomalyclip" when empty).
	Name string
	// Learned holds ctx_pos, ctx_neg and the deep text tokens: an imported
	// checkpoint, or seeded initial values (then every output says
	// "untrained").
	Learned *checkpoints.Learned
	// Layers are the 1-indexed vision blocks whose maps are summed; nil
	// uses every feature layer of the model ([24] for ViT-L, as the
	// released checkpoints and logs do:
	// https://github.com/zqhang/AnomalyCLIP/issues/82,
	// docs/methods.md#anomalyclip-layers). Each must be a feature layer of the
	// model.
	Layers []int
	// NoSmoothing skips the Gaussian filter.
	NoSmoothing bool
}

// Scheme is AnomalyCLIP as a bench.Scheme.
type Scheme struct {
	opt Options
}

// New checks the options and returns the scheme.
func New(opt Options) (*Scheme, error) {
	if opt.Learned == nil {
		return nil, fmt.Errorf("anomalyclip: no learned tensors (import a checkpoint or use untrained ones)")
	}
	if opt.Learned.Scheme != checkpoints.AnomalyCLIP {
		return nil, fmt.Errorf("anomalyclip: learned tensors are for %s", opt.Learned.Scheme)
	}
	if opt.Name == "" {
		opt.Name = "anomalyclip"
	}
	if opt.Layers != nil {
		if len(opt.Layers) == 0 {
			return nil, fmt.Errorf("anomalyclip: empty layer list")
		}
		for i, l := range opt.Layers {
			if l < 1 {
				return nil, fmt.Errorf("anomalyclip: layer %d: layers are 1-indexed blocks", l)
			}
			if slices.Contains(opt.Layers[:i], l) {
				return nil, fmt.Errorf("anomalyclip: layer %d given twice", l)
			}
		}
		opt.Layers = slices.Clone(opt.Layers)
	}
	return &Scheme{opt: opt}, nil
}

// The scheme satisfies the pipeline's contract.
var _ bench.Scheme = (*Scheme)(nil)

// Name is the variant's name, as results and tables show it.
func (s *Scheme) Name() string { return s.opt.Name }

// Variant is the model variant whose graphs the scheme runs.
func (s *Scheme) Variant() clip.Variant { return clip.AnomalyCLIP }

// Settings describe the variant for the run manifest.
func (s *Scheme) Settings() map[string]string {
	t := Texts()
	m := map[string]string{
		"prompts":     s.opt.Learned.Label(),
		"templates":   strconv.Quote(t[normal]) + ", " + strconv.Quote(t[abnormal]),
		"temperature": strconv.FormatFloat(Temperature, 'g', -1, 64),
		"layers":      "model feature layers",
		"map":         "sum over layers of (p_abnormal + 1 − p_normal)/2, bilinear align_corners=False",
		"smoothing":   fmt.Sprintf("gaussian σ=%v (scipy reflect, truncate %v)", Sigma, Truncate),
	}
	if s.opt.Layers != nil {
		m["layers"] = fmt.Sprint(s.opt.Layers)
	}
	if s.opt.NoSmoothing {
		m["smoothing"] = "none"
	}
	return m
}

// check reports whether the model suits the variant: its kind, the learned
// tensors' shapes, and the layers.
func (s *Scheme) check(m *clip.Manifest) ([]int, error) {
	if m.Variant != clip.AnomalyCLIP {
		return nil, fmt.Errorf("anomalyclip: model is a %s model, want %s", m.Variant, clip.AnomalyCLIP)
	}
	if err := s.opt.Learned.Check(m); err != nil {
		return nil, fmt.Errorf("anomalyclip: %w", err)
	}
	if m.PatchDim != m.EmbedDim {
		return nil, fmt.Errorf("anomalyclip: patch tokens of width %d are not projected to the embedding width %d", m.PatchDim, m.EmbedDim)
	}
	use := s.opt.Layers
	if use == nil {
		use = m.FeatureLayers
	}
	if len(use) == 0 {
		return nil, fmt.Errorf("anomalyclip: the model returns no patch tokens (no feature layers)")
	}
	for _, l := range use {
		if !slices.Contains(m.FeatureLayers, l) {
			return nil, fmt.Errorf("anomalyclip: layer %d is not a feature layer of the model (%v); build it with that layer", l, m.FeatureLayers)
		}
	}
	return use, nil
}

// ImageInputs: the image tower takes only pixels. The model and learned
// tensors are checked here so that a mismatch stops a run before any
// image is read.
func (s *Scheme) ImageInputs(m *bench.Model) (map[string]runner.Tensor, error) {
	_, err := s.check(m.Manifest)
	return nil, err
}

// Extract keeps the global feature and the patch tokens of every feature
// layer of the model, whichever layers the variant uses, so that all
// variants share one feature-cache entry.
func (s *Scheme) Extract(ctx context.Context, m *bench.Model, out map[string]runner.Tensor, batch int) ([]bench.Features, error) {
	names := []string{clip.OutImageEmbed}
	for _, l := range m.Manifest.FeatureLayers {
		names = append(names, clip.OutPatch(l))
	}
	f, err := bench.SplitBatch(out, names, batch)
	if err != nil {
		return nil, fmt.Errorf("anomalyclip: %w", err)
	}
	return f, nil
}

// Prepare encodes the two prompts. They name no category, so every
// category gets the same text features.
func (s *Scheme) Prepare(ctx context.Context, m *bench.Model, c bench.Category) (bench.Scorer, error) {
	layers, err := s.check(m.Manifest)
	if err != nil {
		return nil, err
	}
	text, err := s.textFeatures(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("anomalyclip: %s: %w", c.Name, err)
	}
	man := m.Manifest
	return s.newScorer(text, layers, man.Grid, man.ImageSize, man.PatchCLS)
}

// textFeatures runs the text tower on the assembled prompts with the deep
// tokens and returns the two unit feature rows [normal, abnormal].
func (s *Scheme) textFeatures(ctx context.Context, m *bench.Model) (postproc.Mat, error) {
	l := s.opt.Learned.Tensors
	embeds, eot, err := Assemble(m.Tokenizer, m.TokenEmbedding, l[checkpoints.NormalCtx], l[checkpoints.AbnormalCtx])
	if err != nil {
		return postproc.Mat{}, err
	}
	deep := l[checkpoints.TextDeep]
	f, err := m.EncodeText(ctx, embeds, eot, &deep)
	if err != nil {
		return postproc.Mat{}, err
	}
	if len(f.Shape) != 2 || f.Shape[0] != 2 || len(f.Data) != 2*f.Shape[1] {
		return postproc.Mat{}, fmt.Errorf("text tower returned shape %v for 2 prompts", f.Shape)
	}
	t := postproc.Mat{Rows: 2, Cols: f.Shape[1], Data: f.Data}
	if err := postproc.NormalizeRows(t); err != nil {
		return postproc.Mat{}, err
	}
	return t, nil
}

// newScorer is the scorer of given text features [normal, abnormal] over
// the given layers of a grid×grid patch grid, with maps of size×size.
// cls says whether the patch outputs start with the class token.
func (s *Scheme) newScorer(text postproc.Mat, layers []int, grid, size int, cls bool) (*scorer, error) {
	if text.Rows != 2 || text.Cols <= 0 || len(text.Data) != 2*text.Cols {
		return nil, fmt.Errorf("anomalyclip: text features %d×%d, want 2×De", text.Rows, text.Cols)
	}
	if len(layers) == 0 {
		return nil, fmt.Errorf("anomalyclip: no layers")
	}
	up, err := postproc.NewBilinear(grid, grid, size, size, false)
	if err != nil {
		return nil, fmt.Errorf("anomalyclip: %w", err)
	}
	sc := &scorer{text: text, layers: slices.Clone(layers), grid: grid, size: size, up: up}
	if cls {
		sc.skip = 1
	}
	if !s.opt.NoSmoothing {
		if sc.smooth, err = postproc.NewGaussian(Sigma, Truncate); err != nil {
			return nil, fmt.Errorf("anomalyclip: %w", err)
		}
	}
	return sc, nil
}

// scorer scores the images of any category (the prompts are
// object-agnostic).
type scorer struct {
	text       postproc.Mat // unit rows [normal, abnormal]
	layers     []int
	grid, size int
	skip       int // leading class tokens of the patch outputs
	up         *postproc.Bilinear
	smooth     *postproc.Gaussian // nil: no smoothing
}

func (sc *scorer) Classes() []string          { return nil }
func (sc *scorer) ClassOf(string) (int, bool) { return 0, false }

// probs writes softmax(cos(x_i, [t_n, t_a]) / τ) for the rows of x.
func (sc *scorer) probs(x postproc.Mat) (postproc.Mat, error) {
	p := postproc.Mat{Rows: x.Rows, Cols: 2, Data: make([]float32, 2*x.Rows)}
	if err := postproc.CosineLogits(p, x, sc.text, Temperature); err != nil {
		return p, fmt.Errorf("anomalyclip: %w", err)
	}
	if err := postproc.Softmax(p); err != nil {
		return p, fmt.Errorf("anomalyclip: %w", err)
	}
	return p, nil
}

// Score computes the image score and the anomaly map (test.py).
func (sc *scorer) Score(ctx context.Context, f bench.Features) (*bench.Output, error) {
	de := sc.text.Cols
	emb, ok := f.Tensor(clip.OutImageEmbed)
	if !ok {
		return nil, fmt.Errorf("anomalyclip: features lack %s", clip.OutImageEmbed)
	}
	if len(emb.Data) != de {
		return nil, fmt.Errorf("anomalyclip: %s has %d values, want %d", clip.OutImageEmbed, len(emb.Data), de)
	}
	p, err := sc.probs(postproc.Mat{Rows: 1, Cols: de, Data: emb.Data})
	if err != nil {
		return nil, err
	}
	g2, s2 := sc.grid*sc.grid, sc.size*sc.size
	sum := make([]float32, s2)
	planes := postproc.Mat{Rows: 2, Cols: g2, Data: make([]float32, 2*g2)}
	up := make([]float32, 2*s2)
	for _, l := range sc.layers {
		name := clip.OutPatch(l)
		t, ok := f.Tensor(name)
		if !ok {
			return nil, fmt.Errorf("anomalyclip: features lack %s", name)
		}
		if len(t.Data) != (sc.skip+g2)*de {
			return nil, fmt.Errorf("anomalyclip: %s has %d values (shape %v), want %d×%d", name, len(t.Data), t.Shape, sc.skip+g2, de)
		}
		pp, err := sc.probs(postproc.Mat{Rows: g2, Cols: de, Data: t.Data[sc.skip*de:]})
		if err != nil {
			return nil, err
		}
		if err := postproc.Transpose(planes, pp); err != nil {
			return nil, fmt.Errorf("anomalyclip: %w", err)
		}
		if err := sc.up.Apply(postproc.Grid{C: 2, H: sc.size, W: sc.size, Data: up}, postproc.Grid{C: 2, H: sc.grid, W: sc.grid, Data: planes.Data}); err != nil {
			return nil, fmt.Errorf("anomalyclip: %w", err)
		}
		pn, pa := up[normal*s2:(normal+1)*s2], up[abnormal*s2:(abnormal+1)*s2]
		for i := range sum {
			sum[i] += (pa[i] + 1 - pn[i]) / 2
		}
	}
	out := &bench.Output{Image: p.Data[abnormal], Map: sum}
	if sc.smooth != nil {
		out.Map = make([]float32, s2)
		if err := sc.smooth.Filter(out.Map, sum, sc.size, sc.size); err != nil {
			return nil, fmt.Errorf("anomalyclip: %w", err)
		}
	}
	return out, nil
}
