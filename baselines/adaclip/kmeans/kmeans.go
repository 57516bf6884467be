// Package kmeans is scikit-learn's KMeans(n_clusters=k, n_init="auto")
// as AdaCLIP calls it on every image (docs/methods.md#adaclip-kmeans): one
// k-means++ initialisation with 2 + ⌊ln k⌋ local trials, then Lloyd's
// iterations, with the random draws taken from numpy's legacy global
// generator (MT19937) in the order scikit-learn takes them.
//
// The draws of one fit do not depend on the data (Draw), so the draws of
// the n-th fit of a process can be computed without the data of the
// fits before it (Stream): images can be scored in any order, in parallel
// or after a resume, and still get the seeds the official process would
// give them.
//
// Arithmetic is float64 on the float32 data. scikit-learn computes its
// distances in float32 (the Lloyd step through BLAS), so where two
// distances tie within float32 rounding the labels may differ; with the
// distinct tokens of real images such ties do not occur in practice.
package kmeans

import (
	"fmt"
	"math"
	"slices"
)

// FirstCentre is how k-means++ draws its first centre.
type FirstCentre int

const (
	// RandInt is scikit-learn ≤ 1.2: random_state.randint(n_samples).
	RandInt FirstCentre = iota
	// ChoiceUnitWeights is scikit-learn ≥ 1.3:
	// random_state.choice(n_samples, p=sample_weight/sample_weight.sum())
	// with float32 unit weights (the data's dtype).
	ChoiceUnitWeights
)

// Defaults of sklearn.cluster.KMeans.
const (
	DefaultMaxIter = 300
	DefaultTol     = 1e-4
)

// Options are a KMeans configuration.
type Options struct {
	K     int
	First FirstCentre
	// MaxIter and Tol default to scikit-learn's 300 and 1e-4.
	MaxIter int
	Tol     float64
}

func (o Options) withDefaults() Options {
	if o.MaxIter == 0 {
		o.MaxIter = DefaultMaxIter
	}
	if o.Tol == 0 {
		o.Tol = DefaultTol
	}
	return o
}

// Trials is k-means++'s number of local trials, 2 + ⌊ln k⌋.
func Trials(k int) int { return 2 + int(math.Log(float64(k))) }

// Draws are the random numbers one fit consumes: the first centre, and
// for each further centre Trials(k) uniforms in [0, 1).
type Draws struct {
	First int
	U     []float64
}

// Draw takes one fit's draws from g for n samples, in scikit-learn's
// order: the first centre, then random_state.uniform(size=trials) for each
// of the k−1 other centres.
func Draw(g *MT19937, n int, o Options) Draws {
	var d Draws
	switch o.First {
	case ChoiceUnitWeights:
		// sample_weight is float32 ones (X.dtype); p = w / w.sum() is
		// float32, and choice converts it to float64.
		p := make([]float64, n)
		w := float32(1) / float32(n)
		for i := range p {
			p[i] = float64(w)
		}
		d.First = g.Choice(p)
	default:
		d.First = g.IntN(n)
	}
	t := Trials(o.K)
	d.U = make([]float64, (o.K-1)*t)
	for i := range d.U {
		d.U[i] = g.Float64()
	}
	return d
}

// Result is a fit's outcome.
type Result struct {
	// Labels are the cluster of each sample (fit_predict).
	Labels []int
	// Init are the samples k-means++ chose as initial centres.
	Init []int
	// Iter counts Lloyd iterations (n_iter_).
	Iter int
}

// Fit clusters the n rows of x ([n, dim], float32 as scikit-learn receives
// them) with the draws of one fit.
func Fit(x []float32, n, dim int, o Options, d Draws) (Result, error) {
	o = o.withDefaults()
	if o.K < 1 || n < o.K {
		return Result{}, fmt.Errorf("kmeans: n_samples=%d should be >= n_clusters=%d", n, o.K)
	}
	if dim < 1 || len(x) != n*dim {
		return Result{}, fmt.Errorf("kmeans: %d values for %d×%d samples", len(x), n, dim)
	}
	if d.First < 0 || d.First >= n || len(d.U) != (o.K-1)*Trials(o.K) {
		return Result{}, fmt.Errorf("kmeans: draws of another configuration (first %d, %d uniforms)", d.First, len(d.U))
	}
	// tol = mean of the per-feature variances × tol, on the data as given
	// (_tolerance, before centring).
	tol := 0.0
	mean := make([]float64, dim)
	for i := range n {
		for j, v := range x[i*dim : (i+1)*dim] {
			mean[j] += float64(v)
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	X := make([]float64, n*dim)
	for i := range n {
		for j := range dim {
			c := float64(x[i*dim+j]) - mean[j]
			X[i*dim+j] = c // KMeans.fit centres the data (X -= X_mean)
			tol += c * c
		}
	}
	tol = tol / float64(n) / float64(dim) * o.Tol
	row := func(i int) []float64 { return X[i*dim : (i+1)*dim] }
	init := plusPlus(X, n, dim, o, d)
	centers := make([]float64, o.K*dim)
	for c, i := range init {
		copy(centers[c*dim:], row(i))
	}
	labels := make([]int, n)
	old := slices.Repeat([]int{-1}, n)
	sums := make([]float64, o.K*dim)
	counts := make([]int, o.K)
	strict := false
	it := 0
	for it = 0; it < o.MaxIter; it++ {
		assign(X, n, dim, centers, o.K, labels)
		clear(sums)
		clear(counts)
		for i, l := range labels {
			counts[l]++
			for j, v := range row(i) {
				sums[l*dim+j] += v
			}
		}
		relocate(X, n, dim, centers, labels, sums, counts)
		shift := 0.0
		for c := range o.K {
			if counts[c] > 0 {
				for j := range dim {
					sums[c*dim+j] /= float64(counts[c])
				}
			}
			for j := range dim {
				dd := sums[c*dim+j] - centers[c*dim+j]
				shift += dd * dd
			}
		}
		centers, sums = sums, centers
		if slices.Equal(labels, old) {
			strict = true
			break
		}
		if shift <= tol {
			break
		}
		copy(old, labels)
	}
	if !strict {
		// a last E-step, so that the labels match the centres
		assign(X, n, dim, centers, o.K, labels)
	}
	if it == o.MaxIter {
		it--
	}
	return Result{Labels: labels, Init: init, Iter: it + 1}, nil
}

// plusPlus is _kmeans_plusplus: the first centre, then for each further
// centre Trials candidates drawn in proportion to the squared distance to
// the nearest centre so far (searchsorted on the cumulative sum), keeping
// the candidate that lowers the potential most.
func plusPlus(X []float64, n, dim int, o Options, d Draws) []int {
	t := Trials(o.K)
	idx := []int{d.First}
	closest := make([]float64, n)
	pot := 0.0
	for i := range n {
		closest[i] = dist2(X[i*dim:(i+1)*dim], X[d.First*dim:(d.First+1)*dim])
		pot += closest[i]
	}
	cum := make([]float64, n)
	cand := make([]float64, n)
	best := make([]float64, n)
	for c := 1; c < o.K; c++ {
		acc := 0.0
		for i, v := range closest {
			acc += v
			cum[i] = acc
		}
		bestPot, bestID := math.Inf(1), -1
		for k := range t {
			r := d.U[(c-1)*t+k] * pot
			id, _ := slices.BinarySearch(cum, r) // side="left"
			id = min(id, n-1)
			p := 0.0
			for i := range n {
				cand[i] = min(closest[i], dist2(X[i*dim:(i+1)*dim], X[id*dim:(id+1)*dim]))
				p += cand[i]
			}
			if p < bestPot { // argmin: the first of equal potentials
				bestPot, bestID = p, id
				copy(best, cand)
			}
		}
		pot = bestPot
		copy(closest, best)
		idx = append(idx, bestID)
	}
	return idx
}

// assign labels every sample with its nearest centre, the first on ties.
func assign(X []float64, n, dim int, centers []float64, k int, labels []int) {
	for i := range n {
		x := X[i*dim : (i+1)*dim]
		best, bi := math.Inf(1), 0
		for c := range k {
			if d := dist2(x, centers[c*dim:(c+1)*dim]); d < best {
				best, bi = d, c
			}
		}
		labels[i] = bi
	}
}

// relocate is _relocate_empty_clusters_dense: each empty cluster (in
// order) takes the sample farthest from its current centre (farthest
// first), moved out of its cluster's sums; the labels are not changed.
// scikit-learn orders the far samples with np.argpartition, which leaves
// ties of distance in no defined order; here they are taken in index
// order.
func relocate(X []float64, n, dim int, centers []float64, labels []int, sums []float64, counts []int) {
	var empty []int
	for c, m := range counts {
		if m == 0 {
			empty = append(empty, c)
		}
	}
	if len(empty) == 0 {
		return
	}
	far := make([]int, n)
	dist := make([]float64, n)
	for i := range n {
		far[i] = i
		dist[i] = dist2(X[i*dim:(i+1)*dim], centers[labels[i]*dim:(labels[i]+1)*dim])
	}
	slices.SortStableFunc(far, func(a, b int) int {
		switch {
		case dist[a] > dist[b]:
			return -1
		case dist[a] < dist[b]:
			return 1
		}
		return 0
	})
	for e, c := range empty {
		i := far[e]
		from := labels[i]
		for j, v := range X[i*dim : (i+1)*dim] {
			sums[from*dim+j] -= v
			sums[c*dim+j] = v
		}
		counts[c] = 1
		counts[from]--
	}
}

func dist2(a, b []float64) float64 {
	s := 0.0
	for i, v := range a {
		d := v - b[i]
		s += d * d
	}
	return s
}
