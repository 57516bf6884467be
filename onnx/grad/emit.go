package grad

import (
	"fmt"
	"slices"

	"github.com/dapobench/dapobench/onnx/graph"
)

// emitter writes backward nodes through a Builder and knows how to get
// run-time shapes without keeping activations alive.
type emitter struct {
	b        *Builder
	shapes   map[string]string // shapeOf cache
	sources  map[string]source
	srcShape map[string]string // Shape(input) per graph input
}

// ones is the seed gradient of a scalar loss.
func (e *emitter) ones(loss string) string {
	v := e.b.info(loss)
	var shape []int
	if v.rank == 1 {
		shape = []int{1}
	}
	return e.b.Const(dtypeOf(v), shape, 1)
}

// sum adds gradient contributions of one value; they all have its shape.
func (e *emitter) sum(vs []string) string {
	if len(vs) == 1 {
		return vs[0]
	}
	return e.b.op("Sum", vs)
}

// zerosLike is a zero tensor of x's type and shape.
func (e *emitter) zerosLike(x string) string {
	t, err := floatTensor("value", e.b.info(x).dt, []int64{1}, []float64{0})
	if err != nil {
		e.b.fail(err)
		return ""
	}
	return e.b.op("ConstantOfShape", []string{e.shapeOf(x)}, attrTensor("value", t))
}

// shapeOf returns a 1-D int64 tensor holding v's run-time shape: a
// constant when the build knows it, else read off the graph inputs that
// carry its symbolic dimensions, and only as a last resort Shape(v).
func (e *emitter) shapeOf(v string) string {
	if s, ok := e.shapes[v]; ok {
		return s
	}
	vi := e.b.info(v)
	var s string
	if vi.rank >= 0 {
		s = e.shapeFromDims(vi.dims)
	}
	if s == "" {
		s = e.b.Shape(v)
	}
	e.shapes[v] = s
	return s
}

// shapeFromDims builds a shape tensor for dims, or returns "" when a
// dimension is neither known nor carried by a graph input.
func (e *emitter) shapeFromDims(dims []dim) string {
	var parts []string
	var run []int64
	flush := func() {
		if len(run) > 0 {
			parts = append(parts, e.b.Ints(false, run...))
			run = nil
		}
	}
	for _, d := range dims {
		if d.known() {
			run = append(run, d.n)
			continue
		}
		src, ok := e.sources[d.sym]
		if d.sym == "" || !ok {
			return ""
		}
		flush()
		if e.srcShape == nil {
			e.srcShape = map[string]string{}
		}
		sh, ok := e.srcShape[src.input]
		if !ok {
			sh = e.b.Shape(src.input)
			e.srcShape[src.input] = sh
		}
		parts = append(parts, e.b.Slice(sh, 0, int64(src.axis), int64(src.axis+1)))
	}
	flush()
	switch len(parts) {
	case 0:
		return e.b.Ints(false) // rank 0
	case 1:
		return parts[0]
	}
	return e.b.Concat(0, parts...)
}

// dimOf is dimension i of v as a [1] int64 tensor.
func (e *emitter) dimOf(v string, i int) string {
	d := e.b.info(v).dims[i]
	if d.known() {
		return e.b.Ints(false, d.n)
	}
	return e.b.Slice(e.shapeOf(v), 0, int64(i), int64(i+1))
}

// reduceSum sums over axes with the axes as an input (opset ≥ 13).
func (e *emitter) reduceSum(x string, axes []int64, keep bool) string {
	k := int64(0)
	if keep {
		k = 1
	}
	return e.b.op("ReduceSum", []string{x, e.b.Ints(false, axes...)}, graph.AttrInt("keepdims", k))
}

// reduceMean averages over axes in the form the opset wants.
func (e *emitter) reduceMean(x string, axes []int64, keep bool) string {
	return e.b.reduce("ReduceMean", x, keep, axes)
}

// unbroadcast sums gradient g (of a broadcast result) back to x's shape.
// Axes the build can see were broadcast are summed directly; where a
// symbolic dimension might or might not have been 1, the axes are chosen
// at run time.
func (e *emitter) unbroadcast(g, x string) (string, error) {
	gi, xi := e.b.info(g), e.b.info(x)
	if gi.rank < 0 || xi.rank < 0 {
		return "", fmt.Errorf("reducing a broadcast gradient to %q: %w", x, errNoRank)
	}
	k := gi.rank - xi.rank
	if k < 0 {
		return "", fmt.Errorf("gradient of rank %d for %q of rank %d", gi.rank, x, xi.rank)
	}
	var lead, inner []int64
	for i := range k {
		lead = append(lead, int64(i))
	}
	ambiguous := false
	for i, d := range xi.dims {
		o := gi.dims[k+i]
		switch {
		case d.same(o):
		case d.n == 1:
			inner = append(inner, int64(k+i))
		case d.known(), o.n == 1:
			// x's size is fixed and not 1, or the result's is 1: no broadcast.
		default:
			ambiguous = true
		}
	}
	if ambiguous {
		return e.unbroadcastDynamic(g, x, k), nil
	}
	r := g
	if len(inner) > 0 {
		r = e.reduceSum(r, inner, true)
	}
	if len(lead) > 0 {
		r = e.reduceSum(r, lead, false)
	}
	return r, nil
}

func (e *emitter) unbroadcastDynamic(g, x string, k int) string {
	b := e.b
	xs := e.shapeOf(x)
	if k > 0 {
		ones := make([]int64, k)
		for i := range ones {
			ones[i] = 1
		}
		xs = b.Concat(0, b.Ints(false, ones...), xs)
	}
	one := b.Ints(false, 1)
	mask := b.op("And", []string{b.Equal(xs, one), b.op("Not", []string{b.Equal(b.Shape(g), one)})})
	axes := b.Reshape(b.op("NonZero", []string{mask}), -1)
	r := b.op("ReduceSum", []string{g, axes}, graph.AttrInt("keepdims", 1), graph.AttrInt("noop_with_empty_axes", 1))
	return b.op("Reshape", []string{r, e.shapeOf(x)})
}

// swapLast2 transposes the last two axes.
func (e *emitter) swapLast2(v string) (string, error) {
	r := e.b.info(v).rank
	if r < 2 {
		return "", fmt.Errorf("transposing %q: %w", v, errNoRank)
	}
	perm := make([]int64, r)
	for i := range perm {
		perm[i] = int64(i)
	}
	perm[r-2], perm[r-1] = perm[r-1], perm[r-2]
	return e.b.Transpose(v, perm...), nil
}

// flat2 reshapes v to [-1, last] (Flatten at the last axis).
func (e *emitter) flat2(v string) string {
	r := e.b.info(v).rank
	if r == 2 {
		return v
	}
	return e.b.Flatten(v, int64(r-1))
}

func dtypeOf(v *info) graph.DType { return graph.DType(v.dt) }

// rank returns v's rank or an error naming v.
func (e *emitter) rank(v string) (int, error) {
	r := e.b.info(v).rank
	if r < 0 {
		return 0, fmt.Errorf("%q: %w", v, errNoRank)
	}
	return r, nil
}

// normAxes resolves axes against rank r and sorts them.
func normAxes(axes []int64, r int) ([]int64, error) {
	out := make([]int64, len(axes))
	for i, a := range axes {
		j, err := normAxis(a, r)
		if err != nil {
			return nil, err
		}
		out[i] = int64(j)
	}
	slices.Sort(out)
	return out, nil
}

// zero is 0 of v's float type.
func (e *emitter) zero(v string) string { return e.b.Scalar(v, 0) }

// twoOverSqrtPi is 2/√π, the factor of erf's derivative.
const twoOverSqrtPi = 1.1283791670955126
