package grad

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/graph"
)

// Double is the element type of the checking mode; onnx/graph's builder
// has no double type because no tower computes in double.
const Double = graph.DType(pb.TensorProto_DOUBLE)

// Builder appends operations to an existing model: a training loss is
// written after the towers' outputs, in the same graph, so that Backward
// sees one forward model. It offers the operations of onnx/graph's
// builder plus those a loss needs (Exp, Log, Pow, reductions, Clip, …),
// each one ONNX node at the model's opset.
//
// Value names are returned as strings. The first error (an undefined
// value, shapes that cannot broadcast) is kept and returned by Model and
// Err; later calls do nothing useful, so callers check once at the end.
type Builder struct {
	graph.Ops
	g       *pb.GraphProto
	opset   int64
	inf     inferer
	names   map[string]bool
	prefix  string
	counter int
	consts  map[string]string
	err     error
	model   *pb.ModelProto
}

// Extend returns a Builder that adds to a copy of m; m itself is not
// changed (its weights are shared, not copied).
func Extend(m *pb.ModelProto) (*Builder, error) {
	opset, err := checkModel(m)
	if err != nil {
		return nil, fmt.Errorf("grad: extend: %w", err)
	}
	c := shallowCopy(m)
	b, err := newBuilder(c, opset, "")
	if err != nil {
		return nil, fmt.Errorf("grad: extend %s: %w", m.GetGraph().GetName(), err)
	}
	return b, nil
}

// newBuilder indexes model m (which it then owns) and infers its values.
func newBuilder(m *pb.ModelProto, opset int64, prefix string) (*Builder, error) {
	g := m.GetGraph()
	b := &Builder{g: g, opset: opset, inf: inferer{opset: opset, vals: map[string]*info{}},
		names: map[string]bool{}, prefix: prefix, consts: map[string]string{}, model: m}
	b.Ops = graph.NewOps(b.op, b.Ints)
	available := map[string]bool{}
	for _, t := range g.GetInitializer() {
		if b.names[t.GetName()] {
			return nil, fmt.Errorf("initializer %q is defined twice", t.GetName())
		}
		b.names[t.GetName()] = true
		available[t.GetName()] = true
		b.inf.vals[t.GetName()] = infoFromTensor(t)
	}
	for _, in := range g.GetInput() {
		// An input with a default (an initializer of the same name) is
		// described by its declaration, which may leave sizes open.
		available[in.GetName()] = true
		b.names[in.GetName()] = true
		b.inf.vals[in.GetName()] = infoFromType(in.GetType())
	}
	nodes, err := topoSort(g.GetNode(), available)
	if err != nil {
		return nil, err
	}
	g.Node = nodes
	for _, n := range nodes {
		for _, o := range n.GetOutput() {
			b.names[o] = true
		}
		if n.GetName() != "" {
			b.names["node:"+n.GetName()] = true
		}
		outs, err := b.inf.node(n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", nodeLabel(n), err)
		}
		b.setInfos(n, outs)
	}
	for _, o := range g.GetOutput() {
		b.names[o.GetName()] = true
		// A declared output shape fills in what inference could not tell.
		if v := b.inf.vals[o.GetName()]; v != nil && v.rank < 0 && o.GetType().GetTensorType().GetShape() != nil {
			d := infoFromType(o.GetType())
			if d.dt == 0 {
				d.dt = v.dt
			}
			b.inf.vals[o.GetName()] = d
		}
	}
	return b, nil
}

func (b *Builder) setInfos(n *pb.NodeProto, outs []*info) {
	for i, o := range n.GetOutput() {
		if o == "" {
			continue
		}
		if i < len(outs) && outs[i] != nil {
			b.inf.vals[o] = outs[i]
		} else {
			b.inf.vals[o] = unknownInfo(0)
		}
	}
}

// Err returns the first error of the builder.
func (b *Builder) Err() error { return b.err }

func (b *Builder) fail(err error) {
	if b.err == nil {
		b.err = fmt.Errorf("grad: %w", err)
	}
}

// Model returns the extended model, or the builder's first error.
func (b *Builder) Model() (*pb.ModelProto, error) {
	if b.err != nil {
		return nil, b.err
	}
	return b.model, nil
}

func (b *Builder) fresh(base string) string {
	for {
		b.counter++
		n := b.prefix + base + "_" + strconv.Itoa(b.counter)
		if !b.names[n] {
			b.names[n] = true
			return n
		}
	}
}

// nodeName names a new node; node names live apart from value names.
func (b *Builder) nodeName(op string) string {
	for {
		b.counter++
		n := b.prefix + op + "#" + strconv.Itoa(b.counter)
		if !b.names["node:"+n] {
			b.names["node:"+n] = true
			return n
		}
	}
}

func (b *Builder) info(v string) *info { return b.inf.get(v) }

func (b *Builder) defined(v string) bool {
	_, ok := b.inf.vals[v]
	return ok
}

// opN adds one node with nout outputs.
func (b *Builder) opN(op string, in []string, nout int, attrs ...*pb.AttributeProto) []string {
	outs := make([]string, nout)
	for i := range outs {
		outs[i] = b.fresh(op)
	}
	n := &pb.NodeProto{OpType: op, Name: b.nodeName(op), Input: in, Output: outs, Attribute: attrs}
	if b.err == nil {
		for _, v := range in {
			if v != "" && !b.defined(v) {
				b.fail(fmt.Errorf("%s: input %q is not defined", nodeLabel(n), v))
				break
			}
		}
	}
	if b.err == nil {
		infos, err := b.inf.node(n)
		if err != nil {
			b.fail(fmt.Errorf("%s: %w", nodeLabel(n), err))
		}
		b.setInfos(n, infos)
	}
	b.g.Node = append(b.g.Node, n)
	return outs
}

func (b *Builder) op(op string, in []string, attrs ...*pb.AttributeProto) string {
	return b.opN(op, in, 1, attrs...)[0]
}

func (b *Builder) addInit(t *pb.TensorProto) string {
	b.g.Initializer = append(b.g.Initializer, t)
	b.inf.vals[t.GetName()] = infoFromTensor(t)
	return t.GetName()
}

// Input declares a graph input (labels, masks: whatever the loss reads).
func (b *Builder) Input(name string, dt graph.DType, dims ...graph.Dim) string {
	if b.names[name] {
		b.fail(fmt.Errorf("input %q: the name is taken", name))
		return name
	}
	b.names[name] = true
	vi := &pb.ValueInfoProto{Name: name, Type: withDims(int32(dt), dimsOf(dims)).typeProto()}
	b.g.Input = append(b.g.Input, vi)
	b.inf.vals[name] = infoFromType(vi.GetType())
	return name
}

func dimsOf(ds []graph.Dim) []dim {
	out := make([]dim, len(ds))
	for i, d := range ds {
		if d.Param != "" {
			out[i] = dim{n: -1, sym: d.Param}
		} else {
			out[i] = sized(d.Size)
		}
	}
	return out
}

// Output declares value v as the graph output called name, with the type
// and shape inferred for v.
func (b *Builder) Output(v, name string) {
	if b.err != nil {
		return
	}
	if !b.defined(v) {
		b.fail(fmt.Errorf("output %q: value %q is not defined", name, v))
		return
	}
	for _, o := range b.g.GetOutput() {
		if o.GetName() == name {
			b.fail(fmt.Errorf("output %q is declared twice", name))
			return
		}
	}
	if v != name {
		if b.names[name] {
			b.fail(fmt.Errorf("output %q: the name is taken", name))
			return
		}
		b.names[name] = true
		n := &pb.NodeProto{OpType: "Identity", Name: b.nodeName("Identity"), Input: []string{v}, Output: []string{name}}
		b.g.Node = append(b.g.Node, n)
		b.inf.vals[name] = b.info(v)
	}
	b.g.Output = append(b.g.Output, &pb.ValueInfoProto{Name: name, Type: b.info(v).typeProto()})
}

// Ints adds an int64 constant; a scalar when scalar is set, else 1-D.
func (b *Builder) Ints(scalar bool, vals ...int64) string {
	key := fmt.Sprint("i", scalar, vals)
	if n, ok := b.consts[key]; ok {
		return n
	}
	n := b.addInit(intTensor(b.fresh("ints"), scalar, vals))
	b.consts[key] = n
	return n
}

// Const adds a float constant of type dt with the given shape.
func (b *Builder) Const(dt graph.DType, shape []int, vals ...float64) string {
	dims := make([]int64, len(shape))
	n := 1
	for i, d := range shape {
		dims[i] = int64(d)
		n *= d
	}
	if n != len(vals) {
		b.fail(fmt.Errorf("constant: %d values for shape %v", len(vals), shape))
		return ""
	}
	t, err := floatTensor(b.fresh("const"), int32(dt), dims, vals)
	if err != nil {
		b.fail(err)
		return ""
	}
	return b.addInit(t)
}

// Scalar adds a rank-0 float constant of like's element type.
func (b *Builder) Scalar(like string, v float64) string {
	dt := b.info(like).dt
	if !isFloat(dt) {
		b.fail(fmt.Errorf("scalar %g like %q: %q has element type %s, want a float type", v, like, like, dtName(dt)))
		return ""
	}
	key := fmt.Sprint("f", dt, math.Float64bits(v))
	if n, ok := b.consts[key]; ok {
		return n
	}
	n := b.Const(graph.DType(dt), nil, v)
	b.consts[key] = n
	return n
}

// The operations a loss needs beyond the towers' (graph.Ops).

// LogSoftmax is log(Softmax(x)) computed stably, for cross-entropy.
func (b *Builder) LogSoftmax(x string, axis int64) string {
	return b.op("LogSoftmax", []string{x}, graph.AttrInt("axis", axis))
}

// Exp is eˣ.
func (b *Builder) Exp(x string) string { return b.op("Exp", []string{x}) }

// Log is the natural logarithm.
func (b *Builder) Log(x string) string { return b.op("Log", []string{x}) }

// Neg is −x.
func (b *Builder) Neg(x string) string { return b.op("Neg", []string{x}) }

// Sqrt is √x.
func (b *Builder) Sqrt(x string) string { return b.op("Sqrt", []string{x}) }

// Abs is |x|; its gradient at 0 is taken as 0.
func (b *Builder) Abs(x string) string { return b.op("Abs", []string{x}) }

// Tanh is the hyperbolic tangent.
func (b *Builder) Tanh(x string) string { return b.op("Tanh", []string{x}) }

// Reciprocal is 1/x.
func (b *Builder) Reciprocal(x string) string { return b.op("Reciprocal", []string{x}) }

// Pow is x to the constant power p (focal loss's (1−pt)^γ).
func (b *Builder) Pow(x string, p float64) string {
	return b.op("Pow", []string{x, b.Scalar(x, p)})
}

// PowTensor is x to the power p, a tensor that broadcasts with x.
func (b *Builder) PowTensor(x, p string) string { return b.op("Pow", []string{x, p}) }

// Relu is max(x, 0); its gradient at 0 is taken as 0.
func (b *Builder) Relu(x string) string { return b.op("Relu", []string{x}) }

// ReduceSum sums over axes (all axes when none are given).
func (b *Builder) ReduceSum(x string, keepDims bool, axes ...int64) string {
	return b.reduce("ReduceSum", x, keepDims, axes)
}

// ReduceMean averages over axes (all axes when none are given).
func (b *Builder) ReduceMean(x string, keepDims bool, axes ...int64) string {
	return b.reduce("ReduceMean", x, keepDims, axes)
}

func (b *Builder) reduce(op, x string, keepDims bool, axes []int64) string {
	keep := int64(0)
	if keepDims {
		keep = 1
	}
	in := []string{x}
	var attrs []*pb.AttributeProto
	attrs = append(attrs, graph.AttrInt("keepdims", keep))
	if len(axes) > 0 {
		if reduceAxesFromInput(op, b.opset) {
			in = append(in, b.Ints(false, axes...))
		} else {
			attrs = append(attrs, graph.AttrInts("axes", axes...))
		}
	}
	return b.op(op, in, attrs...)
}

// Clip limits x to [lo, hi]; an infinite bound is left out. The gradient
// passes where lo ≤ x ≤ hi.
func (b *Builder) Clip(x string, lo, hi float64) string {
	in := []string{x, "", ""}
	if !math.IsInf(lo, -1) {
		in[1] = b.Scalar(x, lo)
	}
	if !math.IsInf(hi, 1) {
		in[2] = b.Scalar(x, hi)
	}
	for len(in) > 1 && in[len(in)-1] == "" {
		in = in[:len(in)-1]
	}
	return b.op("Clip", in)
}

// Max is the element-wise maximum of x and y; ties send the gradient to x.
func (b *Builder) Max(x, y string) string { return b.op("Max", []string{x, y}) }

// Min is the element-wise minimum of x and y; ties send the gradient to x.
func (b *Builder) Min(x, y string) string { return b.op("Min", []string{x, y}) }

// Where picks x where cond holds, else y.
func (b *Builder) Where(cond, x, y string) string { return b.op("Where", []string{cond, x, y}) }

// Less is x < y, a bool tensor (no gradient flows through it).
func (b *Builder) Less(x, y string) string { return b.op("Less", []string{x, y}) }

// Greater is x > y, a bool tensor.
func (b *Builder) Greater(x, y string) string { return b.op("Greater", []string{x, y}) }

// Equal is x == y, a bool tensor.
func (b *Builder) Equal(x, y string) string { return b.op("Equal", []string{x, y}) }

// Sum adds any number of tensors with broadcasting.
func (b *Builder) Sum(xs ...string) string { return b.op("Sum", xs) }

// Squeeze drops the given size-1 axes.
func (b *Builder) Squeeze(x string, axes ...int64) string {
	return b.op("Squeeze", []string{x, b.Ints(false, axes...)})
}

// Unsqueeze inserts size-1 axes.
func (b *Builder) Unsqueeze(x string, axes ...int64) string {
	return b.op("Unsqueeze", []string{x, b.Ints(false, axes...)})
}

// Flatten reshapes x to 2-D, joining the axes before and from axis.
func (b *Builder) Flatten(x string, axis int64) string {
	return b.op("Flatten", []string{x}, graph.AttrInt("axis", axis))
}

// errNoRank is wrapped by errors that come from a rank the build cannot
// infer.
var errNoRank = errors.New("rank unknown at build time")
