package grad

import (
	"fmt"
	"math"
	"slices"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/graph"
)

// vjp is one node's vector-Jacobian product being emitted: the incoming
// gradients gy (one per output, "" where none flows) and which inputs need
// a gradient. A rule returns one gradient per input ("" for none), each
// with exactly that input's shape.
type vjp struct {
	e    *emitter
	n    *pb.NodeProto
	gy   []string
	need func(i int) bool
}

func (c *vjp) in(i int) string { return input(c.n, i) }
func (c *vjp) y() string       { return c.n.GetOutput()[0] }
func (c *vjp) b() *Builder     { return c.e.b }

// g is the gradient of the first output; rules of single-output
// operations use only it.
func (c *vjp) g() (string, error) {
	for k := 1; k < len(c.gy); k++ {
		if c.gy[k] != "" {
			return "", fmt.Errorf("a gradient through output %d (%q) is not supported", k, c.n.GetOutput()[k])
		}
	}
	return c.gy[0], nil
}

type rule func(c *vjp) ([]string, error)

// rules returns the gradient rule of an operation.
func ruleFor(op string) (rule, bool) {
	switch op {
	case "Identity":
		return unary(func(c *vjp, g string) string { return g }), true
	case "Neg":
		return unary(func(c *vjp, g string) string { return c.b().Neg(g) }), true
	case "Cast":
		return gradCast, true
	case "Sigmoid": // σ' = y(1−y)
		return unary(func(c *vjp, g string) string {
			b, y := c.b(), c.y()
			return b.Mul(g, b.Mul(y, b.Sub(b.Scalar(y, 1), y)))
		}), true
	case "Erf": // erf'(x) = 2/√π·exp(−x²)
		return unary(func(c *vjp, g string) string {
			b, x := c.b(), c.in(0)
			return b.Mul(g, b.Mul(b.Exp(b.Neg(b.Mul(x, x))), b.Scalar(x, twoOverSqrtPi)))
		}), true
	case "Exp":
		return unary(func(c *vjp, g string) string { return c.b().Mul(g, c.y()) }), true
	case "Log":
		return unary(func(c *vjp, g string) string { return c.b().Div(g, c.in(0)) }), true
	case "Sqrt": // 1/(2y)
		return unary(func(c *vjp, g string) string {
			b, y := c.b(), c.y()
			return b.Div(b.Mul(g, b.Scalar(y, 0.5)), y)
		}), true
	case "Reciprocal": // −y²
		return unary(func(c *vjp, g string) string {
			b, y := c.b(), c.y()
			return b.Neg(b.Mul(g, b.Mul(y, y)))
		}), true
	case "Tanh": // 1−y²
		return unary(func(c *vjp, g string) string {
			b, y := c.b(), c.y()
			return b.Mul(g, b.Sub(b.Scalar(y, 1), b.Mul(y, y)))
		}), true
	case "Abs":
		return unary(func(c *vjp, g string) string {
			return c.b().Mul(g, c.b().op("Sign", []string{c.in(0)}))
		}), true
	case "Relu":
		return unary(func(c *vjp, g string) string {
			b, x := c.b(), c.in(0)
			return b.Where(b.Greater(x, b.Scalar(x, 0)), g, b.Scalar(x, 0))
		}), true
	case "Add", "Sub", "Mul", "Div", "Pow":
		return gradArith, true
	case "Sum":
		return gradSum, true
	case "Max", "Min":
		return gradMaxMin, true
	case "Where":
		return gradWhere, true
	case "Clip":
		return gradClip, true
	case "Softmax", "LogSoftmax":
		return gradSoftmax, true
	case "LayerNormalization":
		return gradLayerNorm, true
	case "MatMul":
		return gradMatMul, true
	case "Transpose":
		return gradTranspose, true
	case "Reshape", "Flatten", "Squeeze", "Unsqueeze":
		return unary(func(c *vjp, g string) string {
			return c.b().op("Reshape", []string{g, c.e.shapeOf(c.in(0))})
		}), true
	case "Expand":
		return gradExpand, true
	case "Slice":
		return gradSlice, true
	case "Concat":
		return gradConcat, true
	case "Gather":
		return gradGather, true
	case "GatherElements":
		return gradGatherElements, true
	case "ReduceSum", "ReduceMean":
		return gradReduce, true
	}
	return nil, false
}

// unary wraps the rule of an operation whose only differentiable input is
// the first.
func unary(f func(c *vjp, g string) string) rule {
	return func(c *vjp) ([]string, error) {
		g, err := c.g()
		if err != nil {
			return nil, err
		}
		out := make([]string, len(c.n.GetInput()))
		if c.need(0) {
			out[0] = f(c, g)
		}
		return out, nil
	}
}

func gradCast(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	from := c.b().info(c.in(0)).dt
	if !isFloat(from) {
		return []string{""}, nil
	}
	if from == c.b().info(g).dt {
		return []string{g}, nil
	}
	return []string{c.b().Cast(g, dtypeOf(&info{dt: from}))}, nil
}

// gradArith covers the broadcasting binary operations: each operand's
// gradient is formed at the result's shape and summed back to its own.
func gradArith(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	b, e := c.b(), c.e
	a, x := c.in(0), c.in(1)
	out := make([]string, 2)
	var ga, gx string
	switch c.n.GetOpType() {
	case "Add":
		ga, gx = g, g
	case "Sub":
		ga = g
		if c.need(1) {
			gx = b.Neg(g)
		}
	case "Mul":
		if c.need(0) {
			ga = b.Mul(g, x)
		}
		if c.need(1) {
			gx = b.Mul(g, a)
		}
	case "Div": // d(a/x)/da = 1/x, d(a/x)/dx = −a/x²
		if c.need(0) {
			ga = b.Div(g, x)
		}
		if c.need(1) {
			gx = b.Neg(b.Div(b.Mul(g, a), b.Mul(x, x)))
		}
	case "Pow": // d(aᵖ)/da = p·aᵖ⁻¹, d(aᵖ)/dp = aᵖ·log a
		p := x
		if dt := b.info(p).dt; dt != b.info(a).dt {
			p = b.Cast(p, dtypeOf(b.info(a)))
		}
		if c.need(0) {
			ga = b.Mul(g, b.Mul(p, b.op("Pow", []string{a, b.Sub(p, b.Scalar(a, 1))})))
		}
		if c.need(1) {
			gx = b.Mul(g, b.Mul(c.y(), b.Log(a)))
		}
	}
	if c.need(0) {
		if out[0], err = e.unbroadcast(ga, a); err != nil {
			return nil, err
		}
	}
	if c.need(1) {
		if out[1], err = e.unbroadcast(gx, x); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func gradSum(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(c.n.GetInput()))
	for i := range out {
		if c.need(i) {
			if out[i], err = c.e.unbroadcast(g, c.in(i)); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// gradMaxMin sends the gradient to the operand that was taken; on a tie,
// to the first.
func gradMaxMin(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	n := len(c.n.GetInput())
	if n == 1 {
		return []string{g}, nil
	}
	if n != 2 {
		return nil, fmt.Errorf("%s of %d inputs: only one or two are supported", c.n.GetOpType(), n)
	}
	b, e := c.b(), c.e
	a, x := c.in(0), c.in(1)
	cmp := "GreaterOrEqual"
	if c.n.GetOpType() == "Min" {
		cmp = "LessOrEqual"
	}
	first := b.op(cmp, []string{a, x})
	zero := e.zero(g)
	out := make([]string, 2)
	if c.need(0) {
		if out[0], err = e.unbroadcast(b.Where(first, g, zero), a); err != nil {
			return nil, err
		}
	}
	if c.need(1) {
		if out[1], err = e.unbroadcast(b.Where(first, zero, g), x); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func gradWhere(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	b, e := c.b(), c.e
	cond, zero := c.in(0), e.zero(g)
	out := make([]string, 3)
	if c.need(1) {
		if out[1], err = e.unbroadcast(b.Where(cond, g, zero), c.in(1)); err != nil {
			return nil, err
		}
	}
	if c.need(2) {
		if out[2], err = e.unbroadcast(b.Where(cond, zero, g), c.in(2)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// gradClip passes the gradient where lo ≤ x ≤ hi, as torch.clamp does.
func gradClip(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	b, x := c.b(), c.in(0)
	var mask string
	if lo := c.in(1); lo != "" {
		mask = b.op("GreaterOrEqual", []string{x, lo})
	}
	if hi := c.in(2); hi != "" {
		m := b.op("LessOrEqual", []string{x, hi})
		if mask == "" {
			mask = m
		} else {
			mask = b.op("And", []string{mask, m})
		}
	}
	out := make([]string, len(c.n.GetInput()))
	if mask == "" {
		out[0] = g
	} else {
		out[0] = b.Where(mask, g, c.e.zero(g))
	}
	return out, nil
}

// gradSoftmax uses the output only: dx = y⊙(g − Σ g⊙y) for Softmax and
// dx = g − exp(y)⊙Σ g for LogSoftmax, sums over the axis.
func gradSoftmax(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	b, e, y := c.b(), c.e, c.y()
	r, err := e.rank(y)
	if err != nil {
		return nil, err
	}
	ax, err := normAxis(getInt(c.n, "axis", -1), r)
	if err != nil {
		return nil, err
	}
	axes := []int64{int64(ax)}
	if c.n.GetOpType() == "LogSoftmax" {
		return []string{b.Sub(g, b.Mul(b.Exp(y), e.reduceSum(g, axes, true)))}, nil
	}
	gy := b.Mul(g, y)
	return []string{b.Sub(gy, b.Mul(y, e.reduceSum(gy, axes, true)))}, nil
}

// gradLayerNorm recomputes the normalised input from x (mean and inverse
// deviation are small) rather than keeping more activations:
// dx = inv·(gs − mean(gs) − x̂·mean(gs⊙x̂)) with gs = g⊙scale, over the
// normalised axes; dscale = Σ g⊙x̂ and dbias = Σ g over the others.
func gradLayerNorm(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	b, e := c.b(), c.e
	x, scale, bias := c.in(0), c.in(1), c.in(2)
	r, err := e.rank(x)
	if err != nil {
		return nil, err
	}
	ax, err := normAxis(getInt(c.n, "axis", -1), r)
	if err != nil {
		return nil, err
	}
	var axes []int64
	for i := ax; i < r; i++ {
		axes = append(axes, int64(i))
	}
	eps := float64(getFloat(c.n, "epsilon", 1e-5))
	mean := e.reduceMean(x, axes, true)
	xc := b.Sub(x, mean)
	inv := b.Reciprocal(b.Sqrt(b.Add(e.reduceMean(b.Mul(xc, xc), axes, true), b.Scalar(x, eps))))
	xhat := b.Mul(xc, inv)
	out := make([]string, len(c.n.GetInput()))
	if c.need(0) {
		gs := b.Mul(g, scale)
		m1 := e.reduceMean(gs, axes, true)
		m2 := e.reduceMean(b.Mul(gs, xhat), axes, true)
		out[0] = b.Mul(inv, b.Sub(b.Sub(gs, m1), b.Mul(xhat, m2)))
	}
	if c.need(1) {
		if out[1], err = e.unbroadcast(b.Mul(g, xhat), scale); err != nil {
			return nil, err
		}
	}
	if bias != "" && c.need(2) {
		if out[2], err = e.unbroadcast(g, bias); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// gradMatMul: dA = G·Bᵀ, dB = Aᵀ·G, summed over broadcast batch axes. A
// weight B of rank 2 (the common x·W) is read through Gemm's transB, so
// that no transposed copy of a frozen weight is made; a learnable B of
// rank 2 gets its gradient from one Gemm over the flattened batch instead
// of a per-example product summed afterwards. 1-D operands are promoted
// as numpy does.
func gradMatMul(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	b, e := c.b(), c.e
	a, w := c.in(0), c.in(1)
	ra, err := e.rank(a)
	if err != nil {
		return nil, err
	}
	rw, err := e.rank(w)
	if err != nil {
		return nil, err
	}
	A, W, G := a, w, g
	if ra == 1 && c.need(1) {
		A = b.Unsqueeze(a, 0)
	}
	if rw == 1 && c.need(0) {
		W = b.Unsqueeze(w, -1)
	}
	switch {
	case ra == 1 && rw == 1:
		G = b.Reshape(g, 1, 1)
	case ra == 1:
		G = b.Unsqueeze(g, -2)
	case rw == 1:
		G = b.Unsqueeze(g, -1)
	}
	rA, rW := max(ra, 2), max(rw, 2)
	out := make([]string, 2)
	if c.need(0) {
		var ga string
		switch {
		case rW == 2:
			ga = b.op("Gemm", []string{e.flat2(G), W}, graph.AttrInt("transB", 1))
			if rA > 2 {
				ga = b.op("Reshape", []string{ga, e.shapeOf(a)})
			}
		default:
			wt, err := e.swapLast2(W)
			if err != nil {
				return nil, err
			}
			ga = b.MatMul(G, wt)
			ref := a
			if ra == 1 {
				ref = b.Unsqueeze(a, 0)
			}
			if ga, err = e.unbroadcast(ga, ref); err != nil {
				return nil, err
			}
		}
		if ra == 1 {
			ga = b.Squeeze(ga, 0)
		}
		out[0] = ga
	}
	if c.need(1) {
		var gw string
		switch {
		case rW == 2:
			gw = b.op("Gemm", []string{e.flat2(A), e.flat2(G)}, graph.AttrInt("transA", 1))
		default:
			at, err := e.swapLast2(A)
			if err != nil {
				return nil, err
			}
			gw = b.MatMul(at, G)
			ref := w
			if rw == 1 {
				ref = b.Unsqueeze(w, -1)
			}
			if gw, err = e.unbroadcast(gw, ref); err != nil {
				return nil, err
			}
		}
		if rw == 1 {
			gw = b.Squeeze(gw, -1)
		}
		out[1] = gw
	}
	return out, nil
}

func gradTranspose(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	r, err := c.e.rank(c.in(0))
	if err != nil {
		return nil, err
	}
	perm, ok := getInts(c.n, "perm")
	if !ok {
		for i := r - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != r {
		return nil, fmt.Errorf("perm %v for rank %d", perm, r)
	}
	inv := make([]int64, r)
	seen := make([]bool, r)
	for i, p := range perm {
		if p < 0 || p >= int64(r) || seen[p] {
			return nil, fmt.Errorf("perm %v is not a permutation", perm)
		}
		seen[p] = true
		inv[p] = int64(i)
	}
	return []string{c.b().Transpose(g, inv...)}, nil
}

func gradExpand(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	gx, err := c.e.unbroadcast(g, c.in(0))
	return []string{gx, ""}, err
}

// gradSlice pads the gradient with zeros back to the input's extent.
// Bounds must be constants and steps 1; where a sliced axis has a
// symbolic size, the pads are computed at run time.
func gradSlice(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	b, e, x := c.b(), c.e, c.in(0)
	xi := b.info(x)
	if xi.rank < 0 {
		return nil, fmt.Errorf("%q: %w", x, errNoRank)
	}
	get := func(i int) *info {
		if s := c.in(i); s != "" {
			return b.info(s)
		}
		return &info{rank: -1}
	}
	spec, ok := b.inf.sliceArgs(xi, get(1), get(2), get(3), get(4), c.in(3) != "", c.in(4) != "")
	if !ok {
		return nil, fmt.Errorf("Slice with bounds that are not constants: gradient not supported")
	}
	r := xi.rank
	begin, end := make([]string, r), make([]string, r)
	allConst := true
	consts := make([]int64, 2*r)
	for i, d := range xi.dims {
		switch {
		case spec.step[i] == 0:
			consts[i], consts[r+i] = 0, 0
		case spec.step[i] != 1:
			return nil, fmt.Errorf("Slice with step %d on axis %d: gradient not supported", spec.step[i], i)
		case d.known():
			first, cnt := sliceRange(spec.start[i], spec.end[i], 1, d.n)
			consts[i], consts[r+i] = first, d.n-first-cnt
		case spec.start[i] >= 0 && spec.end[i] >= math.MaxInt32:
			consts[i], consts[r+i] = spec.start[i], 0 // x[s:] of a symbolic axis
		default:
			allConst = false
			begin[i], end[i] = e.dynamicPads(x, i, spec.start[i], spec.end[i])
		}
	}
	var pads string
	if allConst {
		pads = b.Ints(false, consts...)
	} else {
		parts := make([]string, 2*r)
		for i := range r {
			if begin[i] == "" {
				begin[i], end[i] = b.Ints(false, consts[i]), b.Ints(false, consts[r+i])
			}
			parts[i], parts[r+i] = begin[i], end[i]
		}
		pads = b.Concat(0, parts...)
	}
	out := make([]string, len(c.n.GetInput()))
	out[0] = b.op("Pad", []string{g, pads})
	return out, nil
}

// dynamicPads resolves x[start:end] on axis i at run time (ONNX clamping)
// and returns the pads before and after as [1] tensors.
func (e *emitter) dynamicPads(x string, i int, start, end int64) (string, string) {
	b := e.b
	n := e.dimOf(x, i)
	zero := b.Ints(false, 0)
	resolve := func(v int64) string {
		c := b.Ints(false, min(v, math.MaxInt32))
		if v < 0 {
			c = b.Add(c, n)
		}
		return b.Min(b.Max(c, zero), n)
	}
	s := resolve(start)
	t := b.Max(resolve(end), s)
	return s, b.Sub(n, t)
}

// gradConcat slices each input's part out of the gradient.
func gradConcat(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	b, e := c.b(), c.e
	r, err := e.rank(c.y())
	if err != nil {
		return nil, err
	}
	ax, err := normAxis(getInt(c.n, "axis", 0), r)
	if err != nil {
		return nil, err
	}
	ins := c.n.GetInput()
	out := make([]string, len(ins))
	off := int64(0)
	offT := "" // the offset as a tensor once a size is only known at run time
	for i, x := range ins {
		xi := b.info(x)
		if xi.rank != r {
			return nil, fmt.Errorf("input %q: %w", x, errNoRank)
		}
		d := xi.dims[ax]
		if c.need(i) {
			if offT == "" && d.known() {
				out[i] = b.Slice(g, int64(ax), off, off+d.n)
			} else {
				st := offT
				if st == "" {
					st = b.Ints(false, off)
				}
				en := b.Add(st, e.dimOf(x, ax))
				out[i] = b.op("Slice", []string{g, st, en, b.Ints(false, int64(ax))})
			}
		}
		switch {
		case offT == "" && d.known():
			off += d.n
		case offT == "":
			offT = b.Add(b.Ints(false, off), e.dimOf(x, ax))
		default:
			offT = b.Add(offT, e.dimOf(x, ax))
		}
	}
	return out, nil
}

// gradGather scatters the gradient back with ScatterND(reduction=add),
// so repeated indices add up; the gathered axis is moved to the front for
// the scatter and back afterwards. It keeps no activation (indices and
// shapes only), where a one-hot MatMul would build a dense [n, size]
// matrix.
func gradGather(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	b, e := c.b(), c.e
	x, idx := c.in(0), c.in(1)
	xi, ii := b.info(x), b.info(idx)
	if xi.rank < 0 || ii.rank < 0 {
		return nil, fmt.Errorf("Gather of %q at %q: %w", x, idx, errNoRank)
	}
	r, q := xi.rank, ii.rank
	ax, err := normAxis(getInt(c.n, "axis", 0), r)
	if err != nil {
		return nil, err
	}
	// g: pre + I + post → I + pre + post
	gT := g
	if ax != 0 && q > 0 {
		var perm []int64
		for i := range q {
			perm = append(perm, int64(ax+i))
		}
		for i := range ax {
			perm = append(perm, int64(i))
		}
		for i := ax + q; i < r-1+q; i++ {
			perm = append(perm, int64(i))
		}
		gT = b.Transpose(g, perm...)
	}
	// x's shape with the gathered axis first: [D] + pre + post.
	pdims := slices.Concat([]dim{xi.dims[ax]}, xi.dims[:ax], xi.dims[ax+1:])
	pshape := e.shapeFromDims(pdims)
	if pshape == "" {
		order := []int64{int64(ax)}
		for i := range r {
			if i != ax {
				order = append(order, int64(i))
			}
		}
		pshape = b.Gather(e.shapeOf(x), b.Ints(false, order...), 0)
	}
	var rest string
	if static(pdims[1:]) {
		vals := []int64{-1}
		for _, d := range pdims[1:] {
			vals = append(vals, d.n)
		}
		rest = b.Ints(false, vals...)
	} else {
		rest = b.Concat(0, b.Ints(false, -1), b.Slice(pshape, 0, 1, math.MaxInt64))
	}
	upd, back := scatterType(b, b.op("Reshape", []string{gT, rest}))
	zt, err := floatTensor("value", b.info(upd).dt, []int64{1}, []float64{0})
	if err != nil {
		return nil, err
	}
	zeros := b.op("ConstantOfShape", []string{pshape}, attrTensor("value", zt))
	ind := b.Reshape(idx, -1, 1)
	sc := back(b.op("ScatterND", []string{zeros, ind, upd}, attrString("reduction", "add")))
	if ax != 0 {
		inv := make([]int64, r)
		for i := range r {
			switch {
			case i < ax:
				inv[i] = int64(i + 1)
			case i == ax:
				inv[i] = 0
			default:
				inv[i] = int64(i)
			}
		}
		sc = b.Transpose(sc, inv...)
	}
	return []string{sc, ""}, nil
}

func static(ds []dim) bool {
	for _, d := range ds {
		if !d.known() {
			return false
		}
	}
	return true
}

// gradGatherElements is the scatter with reduction=add of the gradient
// into zeros of the input's shape.
func gradGatherElements(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	b, e := c.b(), c.e
	x, idx := c.in(0), c.in(1)
	g, back := scatterType(b, g)
	zt, err := floatTensor("value", b.info(g).dt, []int64{1}, []float64{0})
	if err != nil {
		return nil, err
	}
	zeros := b.op("ConstantOfShape", []string{e.shapeOf(x)}, attrTensor("value", zt))
	ax := getInt(c.n, "axis", 0)
	return []string{back(b.op("ScatterElements", []string{zeros, idx, g}, graph.AttrInt("axis", ax), attrString("reduction", "add"))), ""}, nil
}

// scatterType casts a float16 gradient to float32 for a scatter with
// reduction=add, which onnxruntime's CPU kernels lack for float16, and
// returns the cast back.
func scatterType(b *Builder, g string) (string, func(string) string) {
	if b.info(g).dt != tFloat16 {
		return g, func(v string) string { return v }
	}
	return b.Cast(g, dtypeOf(&info{dt: tFloat})), func(v string) string { return b.Cast(v, dtypeOf(&info{dt: tFloat16})) }
}

// gradReduce broadcasts the gradient back over the reduced axes (divided
// by their count for ReduceMean).
func gradReduce(c *vjp) ([]string, error) {
	g, err := c.g()
	if err != nil {
		return nil, err
	}
	b, e, x := c.b(), c.e, c.in(0)
	r, err := e.rank(x)
	if err != nil {
		return nil, err
	}
	axes, ok := b.inf.reduceAxes(c.n)
	if !ok {
		return nil, fmt.Errorf("%s with axes that are not constants: gradient not supported", c.n.GetOpType())
	}
	out := make([]string, len(c.n.GetInput()))
	if len(axes) == 0 && getInt(c.n, "noop_with_empty_axes", 0) == 1 {
		out[0] = g
		return out, nil
	}
	if len(axes) == 0 {
		for i := range r {
			axes = append(axes, int64(i))
		}
	}
	axes, err = normAxes(axes, r)
	if err != nil {
		return nil, err
	}
	if getInt(c.n, "keepdims", 1) == 0 && len(axes) < r {
		g = b.Unsqueeze(g, axes...)
	}
	if c.n.GetOpType() == "ReduceMean" {
		xi := b.info(x)
		var red []dim
		for _, a := range axes {
			red = append(red, xi.dims[a])
		}
		if static(red) {
			n := productOf(red).k
			g = b.Mul(g, b.Scalar(g, 1/float64(n)))
		} else {
			cnt := b.reduce("ReduceProd", b.Gather(e.shapeOf(x), b.Ints(false, axes...), 0), false, nil)
			g = b.Div(g, b.Cast(cnt, dtypeOf(b.info(g))))
		}
	}
	out[0] = b.Expand(g, e.shapeOf(x))
	return out, nil
}
