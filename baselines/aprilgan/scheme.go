package aprilgan

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/dapobench/dapobench/baselines/internal/vand"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/onnx/runner"
)

// abnormal indexes the abnormal class vector (text_probs[0][1],
// softmax(...)[:, 1, :, :] in test.py).
const abnormal = 1

// alignCorners is the upsampling of the logit planes: test.py's
// F.interpolate(..., mode='bilinear', align_corners=True)
// (docs/methods.md#aprilgan-scoring). A variable so that the parity test
// can show that flipping it is caught.
var alignCorners = true

// ImageScore selects the image-level score.
type ImageScore string

// The image scores.
const (
	// SoftmaxScore is test.py's zero-shot score, softmax(100·f·Tᵀ)[1].
	SoftmaxScore ImageScore = "softmax"
	// MapMax is the maximum of the summed map, the pixel part of test.py's
	// few-shot score (docs/methods.md#aprilgan-scoring).
	MapMax ImageScore = "map-max"
)

// Options select an APRIL-GAN variant. The zero value plus Learned is
// APRIL-GAN as test_zero_shot.sh runs it.
type Options struct {
	// Name labels the variant in results ("aprilgan" when empty).
	Name string
	// Learned holds the four linear layers: an imported checkpoint, or
	// seeded initial values (then every output says "untrained").
	Learned *checkpoints.Learned
	// Layers are the 1-indexed feature layers whose maps are summed, −1
	// the model's last; nil is every feature layer of the model (6, 12,
	// 18, 24 for ViT-L).
	Layers []int
	// Score is the image score; "" is SoftmaxScore.
	Score ImageScore
}

// Scheme is APRIL-GAN as a bench.Scheme.
type Scheme struct {
	opt Options
	ens vand.Ensemble
}

// New checks the options and returns the scheme.
func New(opt Options) (*Scheme, error) {
	if opt.Learned == nil {
		return nil, fmt.Errorf("aprilgan: no learned linear layers (import a checkpoint or use untrained ones)")
	}
	if opt.Learned.Scheme != checkpoints.APRILGAN {
		return nil, fmt.Errorf("aprilgan: learned tensors are for %s", opt.Learned.Scheme)
	}
	if opt.Name == "" {
		opt.Name = "aprilgan"
	}
	switch opt.Score {
	case "":
		opt.Score = SoftmaxScore
	case SoftmaxScore, MapMax:
	default:
		return nil, fmt.Errorf("aprilgan: unknown image score %q", opt.Score)
	}
	if opt.Layers != nil {
		if len(opt.Layers) == 0 {
			return nil, fmt.Errorf("aprilgan: empty layer list")
		}
		opt.Layers = slices.Clone(opt.Layers)
	}
	e, err := Ensemble()
	if err != nil {
		return nil, err
	}
	return &Scheme{opt: opt, ens: e}, nil
}

// The scheme satisfies the pipeline's contract.
var _ bench.Scheme = (*Scheme)(nil)

// Name is the variant's name, as results and tables show it.
func (s *Scheme) Name() string { return s.opt.Name }

// Variant is the model variant whose graphs the scheme runs.
func (s *Scheme) Variant() clip.Variant { return clip.APRILGAN }

// Settings describe the variant for the run manifest.
func (s *Scheme) Settings() map[string]string {
	m := map[string]string{
		"prompts":     s.opt.Learned.Label(),
		"ensemble":    fmt.Sprintf("%d normal + %d abnormal states × %d templates", len(s.ens.Groups[0].States), len(s.ens.Groups[1].States), len(s.ens.Templates)),
		"logit_scale": strconv.Itoa(vand.LogitScale),
		"layers":      "model feature layers",
		"map":         "sum over layers of softmax(upsampled logits)[abnormal], bilinear align_corners=True",
		"image_score": "softmax(100·f·Tᵀ)[abnormal]",
	}
	if s.opt.Layers != nil {
		m["layers"] = fmt.Sprint(s.opt.Layers)
		if slices.Equal(s.opt.Layers, []int{-1}) {
			m["layers"] = "last feature layer"
		}
	}
	if s.opt.Score == MapMax {
		m["image_score"] = "maximum of the map"
	}
	return m
}

// layers resolves the variant's layers to indices of the model's feature
// layers (fc.0 … follow the model's feature layers in order).
func (s *Scheme) layers(m *clip.Manifest) ([]int, error) {
	if m.Variant != clip.APRILGAN {
		return nil, fmt.Errorf("aprilgan: model is a %s model, want %s", m.Variant, clip.APRILGAN)
	}
	if err := s.opt.Learned.Check(m); err != nil {
		return nil, fmt.Errorf("aprilgan: %w", err)
	}
	if s.opt.Layers == nil {
		idx := make([]int, len(m.FeatureLayers))
		for i := range idx {
			idx[i] = i
		}
		return idx, nil
	}
	var idx []int
	for _, l := range s.opt.Layers {
		if l == -1 && len(m.FeatureLayers) > 0 {
			l = m.FeatureLayers[len(m.FeatureLayers)-1]
		}
		i := slices.Index(m.FeatureLayers, l)
		if i < 0 {
			return nil, fmt.Errorf("aprilgan: layer %d is not a feature layer of the model (%v)", l, m.FeatureLayers)
		}
		idx = append(idx, i)
	}
	return idx, nil
}

// ImageInputs: the image tower takes only pixels. The model and the
// learned tensors are checked here, before any image is read.
func (s *Scheme) ImageInputs(m *bench.Model) (map[string]runner.Tensor, error) {
	_, err := s.layers(m.Manifest)
	return nil, err
}

// Extract keeps the global feature and the patch tokens of every feature
// layer, whichever the variant uses, so that all variants share one
// feature-cache entry.
func (s *Scheme) Extract(ctx context.Context, m *bench.Model, out map[string]runner.Tensor, batch int) ([]bench.Features, error) {
	names := []string{clip.OutImageEmbed}
	for _, l := range m.Manifest.FeatureLayers {
		names = append(names, clip.OutPatch(l))
	}
	f, err := bench.SplitBatch(out, names, batch)
	if err != nil {
		return nil, fmt.Errorf("aprilgan: %w", err)
	}
	return f, nil
}

// Prepare encodes the category's ensemble and loads the linear layers.
func (s *Scheme) Prepare(ctx context.Context, m *bench.Model, c bench.Category) (bench.Scorer, error) {
	idx, err := s.layers(m.Manifest)
	if err != nil {
		return nil, err
	}
	text, err := vand.Encode(ctx, m, s.ens, c.PromptName)
	if err != nil {
		return nil, fmt.Errorf("aprilgan: %s: %w", c.Name, err)
	}
	return s.newScorer(ctx, m, text, idx)
}

func (s *Scheme) newScorer(ctx context.Context, m *bench.Model, text postproc.Mat, idx []int) (*scorer, error) {
	h, err := vand.NewHead(ctx, m, s.opt.Learned)
	if err != nil {
		return nil, fmt.Errorf("aprilgan: %w", err)
	}
	up, err := vand.NewUpsampler(h.Grid(), h.Size(), alignCorners)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("aprilgan: %w", err)
	}
	return &scorer{text: text, head: h, idx: idx, up: up, score: s.opt.Score}, nil
}

// scorer scores the images of one category.
type scorer struct {
	text  postproc.Mat // unit rows [normal, abnormal]
	head  *vand.Head
	idx   []int // feature-layer indices whose maps are summed
	up    *vand.Upsampler
	score ImageScore
}

func (sc *scorer) Classes() []string          { return nil }
func (sc *scorer) ClassOf(string) (int, bool) { return 0, false }

// Close releases the linear layers.
func (sc *scorer) Close() error { return sc.head.Close() }

// Score computes the image score and the map (test.py lines 159-183).
func (sc *scorer) Score(ctx context.Context, f bench.Features) (*bench.Output, error) {
	p, err := vand.ImageProbs(f, sc.text)
	if err != nil {
		return nil, fmt.Errorf("aprilgan: %w", err)
	}
	maps, err := sc.layerMaps(ctx, f)
	if err != nil {
		return nil, err
	}
	sum := maps[0]
	for _, m := range maps[1:] {
		for i, v := range m {
			sum[i] += v
		}
	}
	out := &bench.Output{Image: p[abnormal], Map: sum}
	if sc.score == MapMax {
		out.Image = slices.Max(sum)
	}
	return out, nil
}

// layerMaps are the abnormal-probability maps of the used layers.
func (sc *scorer) layerMaps(ctx context.Context, f bench.Features) ([][]float32, error) {
	var out [][]float32
	for _, j := range sc.idx {
		x, err := sc.head.Project(ctx, f, j)
		if err != nil {
			return nil, fmt.Errorf("aprilgan: %w", err)
		}
		g, err := sc.up.Logits(x, sc.text)
		if err != nil {
			return nil, fmt.Errorf("aprilgan: %w", err)
		}
		m, err := vand.DefectMass(g, nil, nil) // softmax over the two states, channel 1
		if err != nil {
			return nil, fmt.Errorf("aprilgan: %w", err)
		}
		out = append(out, m)
	}
	return out, nil
}
