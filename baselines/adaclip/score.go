package adaclip

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/clip"
)

// textTower runs the text graph on the category's sentences with the
// image's plain embedding e and returns the sentence features [N·E].
type textTower func(ctx context.Context, e []float32) ([]float32, error)

// scorer scores the images of one category.
type scorer struct {
	s          *Scheme
	text       *TextInputs
	run        textTower
	layers     []int
	grid, size int
	embed      int
	up         *postproc.Bilinear
	smooth     *postproc.Gaussian // nil: no smoothing

	// cache keeps the per-image text features (nil: none), under keys
	// made of cacheModel, cachePre and the plain embedding's bytes.
	cache                *featcache.Cache
	cacheModel, cachePre string
}

func (s *Scheme) newScorer(m *clip.Manifest, text *TextInputs, run textTower) (*scorer, error) {
	up, err := postproc.NewBilinear(m.Grid, m.Grid, m.ImageSize, m.ImageSize, true)
	if err != nil {
		return nil, fmt.Errorf("adaclip: %w", err)
	}
	sc := &scorer{s: s, text: text, run: run, layers: slices.Clone(m.FeatureLayers), grid: m.Grid,
		size: m.ImageSize, embed: m.EmbedDim, up: up}
	if !s.opt.NoSmoothing {
		if sc.smooth, err = postproc.NewGaussian(Sigma, Truncate); err != nil {
			return nil, fmt.Errorf("adaclip: %w", err)
		}
	}
	return sc, nil
}

func (sc *scorer) Classes() []string          { return nil }
func (sc *scorer) ClassOf(string) (int, bool) { return 0, false }

// Score scores an image as the first image of a run.
func (sc *scorer) Score(ctx context.Context, f bench.Features) (*bench.Output, error) {
	return sc.ScoreAt(ctx, 0, f)
}

// TextFeatures turns the text tower's sentence features [N, E] (normal
// rows first) into the two unit rows [t_normal, t_abnormal]: per state,
// every sentence normalised, averaged, normalised (encode_text), then
// F.normalize once more (TextEmbebddingLayer.forward).
func TextFeatures(sentences []float32, normal, e int) ([2][]float32, error) {
	var t [2][]float32
	n := len(sentences) / e
	if n*e != len(sentences) || normal <= 0 || normal >= n {
		return t, fmt.Errorf("adaclip: %d text feature values for width %d and %d normal sentences", len(sentences), e, normal)
	}
	rows := slices.Clone(sentences)
	if err := normalizeRows(rows, e); err != nil {
		return t, err
	}
	for k, span := range [2][2]int{{0, normal}, {normal, n}} {
		mean := make([]float32, e)
		for j := range e {
			s := 0.0
			for i := span[0]; i < span[1]; i++ {
				s += float64(rows[i*e+j])
			}
			mean[j] = float32(s / float64(span[1]-span[0]))
		}
		if err := normalizeRows(mean, e); err != nil {
			return t, err
		}
		m := postproc.Mat{Rows: 1, Cols: e, Data: mean}
		if err := postproc.NormalizeRows(m); err != nil {
			return t, err
		}
		t[k] = mean
	}
	return t, nil
}

// textFeatures are an image's text rows: from the feature cache, or the
// text tower on its plain embedding e.
func (sc *scorer) textFeatures(ctx context.Context, e []float32) ([2][]float32, error) {
	var key featcache.Key
	if sc.cache != nil {
		h := sha256.New()
		var b [4]byte
		for _, v := range e {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			h.Write(b[:])
		}
		key = featcache.Key{Model: sc.cacheModel, Preprocess: sc.cachePre, Content: hex.EncodeToString(h.Sum(nil))}
		ent, err := sc.cache.Get(ctx, key)
		switch {
		case err == nil:
			if t, ok := ent.Tensor("text_features"); ok && len(t.Data) == 2*sc.embed {
				sc.s.textCached.Add(1)
				return [2][]float32{t.Data[:sc.embed], t.Data[sc.embed:]}, nil
			}
		case !errors.Is(err, featcache.ErrMiss) && !errors.Is(err, featcache.ErrCorrupt):
			return [2][]float32{}, fmt.Errorf("adaclip: feature cache: %w", err)
		}
	}
	raw, err := sc.run(ctx, e)
	if err != nil {
		return [2][]float32{}, err
	}
	t, err := TextFeatures(raw, sc.text.Normal, sc.embed)
	if err != nil {
		return t, err
	}
	sc.s.textComputed.Add(1)
	if sc.cache != nil {
		ent := featcache.Entry{Tensors: []featcache.Tensor{{Name: "text_features", Shape: []int{2, sc.embed}, Data: slices.Concat(t[0], t[1])}}}
		if err := sc.cache.Put(ctx, key, ent); err != nil {
			return t, fmt.Errorf("adaclip: feature cache: %w", err)
		}
	}
	return t, nil
}

// tensor returns a feature tensor with n values.
func tensor(f bench.Features, name string, n int) ([]float32, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("adaclip: features lack %s", name)
	}
	if len(t.Data) != n {
		return nil, fmt.Errorf("adaclip: %s has %d values (shape %v), want %d", name, len(t.Data), t.Shape, n)
	}
	return t.Data, nil
}

// ScoreAt scores the run's n-th image (test.py, aggregation=True).
func (sc *scorer) ScoreAt(ctx context.Context, n int, f bench.Features) (*bench.Output, error) {
	e, g2 := sc.embed, sc.grid*sc.grid
	plain, err := tensor(f, clip.OutImageEmbedPlain, e)
	if err != nil {
		return nil, err
	}
	cls, err := tensor(f, clip.OutImageEmbed, e)
	if err != nil {
		return nil, err
	}
	cls = slices.Clone(cls)
	if err := normalizeRows(cls, e); err != nil {
		return nil, err
	}
	t, err := sc.textFeatures(ctx, plain)
	if err != nil {
		return nil, err
	}
	raw := make([][]float32, len(sc.layers))
	for k, l := range sc.layers {
		if raw[k], err = tensor(f, clip.OutPatch(l), g2*e); err != nil {
			return nil, err
		}
	}
	patches, logits, err := PatchLogits(raw, t, e)
	if err != nil {
		return nil, err
	}
	var h []float32
	if !sc.s.opt.NoHSF {
		d, err := sc.s.Draws(g2, n)
		if err != nil {
			return nil, err
		}
		fu, err := HSF(patches, logits, e, sc.s.opt.First, d)
		if err != nil {
			return nil, err
		}
		h = fu.Feature
	}
	out := &bench.Output{Image: imageScore(h, cls, t, !sc.s.opt.NoHSF)}
	if out.Map, err = sc.anomalyMap(meanLogits(logits)); err != nil {
		return nil, err
	}
	return out, nil
}

// anomalyMap upsamples the mean logits [G², 2] to S×S (bilinear,
// align_corners=True), takes the softmax over the two classes per pixel
// and (p_abnormal + 1 − p_normal)/2, then smooths. The official code
// upsamples every layer's logits and averages them after; upsampling is
// linear, so averaging first gives the same map up to float rounding at a
// quarter of the cost (docs/methods.md#adaclip-map).
func (sc *scorer) anomalyMap(mean []float32) ([]float32, error) {
	g2, s2 := sc.grid*sc.grid, sc.size*sc.size
	planes := make([]float32, 2*g2)
	for i := range g2 {
		planes[i], planes[g2+i] = mean[2*i], mean[2*i+1]
	}
	up := make([]float32, 2*s2)
	if err := sc.up.Apply(postproc.Grid{C: 2, H: sc.size, W: sc.size, Data: up}, postproc.Grid{C: 2, H: sc.grid, W: sc.grid, Data: planes}); err != nil {
		return nil, fmt.Errorf("adaclip: %w", err)
	}
	m := make([]float32, s2)
	for i := range m {
		a, b := float64(up[i]), float64(up[s2+i])
		hi := max(a, b)
		ea, eb := math.Exp(a-hi), math.Exp(b-hi)
		p0, p1 := float32(ea/(ea+eb)), float32(eb/(ea+eb))
		m[i] = (p1 + 1 - p0) / 2
	}
	if sc.smooth == nil {
		return m, nil
	}
	out := make([]float32, s2)
	if err := sc.smooth.Filter(out, m, sc.size, sc.size); err != nil {
		return nil, fmt.Errorf("adaclip: %w", err)
	}
	return out, nil
}
