package adaclip

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dapobench/dapobench/baselines/adaclip/kmeans"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Options select an AdaCLIP variant. The zero value plus Learned is
// AdaCLIP as its test.py runs it.
type Options struct {
	// Name labels the variant in results ("adaclip" when empty).
	Name string
	// Learned holds the 38 tensors of the official checkpoint (for
	// ViT-L): an imported checkpoint, or seeded initial values (then every
	// output says "untrained").
	Learned *checkpoints.Learned
	// PerImageSeeds seeds every image's k-means as the first image of a
	// fresh process; otherwise image n of the run gets the n-th fit's
	// seeds of one stream (docs/methods.md#adaclip-kmeans-seeding).
	PerImageSeeds bool
	// First is how k-means++ draws its first centre (scikit-learn 1.2
	// or ≥ 1.3).
	First kmeans.FirstCentre
	// NoHSF scores the image from the projected class token alone
	// (use_hsf=False).
	NoHSF bool
	// NoSmoothing skips the Gaussian filter.
	NoSmoothing bool
}

// Scheme is AdaCLIP as a bench.Scheme.
type Scheme struct {
	opt Options

	mu       sync.Mutex
	streams  map[int]*kmeans.Stream // by patch count
	textHash map[string]string      // text graph digest, by model directory

	// textComputed and textCached count the per-image text features run
	// through the text tower or read from the feature cache.
	textComputed, textCached atomic.Int64
}

// New checks the options and returns the scheme.
func New(opt Options) (*Scheme, error) {
	if opt.Learned == nil {
		return nil, fmt.Errorf("adaclip: no learned tensors (import a checkpoint or use untrained ones)")
	}
	if opt.Learned.Scheme != checkpoints.AdaCLIP {
		return nil, fmt.Errorf("adaclip: learned tensors are for %s", opt.Learned.Scheme)
	}
	if opt.Name == "" {
		opt.Name = "adaclip"
	}
	return &Scheme{opt: opt, streams: map[int]*kmeans.Stream{}, textHash: map[string]string{}}, nil
}

// The scheme satisfies the pipeline's contract.
var _ bench.Scheme = (*Scheme)(nil)

// Name is the variant's name, as results and tables show it.
func (s *Scheme) Name() string { return s.opt.Name }

// Variant is the model variant whose graphs the scheme runs.
func (s *Scheme) Variant() clip.Variant { return clip.AdaCLIP }

// TextCounts says how many per-image text features were computed by the
// text tower and how many were read from the feature cache.
func (s *Scheme) TextCounts() (computed, cached int64) {
	return s.textComputed.Load(), s.textCached.Load()
}

// Settings describe the variant for the run manifest.
func (s *Scheme) Settings() map[string]string {
	seeds := "numpy RandomState(111), one stream consumed image by image in run order"
	if s.opt.PerImageSeeds {
		seeds = "numpy RandomState(111) afresh for every image"
	}
	first := "randint (scikit-learn 1.2)"
	if s.opt.First == kmeans.ChoiceUnitWeights {
		first = "choice with unit weights (scikit-learn >= 1.3)"
	}
	m := map[string]string{
		"prompts":     s.opt.Learned.Label(),
		"sentences":   "7 normal and 5 abnormal states × 4 templates, text prompts per image",
		"logit_scale": strconv.Itoa(LogitScale),
		"image_score": fmt.Sprintf("softmax(100·normalize(%g·HSF + %g·cls)·T)[abnormal]", HSFAlpha, 1-HSFAlpha),
		"hsf":         fmt.Sprintf("top %d·k patches, k-means k=%d, k-means++ first centre by %s; seeds: %s", topPerCluster, Clusters, first, seeds),
		"map":         "mean over layers of 100·cos logits, bilinear align_corners=True, softmax, (p_abnormal + 1 − p_normal)/2",
		"smoothing":   fmt.Sprintf("gaussian σ=%v (scipy reflect, truncate %v)", Sigma, Truncate),
	}
	if s.opt.NoHSF {
		m["image_score"], m["hsf"] = "softmax(100·cls·T)[abnormal]", "none"
	}
	if s.opt.NoSmoothing {
		m["smoothing"] = "none"
	}
	return m
}

// check reports whether the model suits AdaCLIP and the learned tensors
// fit it.
func (s *Scheme) check(m *clip.Manifest) error {
	if m.Variant != clip.AdaCLIP {
		return fmt.Errorf("adaclip: model is a %s model, want %s", m.Variant, clip.AdaCLIP)
	}
	if err := s.opt.Learned.Check(m); err != nil {
		return fmt.Errorf("adaclip: %w", err)
	}
	if l := m.Grid * m.Grid; !s.opt.NoHSF && TopK(l) < Clusters {
		return fmt.Errorf("adaclip: %d patches at image size %d: k-means needs at least %d (n_samples should be >= n_clusters)", l, m.ImageSize, Clusters)
	}
	return nil
}

// learnedInputs are the learned tensors a graph of the model takes, by
// its input names; skip names its other inputs. The graph need not be
// loaded (bench.Model.GraphInputs).
func (s *Scheme) learnedInputs(m *bench.Model, graph string, skip ...string) (map[string]runner.Tensor, error) {
	ins, err := m.GraphInputs(graph)
	if err != nil {
		return nil, fmt.Errorf("adaclip: %w", err)
	}
	out := map[string]runner.Tensor{}
	for _, in := range ins {
		if slices.Contains(skip, in.Name) {
			continue
		}
		t, ok := s.opt.Learned.Tensors[in.Name]
		if !ok {
			return nil, fmt.Errorf("adaclip: the learned tensors lack %s, an input of %s", in.Name, m.Manifest.Path(m.Dir, graph))
		}
		out[in.Name] = bench.TensorOf(t)
	}
	return out, nil
}

// ImageInputs are the learned tensors of the image tower: static visual
// prompts, dynamic-prompt heads, patch and class-token projections. They
// are part of the feature-cache key. The model and tensors are checked
// here so that a mismatch stops a run before any image is read.
func (s *Scheme) ImageInputs(m *bench.Model) (map[string]runner.Tensor, error) {
	if err := s.check(m.Manifest); err != nil {
		return nil, err
	}
	return s.learnedInputs(m, "image", clip.InPixels)
}

// Extract keeps the projected class token, the plain image embedding (the
// source of the text prompts) and the projected patch tokens of every
// feature layer: all variants share one feature-cache entry.
func (s *Scheme) Extract(ctx context.Context, m *bench.Model, out map[string]runner.Tensor, batch int) ([]bench.Features, error) {
	names := []string{clip.OutImageEmbed, clip.OutImageEmbedPlain}
	for _, l := range m.Manifest.FeatureLayers {
		names = append(names, clip.OutPatch(l))
	}
	f, err := bench.SplitBatch(out, names, batch)
	if err != nil {
		return nil, fmt.Errorf("adaclip: %w", err)
	}
	return f, nil
}

// stream is the k-means seed stream of images of l patches.
func (s *Scheme) stream(l int) *kmeans.Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.streams[l]
	if !ok {
		st = kmeans.NewStream(KMeansSeed, TopK(l), kmeans.Options{K: Clusters, First: s.opt.First})
		s.streams[l] = st
	}
	return st
}

// Draws are the k-means draws of the run's n-th image.
func (s *Scheme) Draws(l, n int) (kmeans.Draws, error) {
	if s.opt.PerImageSeeds {
		n = 0
	}
	return s.stream(l).At(n)
}

// textDigest identifies a model directory's text graph (the files' bytes).
func (s *Scheme) textDigest(m *bench.Model) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.textHash[m.Dir]; ok {
		return d, nil
	}
	h := sha256.New()
	p := m.Manifest.Path(m.Dir, "text")
	for _, f := range []string{p, p + ".data"} {
		fh, err := os.Open(f)
		if err != nil {
			if f != p && os.IsNotExist(err) {
				continue
			}
			return "", fmt.Errorf("adaclip: %w", err)
		}
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", fmt.Errorf("adaclip: %s: %w", f, err)
		}
	}
	d := hex.EncodeToString(h.Sum(nil))
	s.textHash[m.Dir] = d
	return d, nil
}

// Prepare tokenises the category's sentences and readies the per-image
// text tower.
func (s *Scheme) Prepare(ctx context.Context, m *bench.Model, c bench.Category) (bench.Scorer, error) {
	if err := s.check(m.Manifest); err != nil {
		return nil, err
	}
	text, err := NewTextInputs(m.Tokenizer, m.TokenEmbedding, c.PromptName)
	if err != nil {
		return nil, err
	}
	learned, err := s.learnedInputs(m, "text", clip.InEmbeds, clip.InEOTIndex, clip.InImageEmbedPlain)
	if err != nil {
		return nil, err
	}
	sc, err := s.newScorer(m.Manifest, text, func(ctx context.Context, e []float32) ([]float32, error) {
		in := map[string]runner.Tensor{
			clip.InEmbeds:          bench.TensorOf(text.Embeds),
			clip.InEOTIndex:        {Shape: []int64{int64(len(text.EOT))}, Int64: text.EOT},
			clip.InImageEmbedPlain: {Shape: []int64{1, int64(len(e))}, Float32: e},
		}
		for k, v := range learned {
			in[k] = v
		}
		// Loaded at the first image whose text features are not cached.
		tower, err := m.TextTower(ctx)
		if err != nil {
			return nil, err
		}
		out, err := tower.Run(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("adaclip: text tower: %w", err)
		}
		return out[clip.OutTextFeatures].Float32, nil
	})
	if err != nil {
		return nil, err
	}
	if c.Cache != nil {
		digest, err := s.textDigest(m)
		if err != nil {
			return nil, err
		}
		normal, abnormal := Sentences(c.PromptName)
		sh := sha256.Sum256([]byte(strings.Join(append(normal, abnormal...), "\n")))
		sc.cache = c.Cache
		sc.cacheModel = "adaclip text features v1 " + digest + " " + hashTensors(learned)
		sc.cachePre = "sentences " + hex.EncodeToString(sh[:16])
	}
	return sc, nil
}

// hashTensors digests named tensors (names, shapes, values).
func hashTensors(ts map[string]runner.Tensor) string {
	h := sha256.New()
	var b [8]byte
	for _, k := range slices.Sorted(maps.Keys(ts)) {
		t := ts[k]
		io.WriteString(h, k)
		for _, d := range t.Shape {
			binary.LittleEndian.PutUint64(b[:], uint64(d))
			h.Write(b[:])
		}
		for _, v := range t.Float32 {
			binary.LittleEndian.PutUint32(b[:4], math.Float32bits(v))
			h.Write(b[:4])
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}
