package multiads

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/dapobench/dapobench/baselines/internal/vand"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/onnx/runner"
)

// TopK is the number of largest map values whose mean is the image score
// (np.partition(map, -3)[-3:], test.py line 122;
// docs/methods.md#multiads-scoring).
const TopK = 3

// minMaxEps is test.py's guard: a category whose top-3 means span at most
// this much gets all-zero scores (line 134).
const minMaxEps = 1e-12

// minMax is whether the top-3 means are min–max normalised per category.
// A variable so that the parity test can show that dropping it is caught.
var minMax = true

// ImageScore selects the image-level score.
type ImageScore string

// The image scores.
const (
	// TopKScore is test.py's final score: the mean of the map's top three
	// values, min–max normalised over the category.
	TopKScore ImageScore = "top3-minmax"
	// SoftmaxScore is Σ_{c≥1} softmax(100·f·Tᵀ)_c of the normalised global
	// feature, which test.py computes (line 325) and then overwrites.
	SoftmaxScore ImageScore = "softmax"
)

// Options select a MultiADS variant. The zero value plus Learned is
// MultiADS as its test.py runs it.
type Options struct {
	// Name labels the variant in results ("multiads" when empty).
	Name string
	// Learned holds the four linear layers.
	Learned *checkpoints.Learned
	// Score is the image score; "" is TopKScore.
	Score ImageScore
	// NoMultiType skips the multi-type segmentation.
	NoMultiType bool
}

// Scheme is MultiADS as a bench.Scheme.
type Scheme struct {
	opt Options
	tab *Tables
}

// texts memoises class vectors by image tower (bench.Model.ImageHash,
// which names the weights the text tower is built from too), ensemble and
// object: an MVTec-AD category encodes 4,550 prompts, and the variants of
// a study on one model need not repeat them.
var texts struct {
	sync.Mutex
	m map[string]postproc.Mat
}

// New checks the options and returns the scheme.
func New(opt Options) (*Scheme, error) {
	if opt.Learned == nil {
		return nil, fmt.Errorf("multiads: no learned linear layers (import a checkpoint, train, or use untrained ones)")
	}
	if opt.Learned.Scheme != checkpoints.MultiADS {
		return nil, fmt.Errorf("multiads: learned tensors are for %s", opt.Learned.Scheme)
	}
	if opt.Name == "" {
		opt.Name = "multiads"
	}
	switch opt.Score {
	case "":
		opt.Score = TopKScore
	case TopKScore, SoftmaxScore:
	default:
		return nil, fmt.Errorf("multiads: unknown image score %q", opt.Score)
	}
	t, err := ReadTables()
	if err != nil {
		return nil, err
	}
	return &Scheme{opt: opt, tab: t}, nil
}

// The scheme satisfies the pipeline's contract.
var _ bench.Scheme = (*Scheme)(nil)

// Name is the variant's name, as results and tables show it.
func (s *Scheme) Name() string { return s.opt.Name }

// Variant is the model variant whose graphs the scheme runs.
func (s *Scheme) Variant() clip.Variant { return clip.MultiADS }

// Settings describe the variant for the run manifest.
func (s *Scheme) Settings() map[string]string {
	m := map[string]string{
		"prompts":     s.opt.Learned.Label(),
		"ensemble":    "test.py's defect-aware ensemble of the dataset (normal + defect types, all for every category)",
		"logit_scale": strconv.Itoa(vand.LogitScale),
		"layers":      "model feature layers",
		"map":         "sum over layers of Σ_{c≥1} softmax(upsampled logits)_c, bilinear align_corners=True",
		"image_score": "mean of the map's top 3 values, min–max normalised per category",
		"multi_type":  "test_multi_defect.py: the category's defect list, softmax per layer, summed over layers",
	}
	if s.opt.Score == SoftmaxScore {
		m["image_score"] = "Σ_{c≥1} softmax(100·f·Tᵀ)_c"
	}
	if s.opt.NoMultiType {
		m["multi_type"] = "none"
	}
	return m
}

func (s *Scheme) check(m *clip.Manifest) error {
	if m.Variant != clip.MultiADS {
		return fmt.Errorf("multiads: model is a %s model, want %s", m.Variant, clip.MultiADS)
	}
	if err := s.opt.Learned.Check(m); err != nil {
		return fmt.Errorf("multiads: %w", err)
	}
	return nil
}

// ImageInputs: the image tower takes only pixels. The model and the
// learned tensors are checked here, before any image is read.
func (s *Scheme) ImageInputs(m *bench.Model) (map[string]runner.Tensor, error) {
	return nil, s.check(m.Manifest)
}

// Extract keeps the global feature and the patch tokens of every feature
// layer, shared by every variant's cache entries.
func (s *Scheme) Extract(ctx context.Context, m *bench.Model, out map[string]runner.Tensor, batch int) ([]bench.Features, error) {
	names := []string{clip.OutImageEmbed}
	for _, l := range m.Manifest.FeatureLayers {
		names = append(names, clip.OutPatch(l))
	}
	f, err := bench.SplitBatch(out, names, batch)
	if err != nil {
		return nil, fmt.Errorf("multiads: %w", err)
	}
	return f, nil
}

// Prepare encodes the dataset's ensemble for the category, and for
// multi-type segmentation the columns of the category's own defect list.
func (s *Scheme) Prepare(ctx context.Context, m *bench.Model, c bench.Category) (bench.Scorer, error) {
	if err := s.check(m.Manifest); err != nil {
		return nil, err
	}
	_, file, err := s.tab.TestEnsemble(c.Dataset)
	if err != nil {
		return nil, err
	}
	text, err := s.encode(ctx, m, file, c.PromptName)
	if err != nil {
		return nil, fmt.Errorf("multiads: %s: %w", c.Name, err)
	}
	sc := &scorer{text: text, score: s.opt.Score, tab: s.tab, dataset: c.Dataset}
	if !s.opt.NoMultiType {
		classes, cols, ok, err := s.tab.Local(c.Dataset, c.PromptName)
		if err != nil {
			return nil, err
		}
		if ok {
			sc.classes, sc.cols = classes, cols
			multiFile := s.tab.Multi[c.Dataset]
			if multiFile == file {
				sc.shared = true
			} else {
				all, err := s.encode(ctx, m, multiFile, c.PromptName)
				if err != nil {
					return nil, fmt.Errorf("multiads: %s: %w", c.Name, err)
				}
				sc.local = rows(all, cols)
			}
		}
	}
	if sc.head, err = vand.NewHead(ctx, m, s.opt.Learned); err != nil {
		return nil, fmt.Errorf("multiads: %w", err)
	}
	if sc.up, err = vand.NewUpsampler(sc.head.Grid(), sc.head.Size(), true); err != nil {
		sc.head.Close()
		return nil, fmt.Errorf("multiads: %w", err)
	}
	return sc, nil
}

// encode returns the class vectors of an ensemble file for an object,
// once per model.
func (s *Scheme) encode(ctx context.Context, m *bench.Model, file, obj string) (postproc.Mat, error) {
	key := m.ImageHash + "\x00" + file + "\x00" + obj
	texts.Lock()
	defer texts.Unlock()
	if t, ok := texts.m[key]; ok {
		return t, nil
	}
	t, err := vand.Encode(ctx, m, s.tab.Files[file], obj)
	if err != nil {
		return postproc.Mat{}, err
	}
	if texts.m == nil {
		texts.m = map[string]postproc.Mat{}
	}
	texts.m[key] = t
	return t, nil
}

// rows picks rows of m.
func rows(m postproc.Mat, idx []int) postproc.Mat {
	out := postproc.Mat{Rows: len(idx), Cols: m.Cols}
	for _, i := range idx {
		out.Data = append(out.Data, m.Row(i)...)
	}
	return out
}

// scorer scores the images of one category.
type scorer struct {
	text    postproc.Mat // unit class vectors of the test ensemble, normal first
	head    *vand.Head
	up      *vand.Upsampler
	score   ImageScore
	tab     *Tables
	dataset string
	// classes are the category's multi-type classes and cols their
	// columns in the dataset's defect list; nil without multi-type
	// output. shared says that the multi-type ensemble is the test one,
	// whose upsampled logits the class maps then reuse; local holds the
	// class vectors of another ensemble otherwise.
	classes []string
	cols    []int
	shared  bool
	local   postproc.Mat
}

func (sc *scorer) Classes() []string { return sc.classes }

// ClassOf maps a raw defect type to the category's class through the
// official type-mask tables (Tables.DefectName).
func (sc *scorer) ClassOf(defect string) (int, bool) {
	if sc.classes == nil {
		return 0, false
	}
	name, ok := sc.tab.DefectName(sc.dataset, defect)
	if !ok {
		return 0, false
	}
	k := slices.Index(sc.classes, name)
	return k, k >= 0
}

// Close releases the linear layers.
func (sc *scorer) Close() error { return sc.head.Close() }

// FinishScores turns the category's top-3 means into test.py's final
// scores, (v − min)/(max − min), or zeros when max − min ≤ 1e-12
// (evaluate_one_object, lines 131-139). The softmax variant keeps its
// scores.
func (sc *scorer) FinishScores(raw []float64) ([]float64, error) {
	if sc.score != TopKScore || !minMax {
		return raw, nil
	}
	return MinMax(raw), nil
}

// MinMax is test.py's per-category normalisation of the image scores.
func MinMax(v []float64) []float64 {
	out := make([]float64, len(v))
	if len(v) == 0 {
		return out
	}
	lo, hi := slices.Min(v), slices.Max(v)
	if den := hi - lo; den > minMaxEps {
		for i, x := range v {
			out[i] = (x - lo) / den
		}
	}
	return out
}

// Score computes the map, the image score before the category's
// normalisation, and the class maps (test.py lines 314-341;
// test_multi_defect.py lines 579-612).
func (sc *scorer) Score(ctx context.Context, f bench.Features) (*bench.Output, error) {
	probs, err := vand.ImageProbs(f, sc.text)
	if err != nil {
		return nil, fmt.Errorf("multiads: %w", err)
	}
	size := sc.head.Size()
	n := size * size
	out := &bench.Output{Map: make([]float32, n)}
	if sc.classes != nil {
		out.ClassMaps = make([][]float32, len(sc.classes))
		for k := range out.ClassMaps {
			out.ClassMaps[k] = make([]float32, n)
		}
	}
	for j := range sc.head.Layers {
		x, err := sc.head.Project(ctx, f, j)
		if err != nil {
			return nil, fmt.Errorf("multiads: %w", err)
		}
		g, err := sc.up.Logits(x, sc.text)
		if err != nil {
			return nil, fmt.Errorf("multiads: %w", err)
		}
		// Σ_{c≥1} softmax_c, and the class maps when their logits are
		// columns of these.
		var local []int
		var acc [][]float32
		if sc.shared {
			local, acc = sc.cols, out.ClassMaps
		}
		layer, err := vand.DefectMass(g, local, acc)
		if err != nil {
			return nil, fmt.Errorf("multiads: %w", err)
		}
		for i, v := range layer {
			out.Map[i] += v
		}
		if sc.classes == nil || sc.shared {
			continue
		}
		lg, err := sc.up.Logits(x, sc.local)
		if err != nil {
			return nil, fmt.Errorf("multiads: %w", err)
		}
		if err := vand.SoftmaxPlanes(lg); err != nil {
			return nil, fmt.Errorf("multiads: %w", err)
		}
		for k := range sc.classes {
			dst := out.ClassMaps[k]
			for i, v := range lg.Plane(k) {
				dst[i] += v
			}
		}
	}
	switch sc.score {
	case SoftmaxScore:
		var s float32
		for _, v := range probs[1:] {
			s += v
		}
		out.Image = s
	default:
		out.Image = float32(topMean(out.Map, TopK))
	}
	return out, nil
}

// topMean is the mean of the k largest values of m, in float32 as numpy
// averages a float32 array.
func topMean(m []float32, k int) float64 {
	k = min(k, len(m))
	if k == 0 {
		return 0
	}
	top := make([]float32, 0, k+1)
	for _, v := range m {
		if len(top) < k || v > top[0] {
			i, _ := slices.BinarySearch(top, v)
			top = slices.Insert(top, i, v)
			if len(top) > k {
				top = top[1:]
			}
		}
	}
	var s float32
	for _, v := range top {
		s += v
	}
	return float64(s / float32(k))
}
