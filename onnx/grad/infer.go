package grad

import (
	"fmt"
	"math"
	"slices"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
)

// dim is one dimension as far as the build can tell: a size, a symbol
// named by a graph input (the batch), or unknown. Gradient rules need
// ranks (to transpose the last two axes, to move a gathered axis) and,
// where they can have them, sizes (to skip reductions that broadcasting
// did not cause); onnxruntime only learns the rest at run time.
type dim struct {
	n   int64  // the size when ≥ 0
	sym string // a symbolic dimension when n < 0; unknown when also ""
}

func sized(n int64) dim { return dim{n: n} }

// unknownDim is a dimension the build cannot tell.
func unknownDim() dim { return dim{n: -1} }

func (d dim) known() bool { return d.n >= 0 }

// same reports whether d and e are certainly equal.
func (d dim) same(e dim) bool {
	if d.n >= 0 || e.n >= 0 {
		return d.n == e.n
	}
	return d.sym != "" && d.sym == e.sym
}

func (d dim) String() string {
	switch {
	case d.n >= 0:
		return fmt.Sprint(d.n)
	case d.sym != "":
		return d.sym
	}
	return "?"
}

// info is what the build knows about one value.
type info struct {
	dt   int32 // element type; 0 when unknown
	rank int   // -1 when unknown
	dims []dim // len(dims) == rank when the rank is known
	// val holds the elements of a small int64 tensor of rank ≤ 1 (shapes,
	// axes, indices) where the build can follow them: each element is a
	// number, a symbolic dimension's run-time value, or unknown.
	val []dim
}

func unknownInfo(dt int32) *info { return &info{dt: dt, rank: -1} }

func withDims(dt int32, dims []dim) *info { return &info{dt: dt, rank: len(dims), dims: dims} }

// constVals returns val when every element is a known number.
func (v *info) constVals() ([]int64, bool) {
	if v == nil || v.val == nil {
		return nil, false
	}
	out := make([]int64, len(v.val))
	for i, d := range v.val {
		k, ok := num(d)
		if !ok {
			return nil, false
		}
		out[i] = k
	}
	return out, true
}

func (v *info) shapeString() string {
	if v.rank < 0 {
		return "[?]"
	}
	return fmt.Sprint(v.dims)
}

// trackLimit bounds the int64 tensors whose values the build follows.
const trackLimit = 64

// valsOf makes val elements from numbers. Negative numbers are numbers
// here too (Reshape's -1, Slice's negative starts), so they are kept in n
// with a marker symbol that keeps known() false from misreading them.
func valsOf(xs []int64) []dim {
	out := make([]dim, len(xs))
	for i, x := range xs {
		out[i] = number(x)
	}
	return out
}

// number is a val element holding x, which may be negative.
func number(x int64) dim {
	if x >= 0 {
		return sized(x)
	}
	return dim{n: x, sym: negMark}
}

// negMark marks a negative number in a val element; it never names a
// real dimension because graph dimension names cannot contain NUL.
const negMark = "\x00neg"

// num returns a val element's number.
func num(d dim) (int64, bool) {
	if d.n >= 0 || d.sym == negMark {
		return d.n, true
	}
	return 0, false
}

func infoFromType(t *pb.TypeProto) *info {
	tt := t.GetTensorType()
	if tt == nil {
		return unknownInfo(0)
	}
	if tt.GetShape() == nil {
		return unknownInfo(tt.GetElemType())
	}
	dims := make([]dim, len(tt.GetShape().GetDim()))
	for i, d := range tt.GetShape().GetDim() {
		switch {
		case d.GetDimParam() != "":
			dims[i] = dim{n: -1, sym: d.GetDimParam()}
		case d.GetValue() != nil && d.GetDimValue() >= 0:
			if _, ok := d.GetValue().(*pb.TensorShapeProto_Dimension_DimValue); ok {
				dims[i] = sized(d.GetDimValue())
			} else {
				dims[i] = unknownDim()
			}
		default:
			dims[i] = unknownDim()
		}
	}
	return withDims(tt.GetElemType(), dims)
}

func infoFromTensor(t *pb.TensorProto) *info {
	dims := make([]dim, len(t.GetDims()))
	for i, d := range t.GetDims() {
		dims[i] = sized(d)
	}
	v := withDims(t.GetDataType(), dims)
	if (t.GetDataType() == tInt64 || t.GetDataType() == tInt32) && len(dims) <= 1 {
		if n, err := numel(t.GetDims()); err == nil && n <= trackLimit {
			if xs, err := tensorInts(t); err == nil {
				v.val = valsOf(xs)
			}
		}
	}
	return v
}

// typeProto writes v back as a value type, for graph outputs.
func (v *info) typeProto() *pb.TypeProto {
	tt := &pb.TypeProto_Tensor{ElemType: v.dt}
	if v.rank >= 0 {
		tt.Shape = &pb.TensorShapeProto{}
		for _, d := range v.dims {
			switch {
			case d.known():
				tt.Shape.Dim = append(tt.Shape.Dim, &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimValue{DimValue: d.n}})
			case d.sym != "":
				tt.Shape.Dim = append(tt.Shape.Dim, &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimParam{DimParam: d.sym}})
			default:
				tt.Shape.Dim = append(tt.Shape.Dim, &pb.TensorShapeProto_Dimension{})
			}
		}
	}
	return &pb.TypeProto{Value: &pb.TypeProto_TensorType{TensorType: tt}}
}

// broadcast combines shapes with numpy rules.
func broadcast(shapes ...[]dim) ([]dim, error) {
	r := 0
	for _, s := range shapes {
		r = max(r, len(s))
	}
	out := make([]dim, r)
	for i := range out {
		out[i] = sized(1)
	}
	for si, s := range shapes {
		off := r - len(s)
		for i, d := range s {
			o := out[off+i]
			switch {
			case si == 0:
				out[off+i] = d
			case d.n == 1:
			case o.n == 1:
				out[off+i] = d
			case o.same(d):
			case o.known() && d.known():
				return nil, fmt.Errorf("cannot broadcast dimension %d with %d", o.n, d.n)
			case o.known():
			case d.known():
				out[off+i] = d
			default:
				out[off+i] = unknownDim()
			}
		}
	}
	return out, nil
}

// product is a product of dimensions: a number times symbols.
type product struct {
	k       int64
	syms    map[string]int
	unknown bool
}

func productOf(dims []dim) product {
	p := product{k: 1, syms: map[string]int{}}
	for _, d := range dims {
		switch {
		case d.known():
			p.k *= d.n
		case d.sym != "":
			p.syms[d.sym]++
		default:
			p.unknown = true
		}
	}
	return p
}

// div returns p/q as a dimension when it is one.
func (p product) div(q product) dim {
	if p.unknown || q.unknown || q.k == 0 || p.k%q.k != 0 {
		return unknownDim()
	}
	left := map[string]int{}
	for s, c := range p.syms {
		left[s] = c
	}
	for s, c := range q.syms {
		if left[s] < c {
			return unknownDim()
		}
		left[s] -= c
	}
	k := p.k / q.k
	var syms []string
	for s, c := range left {
		for range c {
			syms = append(syms, s)
		}
	}
	switch {
	case len(syms) == 0:
		return sized(k)
	case len(syms) == 1 && k == 1:
		return dim{n: -1, sym: syms[0]}
	}
	return unknownDim()
}

func (p product) dim() dim { return p.div(product{k: 1}) }

func normAxis(a int64, rank int) (int, error) {
	if a < -int64(rank) || a >= int64(rank) {
		return 0, fmt.Errorf("axis %d out of range for rank %d", a, rank)
	}
	if a < 0 {
		a += int64(rank)
	}
	return int(a), nil
}

// opset-dependent: where the Reduce* operations take their axes.
func reduceAxesFromInput(op string, opset int64) bool {
	if op == "ReduceSum" {
		return opset >= 13
	}
	return opset >= 18
}

// inferer computes info for every value of a graph.
type inferer struct {
	opset int64
	vals  map[string]*info
}

func (f *inferer) get(name string) *info {
	if v, ok := f.vals[name]; ok {
		return v
	}
	return unknownInfo(0)
}

// reduceAxes returns the axes of a Reduce* node, nil meaning "all", and
// whether they are known at build time.
func (f *inferer) reduceAxes(n *pb.NodeProto) ([]int64, bool) {
	if reduceAxesFromInput(n.GetOpType(), f.opset) {
		name := input(n, 1)
		if name == "" {
			return nil, true
		}
		return f.get(name).constVals()
	}
	a, _ := getInts(n, "axes")
	return a, true
}

// node infers the outputs of one node from its inputs' infos; an operation
// without a rule (or of another domain) has unknown outputs.
func (f *inferer) node(n *pb.NodeProto) ([]*info, error) {
	if n.GetDomain() != "" && n.GetDomain() != "ai.onnx" {
		return nil, nil
	}
	rule := inferRule(n.GetOpType())
	if rule == nil {
		return nil, nil
	}
	c := &nodeCtx{f: f, n: n, op: n.GetOpType(), in: make([]*info, len(n.GetInput()))}
	for i, name := range n.GetInput() {
		if name != "" {
			c.in[i] = f.get(name)
		}
	}
	return rule(c)
}

// nodeCtx is one node under inference: its inputs' infos (nil for an
// omitted optional input).
type nodeCtx struct {
	f  *inferer
	n  *pb.NodeProto
	op string
	in []*info
}

// x is input i's info, unknown when the input is omitted.
func (c *nodeCtx) x(i int) *info {
	if i < len(c.in) && c.in[i] != nil {
		return c.in[i]
	}
	return unknownInfo(0)
}

// one returns a single output.
func (c *nodeCtx) one(v *info) ([]*info, error) { return []*info{v}, nil }

// inferRule is the table of shape rules, one per operation family.
func inferRule(op string) func(*nodeCtx) ([]*info, error) {
	switch op {
	case "IsNaN", "IsInf":
		return inferIsNaN
	case "Identity", "Sigmoid", "Erf", "Exp", "Log", "Neg", "Sqrt", "Abs", "Relu", "Tanh", "Reciprocal", "Softmax", "LogSoftmax", "Sign", "Floor", "Ceil", "Round", "Not", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Softplus", "Softsign", "Elu", "Selu", "LeakyRelu", "HardSigmoid", "HardSwish", "Mish", "Gelu", "ThresholdedRelu", "Celu", "Hardmax", "Dropout":
		return inferElementwise
	case "Cast":
		return inferCast
	case "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Less", "Greater", "Equal", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Where", "PRelu":
		return inferBroadcast
	case "MatMul":
		return inferMatMul
	case "Gemm":
		return inferGemm
	case "LayerNormalization":
		return inferLayerNormalization
	case "Transpose":
		return inferTranspose
	case "Reshape":
		return inferReshape
	case "Flatten":
		return inferFlatten
	case "Squeeze", "Unsqueeze":
		return inferSqueeze
	case "Slice":
		return inferSlice
	case "Concat":
		return inferConcat
	case "Gather":
		return inferGather
	case "GatherElements":
		return inferGatherElements
	case "ScatterElements", "ScatterND":
		return inferScatter
	case "Expand":
		return inferExpand
	case "Shape":
		return inferShape
	case "Size":
		return inferSize
	case "ConstantOfShape":
		return inferConstantOfShape
	case "Constant":
		return inferConstant
	case "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp":
		return inferReduce
	case "Clip":
		return inferClip
	case "Pad":
		return inferPad
	case "NonZero":
		return inferNonZero
	case "Range":
		return inferRange
	}
	return nil
}

// inferIsNaN infers IsNaN, IsInf.
func inferIsNaN(c *nodeCtx) ([]*info, error) {
	x, one := c.x, c.one
	v := *x(0)
	v.dt, v.val = tBool, nil
	return one(&v)
}

// inferElementwise infers Identity, Sigmoid, Erf and the other shape-preserving operations.
func inferElementwise(c *nodeCtx) ([]*info, error) {
	op, x, one := c.op, c.x, c.one
	v := *x(0)
	if op != "Identity" && op != "Neg" && op != "Abs" {
		v.val = nil
	}
	return one(&v)
}

// inferCast infers Cast.
func inferCast(c *nodeCtx) ([]*info, error) {
	n, x, one := c.n, c.x, c.one
	v := *x(0)
	v.dt = int32(getInt(n, "to", 0))
	if v.dt != tInt64 && v.dt != tInt32 {
		v.val = nil
	}
	return one(&v)
}

// inferBroadcast infers the broadcasting element-wise operations.
func inferBroadcast(c *nodeCtx) ([]*info, error) {
	op, in, x, one := c.op, c.in, c.x, c.one
	dt := x(0).dt
	switch op {
	case "Less", "Greater", "Equal", "LessOrEqual", "GreaterOrEqual", "And", "Or":
		dt = tBool
	case "Where":
		dt = x(1).dt
	}
	var shapes [][]dim
	for i := range in {
		if x(i).rank < 0 {
			return one(unknownInfo(dt))
		}
		shapes = append(shapes, x(i).dims)
	}
	dims, err := broadcast(shapes...)
	if err != nil {
		return nil, err
	}
	v := withDims(dt, dims)
	if dt == tInt64 && len(in) == 2 && len(dims) <= 1 && x(0).val != nil && x(1).val != nil {
		v.val = intArith(op, x(0).val, x(1).val)
	}
	return one(v)
}

// inferMatMul infers MatMul.
func inferMatMul(c *nodeCtx) ([]*info, error) {
	x, one := c.x, c.one
	a, b := x(0), x(1)
	if a.rank < 0 || b.rank < 0 {
		return one(unknownInfo(a.dt))
	}
	if a.rank == 0 || b.rank == 0 {
		return nil, fmt.Errorf("MatMul of a rank-0 tensor")
	}
	ad, bd := slices.Clone(a.dims), slices.Clone(b.dims)
	if a.rank == 1 {
		ad = append([]dim{sized(1)}, ad...)
	}
	if b.rank == 1 {
		bd = append(bd, sized(1))
	}
	k1, k2 := ad[len(ad)-1], bd[len(bd)-2]
	if k1.known() && k2.known() && k1.n != k2.n {
		return nil, fmt.Errorf("MatMul of %v and %v: inner dimensions differ", a.dims, b.dims)
	}
	batch, err := broadcast(ad[:len(ad)-2], bd[:len(bd)-2])
	if err != nil {
		return nil, fmt.Errorf("MatMul of %v and %v: %w", a.dims, b.dims, err)
	}
	out := batch
	if a.rank > 1 {
		out = append(out, ad[len(ad)-2])
	}
	if b.rank > 1 {
		out = append(out, bd[len(bd)-1])
	}
	return one(withDims(a.dt, out))
}

// inferGemm infers Gemm.
func inferGemm(c *nodeCtx) ([]*info, error) {
	n, x, one := c.n, c.x, c.one
	a, w := x(0), x(1)
	if a.rank != 2 || w.rank != 2 {
		return one(withDims(a.dt, []dim{unknownDim(), unknownDim()}))
	}
	m, k := a.dims[0], a.dims[1]
	if getInt(n, "transA", 0) == 1 {
		m, k = k, m
	}
	k2, nn := w.dims[0], w.dims[1]
	if getInt(n, "transB", 0) == 1 {
		k2, nn = nn, k2
	}
	if k.known() && k2.known() && k.n != k2.n {
		return nil, fmt.Errorf("Gemm of %v and %v: inner dimensions differ", a.dims, w.dims)
	}
	return one(withDims(a.dt, []dim{m, nn}))
}

// inferLayerNormalization infers LayerNormalization.
func inferLayerNormalization(c *nodeCtx) ([]*info, error) {
	n, x := c.n, c.x
	v := x(0)
	outs := []*info{{dt: v.dt, rank: v.rank, dims: v.dims}}
	stash := int32(getInt(n, "stash_type", 1))
	if v.rank >= 0 {
		ax, err := normAxis(getInt(n, "axis", -1), v.rank)
		if err != nil {
			return nil, err
		}
		red := slices.Clone(v.dims)
		for i := ax; i < len(red); i++ {
			red[i] = sized(1)
		}
		outs = append(outs, withDims(stash, red), withDims(stash, red))
	} else {
		outs = append(outs, unknownInfo(stash), unknownInfo(stash))
	}
	return outs, nil
}

// inferTranspose infers Transpose.
func inferTranspose(c *nodeCtx) ([]*info, error) {
	n, x, one := c.n, c.x, c.one
	v := x(0)
	if v.rank < 0 {
		return one(unknownInfo(v.dt))
	}
	perm, ok := getInts(n, "perm")
	if !ok {
		for i := v.rank - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != v.rank {
		return nil, fmt.Errorf("Transpose: perm %v for rank %d", perm, v.rank)
	}
	out := make([]dim, v.rank)
	seen := make([]bool, v.rank)
	for i, p := range perm {
		if p < 0 || int(p) >= v.rank || seen[p] {
			return nil, fmt.Errorf("Transpose: perm %v is not a permutation", perm)
		}
		seen[p] = true
		out[i] = v.dims[p]
	}
	return one(withDims(v.dt, out))
}

// inferReshape infers Reshape.
func inferReshape(c *nodeCtx) ([]*info, error) {
	f, n, x, one := c.f, c.n, c.x, c.one
	return one(f.reshape(n, x(0), x(1)))
}

// inferFlatten infers Flatten.
func inferFlatten(c *nodeCtx) ([]*info, error) {
	n, x, one := c.n, c.x, c.one
	v := x(0)
	if v.rank < 0 {
		return one(withDims(v.dt, []dim{unknownDim(), unknownDim()}))
	}
	ax := getInt(n, "axis", 1)
	if ax < 0 {
		ax += int64(v.rank)
	}
	if ax < 0 || ax > int64(v.rank) {
		return nil, fmt.Errorf("Flatten: axis %d for rank %d", getInt(n, "axis", 1), v.rank)
	}
	return one(withDims(v.dt, []dim{productOf(v.dims[:ax]).dim(), productOf(v.dims[ax:]).dim()}))
}

// inferSqueeze infers Squeeze, Unsqueeze.
func inferSqueeze(c *nodeCtx) ([]*info, error) {
	f, n, x, one := c.f, c.n, c.x, c.one
	return one(f.squeeze(n, x(0), x(1)))
}

// inferSlice infers Slice.
func inferSlice(c *nodeCtx) ([]*info, error) {
	f, in, x, one := c.f, c.in, c.x, c.one
	return one(f.slice(x(0), x(1), x(2), x(3), x(4), len(in) > 3 && in[3] != nil, len(in) > 4 && in[4] != nil))
}

// inferConcat infers Concat.
func inferConcat(c *nodeCtx) ([]*info, error) {
	f, n, in, one := c.f, c.n, c.in, c.one
	v, err := f.concat(n, in)
	if err != nil {
		return nil, err
	}
	return one(v)
}

// inferGather infers Gather.
func inferGather(c *nodeCtx) ([]*info, error) {
	n, x, one := c.n, c.x, c.one
	v, idx := x(0), x(1)
	if v.rank < 0 || idx.rank < 0 {
		return one(unknownInfo(v.dt))
	}
	ax, err := normAxis(getInt(n, "axis", 0), v.rank)
	if err != nil {
		return nil, fmt.Errorf("Gather: %w", err)
	}
	out := slices.Concat(v.dims[:ax], idx.dims, v.dims[ax+1:])
	r := withDims(v.dt, out)
	if v.val != nil && ax == 0 {
		if is, ok := idx.constVals(); ok {
			r.val = make([]dim, len(is))
			for i, j := range is {
				if j < 0 {
					j += int64(len(v.val))
				}
				if j < 0 || j >= int64(len(v.val)) {
					return nil, fmt.Errorf("Gather: index %d out of range for %d values", is[i], len(v.val))
				}
				r.val[i] = v.val[j]
			}
		}
	}
	return one(r)
}

// inferGatherElements infers GatherElements.
func inferGatherElements(c *nodeCtx) ([]*info, error) {
	x, one := c.x, c.one
	return one(&info{dt: x(0).dt, rank: x(1).rank, dims: x(1).dims})
}

// inferScatter infers ScatterElements, ScatterND.
func inferScatter(c *nodeCtx) ([]*info, error) {
	x, one := c.x, c.one
	v := *x(0)
	v.val = nil
	return one(&v)
}

// inferExpand infers Expand.
func inferExpand(c *nodeCtx) ([]*info, error) {
	x, one := c.x, c.one
	v, s := x(0), x(1)
	if v.rank < 0 || s.val == nil {
		return one(unknownInfo(v.dt))
	}
	target := make([]dim, len(s.val))
	for i, d := range s.val {
		if k, ok := num(d); ok && k < 0 {
			return nil, fmt.Errorf("Expand: negative size %d", k)
		}
		target[i] = d
	}
	dims, err := broadcast(v.dims, target)
	if err != nil {
		return nil, fmt.Errorf("Expand %v to %v: %w", v.dims, target, err)
	}
	return one(withDims(v.dt, dims))
}

// inferShape infers Shape.
func inferShape(c *nodeCtx) ([]*info, error) {
	n, x, one := c.n, c.x, c.one
	v := x(0)
	if v.rank < 0 {
		return one(withDims(tInt64, []dim{unknownDim()}))
	}
	start, end := getInt(n, "start", 0), getInt(n, "end", int64(v.rank))
	start, end = clampIndex(start, int64(v.rank)), clampIndex(end, int64(v.rank))
	end = max(end, start)
	r := withDims(tInt64, []dim{sized(end - start)})
	r.val = slices.Clone(v.dims[start:end])
	return one(r)
}

// inferSize infers Size.
func inferSize(c *nodeCtx) ([]*info, error) {
	x, one := c.x, c.one
	r := withDims(tInt64, nil)
	if x(0).rank >= 0 {
		r.val = []dim{productOf(x(0).dims).dim()}
	}
	return one(r)
}

// inferConstantOfShape infers ConstantOfShape.
func inferConstantOfShape(c *nodeCtx) ([]*info, error) {
	n, x, one := c.n, c.x, c.one
	dt := tFloat
	if a := findAttr(n, "value"); a != nil && a.GetT() != nil {
		dt = a.GetT().GetDataType()
	}
	s := x(0)
	if s.val == nil {
		if s.rank == 1 && s.dims[0].known() {
			dims := make([]dim, s.dims[0].n)
			for i := range dims {
				dims[i] = unknownDim()
			}
			return one(withDims(dt, dims))
		}
		return one(unknownInfo(dt))
	}
	dims := make([]dim, len(s.val))
	for i, d := range s.val {
		dims[i] = d
		if _, ok := num(d); ok && d.n < 0 {
			return nil, fmt.Errorf("ConstantOfShape: negative size %d", d.n)
		}
	}
	return one(withDims(dt, dims))
}

// inferConstant infers Constant.
func inferConstant(c *nodeCtx) ([]*info, error) {
	n, one := c.n, c.one
	if a := findAttr(n, "value"); a != nil && a.GetT() != nil {
		return one(infoFromTensor(a.GetT()))
	}
	switch {
	case findAttr(n, "value_float") != nil:
		return one(withDims(tFloat, nil))
	case findAttr(n, "value_floats") != nil:
		return one(withDims(tFloat, []dim{sized(int64(len(findAttr(n, "value_floats").GetFloats())))}))
	case findAttr(n, "value_int") != nil:
		r := withDims(tInt64, nil)
		r.val = valsOf([]int64{findAttr(n, "value_int").GetI()})
		return one(r)
	case findAttr(n, "value_ints") != nil:
		is := findAttr(n, "value_ints").GetInts()
		r := withDims(tInt64, []dim{sized(int64(len(is)))})
		if len(is) <= trackLimit {
			r.val = valsOf(is)
		}
		return one(r)
	}
	return one(unknownInfo(0))
}

// inferReduce infers the reductions (ReduceSum, ReduceMean, ReduceMax …).
func inferReduce(c *nodeCtx) ([]*info, error) {
	f, n, op, x, one := c.f, c.n, c.op, c.x, c.one
	v := x(0)
	keep := getInt(n, "keepdims", 1) == 1
	axes, ok := f.reduceAxes(n)
	if v.rank < 0 {
		return one(unknownInfo(v.dt))
	}
	if !ok {
		if keep {
			dims := make([]dim, v.rank)
			for i := range dims {
				dims[i] = unknownDim()
			}
			return one(withDims(v.dt, dims))
		}
		return one(unknownInfo(v.dt))
	}
	if len(axes) == 0 && getInt(n, "noop_with_empty_axes", 0) == 1 {
		return one(withDims(v.dt, v.dims))
	}
	red := make([]bool, v.rank)
	if len(axes) == 0 {
		for i := range red {
			red[i] = true
		}
	}
	for _, a := range axes {
		i, err := normAxis(a, v.rank)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		red[i] = true
	}
	var out []dim
	for i, d := range v.dims {
		switch {
		case !red[i]:
			out = append(out, d)
		case keep:
			out = append(out, sized(1))
		}
	}
	r := withDims(v.dt, out)
	if op == "ReduceProd" && v.dt == tInt64 && v.rank == 1 && !keep && v.val != nil {
		r.val = []dim{productOf(v.val).dim()}
		for _, d := range v.val {
			if _, ok := num(d); ok && d.n < 0 {
				r.val = []dim{unknownDim()}
			}
		}
	}
	return one(r)
}

// inferClip infers Clip.
func inferClip(c *nodeCtx) ([]*info, error) {
	x, one := c.x, c.one
	v := *x(0)
	v.val = nil
	return one(&v)
}

// inferPad infers Pad.
func inferPad(c *nodeCtx) ([]*info, error) {
	in, x, one := c.in, c.x, c.one
	v, p := x(0), x(1)
	if v.rank < 0 {
		return one(unknownInfo(v.dt))
	}
	pads, ok := p.constVals()
	if !ok || len(pads) != 2*v.rank || (len(in) > 3 && in[3] != nil) {
		dims := make([]dim, v.rank)
		for i := range dims {
			dims[i] = unknownDim()
		}
		return one(withDims(v.dt, dims))
	}
	out := make([]dim, v.rank)
	for i, d := range v.dims {
		switch {
		case d.known():
			out[i] = sized(d.n + pads[i] + pads[i+v.rank])
		case pads[i] == 0 && pads[i+v.rank] == 0:
			out[i] = d
		default:
			out[i] = unknownDim()
		}
	}
	return one(withDims(v.dt, out))
}

// inferNonZero infers NonZero.
func inferNonZero(c *nodeCtx) ([]*info, error) {
	x, one := c.x, c.one
	if x(0).rank < 0 {
		return one(withDims(tInt64, []dim{unknownDim(), unknownDim()}))
	}
	return one(withDims(tInt64, []dim{sized(int64(x(0).rank)), unknownDim()}))
}

// inferRange infers Range.
func inferRange(c *nodeCtx) ([]*info, error) {
	x, one := c.x, c.one
	return one(withDims(x(0).dt, []dim{unknownDim()}))
}

func intArith(op string, a, b []dim) []dim {
	if len(a) != len(b) && len(a) != 1 && len(b) != 1 {
		return nil
	}
	out := make([]dim, max(len(a), len(b)))
	for i := range out {
		p, q := a[min(i, len(a)-1)], b[min(i, len(b)-1)]
		x, ok1 := num(p)
		y, ok2 := num(q)
		if !ok1 || !ok2 {
			out[i] = unknownDim()
			continue
		}
		switch op {
		case "Add":
			out[i] = number(x + y)
		case "Sub":
			out[i] = number(x - y)
		case "Mul":
			out[i] = number(x * y)
		case "Div":
			if y == 0 {
				out[i] = unknownDim()
			} else {
				out[i] = number(floorDiv(x, y))
			}
		default:
			out[i] = unknownDim()
		}
	}
	return out
}

func floorDiv(x, y int64) int64 {
	q := x / y
	if (x%y != 0) && ((x < 0) != (y < 0)) {
		q--
	}
	return q
}

func clampIndex(i, n int64) int64 {
	if i < 0 {
		i += n
	}
	return min(max(i, 0), n)
}

func (f *inferer) reshape(n *pb.NodeProto, v, s *info) *info {
	if s.val == nil {
		if s.rank == 1 && s.dims[0].known() {
			dims := make([]dim, s.dims[0].n)
			for i := range dims {
				dims[i] = unknownDim()
			}
			return withDims(v.dt, dims)
		}
		return unknownInfo(v.dt)
	}
	allowZero := getInt(n, "allowzero", 0) == 1
	out := make([]dim, len(s.val))
	infer := -1
	for i, e := range s.val {
		k, ok := num(e)
		switch {
		case !ok:
			out[i] = e // a symbol's value, or unknown
		case k == 0 && !allowZero:
			if v.rank >= 0 && i < v.rank {
				out[i] = v.dims[i]
			} else {
				out[i] = unknownDim()
			}
		case k == -1:
			infer = i
			out[i] = unknownDim()
		case k < 0:
			out[i] = unknownDim()
		default:
			out[i] = sized(k)
		}
	}
	if infer >= 0 && v.rank >= 0 {
		rest := slices.Concat(out[:infer], out[infer+1:])
		out[infer] = productOf(v.dims).div(productOf(rest))
	}
	return withDims(v.dt, out)
}

func (f *inferer) squeeze(n *pb.NodeProto, v, a *info) *info {
	var axes []int64
	have := true
	if f.opset >= 13 {
		if a.rank >= 0 || a.val != nil {
			axes, have = a.constVals()
		} else if input(n, 1) != "" {
			have = false
		}
	} else {
		axes, _ = getInts(n, "axes")
	}
	if v.rank < 0 || !have {
		return unknownInfo(v.dt)
	}
	if n.GetOpType() == "Unsqueeze" {
		r := v.rank + len(axes)
		ins := make([]bool, r)
		for _, ax := range axes {
			i, err := normAxis(ax, r)
			if err != nil {
				return unknownInfo(v.dt)
			}
			ins[i] = true
		}
		out := make([]dim, 0, r)
		j := 0
		for i := range r {
			if ins[i] {
				out = append(out, sized(1))
			} else {
				out = append(out, v.dims[j])
				j++
			}
		}
		res := withDims(v.dt, out)
		if v.val != nil && r <= 1 {
			res.val = v.val
		}
		return res
	}
	drop := make([]bool, v.rank)
	if len(axes) == 0 {
		for i, d := range v.dims {
			if !d.known() {
				return unknownInfo(v.dt)
			}
			drop[i] = d.n == 1
		}
	}
	for _, ax := range axes {
		i, err := normAxis(ax, v.rank)
		if err != nil {
			return unknownInfo(v.dt)
		}
		drop[i] = true
	}
	var out []dim
	for i, d := range v.dims {
		if !drop[i] {
			out = append(out, d)
		}
	}
	res := withDims(v.dt, out)
	if v.val != nil && len(out) <= 1 {
		res.val = v.val
	}
	return res
}

// sliceSpec is a Slice node's constant arguments per axis of the input.
type sliceSpec struct {
	start, end, step []int64 // per axis; step 0 means the axis is not sliced
}

func (f *inferer) sliceArgs(v, starts, ends, axes, steps *info, haveAxes, haveSteps bool) (sliceSpec, bool) {
	st, ok1 := starts.constVals()
	en, ok2 := ends.constVals()
	if !ok1 || !ok2 || len(st) != len(en) || v.rank < 0 {
		return sliceSpec{}, false
	}
	ax := make([]int64, len(st))
	for i := range ax {
		ax[i] = int64(i)
	}
	if haveAxes {
		a, ok := axes.constVals()
		if !ok || len(a) != len(st) {
			return sliceSpec{}, false
		}
		ax = a
	}
	sp := make([]int64, len(st))
	for i := range sp {
		sp[i] = 1
	}
	if haveSteps {
		s, ok := steps.constVals()
		if !ok || len(s) != len(st) {
			return sliceSpec{}, false
		}
		sp = s
	}
	spec := sliceSpec{start: make([]int64, v.rank), end: make([]int64, v.rank), step: make([]int64, v.rank)}
	for i, a := range ax {
		j, err := normAxis(a, v.rank)
		if err != nil || spec.step[j] != 0 || sp[i] == 0 {
			return sliceSpec{}, false
		}
		spec.start[j], spec.end[j], spec.step[j] = st[i], en[i], sp[i]
	}
	return spec, true
}

// sliceRange resolves one axis of a slice against its size with ONNX's
// clamping rules and returns the first index and the count taken.
func sliceRange(start, end, step, n int64) (first, count int64) {
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	if step > 0 {
		start = min(max(start, 0), n)
		end = min(max(end, 0), n)
		if end <= start {
			return start, 0
		}
		return start, (end - start + step - 1) / step
	}
	start = min(max(start, -1), n-1)
	end = min(max(end, -1), n-1)
	if end >= start {
		return start, 0
	}
	return start, (start - end - step - 1) / -step
}

func (f *inferer) slice(v, starts, ends, axes, steps *info, haveAxes, haveSteps bool) *info {
	if v.rank < 0 {
		return unknownInfo(v.dt)
	}
	out := slices.Clone(v.dims)
	spec, ok := f.sliceArgs(v, starts, ends, axes, steps, haveAxes, haveSteps)
	if !ok {
		for i := range out {
			out[i] = unknownDim()
		}
		return withDims(v.dt, out)
	}
	for i, d := range v.dims {
		if spec.step[i] == 0 {
			continue
		}
		switch {
		case d.known():
			_, c := sliceRange(spec.start[i], spec.end[i], spec.step[i], d.n)
			out[i] = sized(c)
		case spec.step[i] == 1 && spec.start[i] == 0 && spec.end[i] >= math.MaxInt32:
			out[i] = d
		default:
			out[i] = unknownDim()
		}
	}
	r := withDims(v.dt, out)
	if v.val != nil && v.rank == 1 && spec.step[0] != 0 {
		first, c := sliceRange(spec.start[0], spec.end[0], spec.step[0], int64(len(v.val)))
		r.val = make([]dim, 0, c)
		for k := int64(0); k < c; k++ {
			r.val = append(r.val, v.val[first+k*spec.step[0]])
		}
	} else if v.val != nil && v.rank == 1 {
		r.val = v.val
	}
	return r
}

func (f *inferer) concat(n *pb.NodeProto, in []*info) (*info, error) {
	if len(in) == 0 || in[0] == nil {
		return unknownInfo(0), nil
	}
	dt := in[0].dt
	rank := -1
	for _, v := range in {
		if v != nil && v.rank >= 0 {
			rank = v.rank
			break
		}
	}
	if rank < 0 {
		return unknownInfo(dt), nil
	}
	ax, err := normAxis(getInt(n, "axis", 0), rank)
	if err != nil {
		return unknownInfo(dt), nil
	}
	out := make([]dim, rank)
	total := int64(0)
	var vals []dim
	trackVals := rank == 1
	for k, v := range in {
		if v == nil || v.rank < 0 {
			return unknownInfo(dt), nil
		}
		if v.rank != rank {
			return nil, fmt.Errorf("Concat of ranks %d and %d", rank, v.rank)
		}
		for i, d := range v.dims {
			if i == ax {
				continue
			}
			if k == 0 || (!out[i].known() && d.known()) {
				out[i] = d
			}
		}
		if total >= 0 && v.dims[ax].known() {
			total += v.dims[ax].n
		} else {
			total = -1
		}
		if trackVals && v.val != nil {
			vals = append(vals, v.val...)
		} else {
			trackVals = false
		}
	}
	if total >= 0 {
		out[ax] = sized(total)
	} else if len(in) == 1 {
		out[ax] = in[0].dims[ax]
	} else {
		out[ax] = unknownDim()
	}
	r := withDims(dt, out)
	if trackVals && len(vals) <= trackLimit {
		r.val = vals
	}
	return r, nil
}
