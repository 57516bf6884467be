package adaclip

import (
	"fmt"
	"math"
	"slices"

	"github.com/dapobench/dapobench/baselines/adaclip/kmeans"
)

// Constants of AdaCLIP's forward pass (docs/methods.md#adaclip-scoring,
// docs/methods.md#adaclip-hsf).
const (
	// LogitScale multiplies every cosine: 100, hard-coded, not CLIP's
	// logit_scale (method/adaclip.py L513, L525).
	LogitScale = 100
	// Clusters is k_clusters, the default of train.py and test.py.
	Clusters = 20
	// topPerCluster: HSF clusters the 5·k most anomalous patches
	// (n_aggregate_patch_tokens, method/adaclip.py L238).
	topPerCluster = 5
	// HSFAlpha mixes the fused feature with the class token:
	// f = normalize(α·h + (1−α)·c) (method/adaclip.py L516-L521).
	HSFAlpha = 0.2
	// KMeansSeed is setup_seed(111) of train.py and test.py: numpy's
	// global generator, which KMeans(random_state=None) draws from.
	KMeansSeed = 111
	// Sigma is the σ of the Gaussian on every test map (trainer.py
	// L193-L195; scipy's reflect mode, truncate 4).
	Sigma = 4
	// Truncate is scipy's default truncate.
	Truncate = 4
)

// TopK is how many patches HSF clusters for an image of L patches:
// min(L, 5·Clusters).
func TopK(l int) int { return min(l, topPerCluster*Clusters) }

// normalizeRows is x / ‖x‖ over each row of width e, in place, as
// x / x.norm(dim=-1, keepdim=True) (no epsilon): the norm accumulated in
// float64 and rounded to float32, the division in float32.
func normalizeRows(x []float32, e int) error {
	for i := 0; i < len(x); i += e {
		row := x[i : i+e]
		s := 0.0
		for _, v := range row {
			s += float64(v) * float64(v)
		}
		n := float32(math.Sqrt(s))
		if n == 0 || math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
			return fmt.Errorf("adaclip: feature row %d has norm %v", i/e, n)
		}
		for j, v := range row {
			row[j] = v / n
		}
	}
	return nil
}

// layerLogits is 100·F·T for unit patch tokens F [L, E] and the text rows
// T = [t_normal; t_abnormal]: [L, 2] float32.
func layerLogits(f []float32, t [2][]float32, e int) []float32 {
	l := len(f) / e
	out := make([]float32, 2*l)
	for i := range l {
		row := f[i*e : (i+1)*e]
		for c := range 2 {
			s := 0.0
			for j, v := range row {
				s += float64(v) * float64(t[c][j])
			}
			out[2*i+c] = float32(LogitScale * s)
		}
	}
	return out
}

// PatchLogits normalises the projected patch tokens of every feature layer
// (raw[k] is [L, E]) and computes their logits 100·F·T ([L, 2]); raw is not
// modified.
func PatchLogits(raw [][]float32, t [2][]float32, e int) (patches, logits [][]float32, err error) {
	patches, logits = make([][]float32, len(raw)), make([][]float32, len(raw))
	for k, r := range raw {
		if len(r) == 0 || len(r)%e != 0 {
			return nil, nil, fmt.Errorf("adaclip: layer %d has %d token values, not a multiple of %d", k, len(r), e)
		}
		patches[k] = slices.Clone(r)
		if err := normalizeRows(patches[k], e); err != nil {
			return nil, nil, err
		}
		logits[k] = layerLogits(patches[k], t, e)
	}
	return patches, logits, nil
}

// meanLogits is the mean over layers of their [L, 2] logits, in float32
// as torch.mean over the stacked layers.
func meanLogits(logits [][]float32) []float32 {
	out := make([]float32, len(logits[0]))
	for i := range out {
		s := 0.0
		for _, lg := range logits {
			s += float64(lg[i])
		}
		out[i] = float32(s / float64(len(logits)))
	}
	return out
}

// abnormalProb is softmax over the two classes, the abnormal column, per
// row of [L, 2] logits.
func abnormalProb(logits []float32) []float32 {
	out := make([]float32, len(logits)/2)
	for i := range out {
		a, b := float64(logits[2*i]), float64(logits[2*i+1])
		m := max(a, b)
		ea, eb := math.Exp(a-m), math.Exp(b-m)
		out[i] = float32(eb / (ea + eb))
	}
	return out
}

// topIndices are the k positions of the largest values, largest first
// (torch.topk, sorted); equal values keep their index order.
func topIndices(v []float32, k int) []int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case v[a] > v[b]:
			return -1
		case v[a] < v[b]:
			return 1
		}
		return 0
	})
	return idx[:k]
}

// Fusion is the hybrid semantic fusion of one image
// (HybridSemanticFusion.forward, method/adaclip.py L233-L286;
// docs/methods.md#adaclip-hsf).
type Fusion struct {
	// Indices are the clustered patches, most anomalous first, and Prob
	// their anomaly probabilities a (float32 ties between implementations
	// can order them differently: docs/methods.md#adaclip-hsf-ties).
	Indices []int
	Prob    []float32
	// Labels are their k-means clusters, and Init the positions (in
	// Indices) of the k-means++ seeds.
	Labels, Init []int
	// Weights [L] give the fused feature as a linear combination of the
	// patch tokens: h = normalize(Σ_l Weights[l]·Σ_layers F[l]), with
	// 1/(Clusters·layers·|cluster|) at a clustered patch and 0 elsewhere.
	// The training graph takes them as an input.
	Weights []float32
	// Feature is h, unit length.
	Feature []float32
}

// HSF fuses an image's unit patch tokens (one [L, E] slice per feature
// layer) given its layer logits ([L, 2] each) and the k-means draws of its
// fit:
//
//  1. a = softmax(mean over layers of the logits)[abnormal];
//  2. the TopK(L) patches of highest a;
//  3. k-means (Clusters groups) on their tokens, the layers concatenated
//     along the features;
//  4. each cluster's mean over its patches' tokens of every layer; h the
//     normalised mean of the cluster means: every cluster weighs 1/20
//     whatever its size.
//
// A cluster left empty (only possible with duplicate tokens) makes the
// official feature NaN; here it is an error.
func HSF(patches [][]float32, logits [][]float32, e int, first kmeans.FirstCentre, d kmeans.Draws) (*Fusion, error) {
	if len(patches) == 0 || len(patches) != len(logits) || e <= 0 {
		return nil, fmt.Errorf("adaclip: hsf: %d layers of tokens, %d of logits", len(patches), len(logits))
	}
	l := len(patches[0]) / e
	for k := range patches {
		if len(patches[k]) != l*e || len(logits[k]) != 2*l {
			return nil, fmt.Errorf("adaclip: hsf: layer %d has %d token values and %d logits, want %d×%d and %d×2", k, len(patches[k]), len(logits[k]), l, e, l)
		}
	}
	prob := abnormalProb(meanLogits(logits))
	idx := topIndices(prob, TopK(l))
	nl := len(patches)
	x := make([]float32, 0, len(idx)*nl*e)
	for _, i := range idx {
		for k := range nl {
			x = append(x, patches[k][i*e:(i+1)*e]...)
		}
	}
	r, err := kmeans.Fit(x, len(idx), nl*e, kmeans.Options{K: Clusters, First: first}, d)
	if err != nil {
		return nil, fmt.Errorf("adaclip: hsf: %w", err)
	}
	f, err := FusionOf(patches, e, idx, r.Labels)
	if err != nil {
		return nil, err
	}
	f.Init = r.Init
	for _, i := range idx {
		f.Prob = append(f.Prob, prob[i])
	}
	return f, nil
}

// FusionOf is the fusion of given clustered patches (idx, most anomalous
// first) and their cluster labels: the HSF weights and the feature h.
func FusionOf(patches [][]float32, e int, idx, labels []int) (*Fusion, error) {
	l := len(patches[0]) / e
	if len(idx) != len(labels) {
		return nil, fmt.Errorf("adaclip: hsf: %d patches, %d labels", len(idx), len(labels))
	}
	size := make([]int, Clusters)
	for n, c := range labels {
		if c < 0 || c >= Clusters || idx[n] < 0 || idx[n] >= l {
			return nil, fmt.Errorf("adaclip: hsf: patch %d in cluster %d", idx[n], c)
		}
		size[c]++
	}
	for c, n := range size {
		if n == 0 {
			return nil, fmt.Errorf("adaclip: hsf: k-means left cluster %d of %d empty (duplicate patch tokens); the official code's image score is NaN here", c, Clusters)
		}
	}
	nl := len(patches)
	f := &Fusion{Indices: slices.Clone(idx), Labels: slices.Clone(labels), Weights: make([]float32, l)}
	h := make([]float64, e)
	for n, i := range idx {
		w := 1 / (float64(Clusters) * float64(nl) * float64(size[labels[n]]))
		f.Weights[i] = float32(w)
		for k := range nl {
			for j, v := range patches[k][i*e : (i+1)*e] {
				h[j] += w * float64(v)
			}
		}
	}
	f.Feature = unit(h)
	return f, nil
}

// unit is F.normalize(v, dim) (eps 1e-12) in float32.
func unit(v []float64) []float32 {
	s := 0.0
	for _, x := range v {
		s += x * x
	}
	n := max(math.Sqrt(s), 1e-12)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x / n)
	}
	return out
}

// imageScore is softmax(100·f·T)[abnormal] of f = normalize(α·h + (1−α)·c)
// (or of c alone without HSF).
func imageScore(h, c []float32, t [2][]float32, useHSF bool) float32 {
	mix := make([]float64, len(c))
	for j := range c {
		if useHSF {
			mix[j] = HSFAlpha*float64(h[j]) + (1-HSFAlpha)*float64(c[j])
		} else {
			mix[j] = float64(c[j])
		}
	}
	f := unit(mix)
	var lg [2]float64
	for k := range 2 {
		for j, v := range f {
			lg[k] += float64(v) * float64(t[k][j])
		}
		lg[k] = float64(float32(LogitScale * lg[k]))
	}
	m := max(lg[0], lg[1])
	a, b := math.Exp(lg[0]-m), math.Exp(lg[1]-m)
	return float32(b / (a + b))
}
