package grad

import (
	"fmt"
	"math"
	"slices"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/graph"
)

// Float64 returns a copy of m that computes in double: float inputs,
// outputs, weights, constants and casts become double. Erf, which
// onnxruntime 1.24 runs in float32 only, is replaced by a quadrature of
// its integral that is exact to about 1e-15 (see lowerErf). It is the
// forward model of a float64 gradient check. When outputs are named,
// only they are kept, with the nodes they need. m is not modified.
func Float64(m *pb.ModelProto, outputs ...string) (*pb.ModelProto, error) {
	opset, err := checkModel(m)
	if err != nil {
		return nil, fmt.Errorf("grad: float64: %w", err)
	}
	c := shallowCopy(m)
	if len(outputs) > 0 {
		var keep []*pb.ValueInfoProto
		for _, name := range outputs {
			i := slices.IndexFunc(c.Graph.Output, func(o *pb.ValueInfoProto) bool { return o.GetName() == name })
			if i < 0 {
				return nil, fmt.Errorf("grad: float64 of %s: %q is not a graph output", m.GetGraph().GetName(), name)
			}
			keep = append(keep, c.Graph.Output[i])
		}
		c.Graph.Output = keep
		prune(c.Graph)
	}
	if err := toDouble(c); err != nil {
		return nil, fmt.Errorf("grad: float64 of %s: %w", m.GetGraph().GetName(), err)
	}
	b, err := newBuilder(c, opset, "float64/")
	if err != nil {
		return nil, fmt.Errorf("grad: float64 of %s: %w", m.GetGraph().GetName(), err)
	}
	if err := lowerErf(b); err != nil {
		return nil, fmt.Errorf("grad: float64 of %s: %w", m.GetGraph().GetName(), err)
	}
	return c, nil
}

// toDouble rewrites a shallow copy in place, replacing (never modifying)
// the messages it changes.
func toDouble(m *pb.ModelProto) error {
	g := m.GetGraph()
	for i, v := range g.GetInput() {
		g.Input[i] = doubleValueInfo(v)
	}
	for i, v := range g.GetOutput() {
		g.Output[i] = doubleValueInfo(v)
	}
	g.ValueInfo = nil
	for i, t := range g.GetInitializer() {
		d, err := doubleTensor(t)
		if err != nil {
			return err
		}
		g.Initializer[i] = d
	}
	for i, n := range g.GetNode() {
		d, err := doubleNode(n)
		if err != nil {
			return fmt.Errorf("%s: %w", nodeLabel(n), err)
		}
		g.Node[i] = d
	}
	return nil
}

func isFloatType(dt int32) bool { return isFloat(dt) || dt == int32(pb.TensorProto_BFLOAT16) }

func doubleValueInfo(v *pb.ValueInfoProto) *pb.ValueInfoProto {
	tt := v.GetType().GetTensorType()
	if tt == nil || !isFloatType(tt.GetElemType()) {
		return v
	}
	return &pb.ValueInfoProto{Name: v.GetName(), DocString: v.GetDocString(),
		Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{TensorType: &pb.TypeProto_Tensor{ElemType: tDouble, Shape: tt.GetShape()}}}}
}

func doubleTensor(t *pb.TensorProto) (*pb.TensorProto, error) {
	if !isFloatType(t.GetDataType()) || t.GetDataType() == tDouble {
		return t, nil
	}
	vals, err := tensorFloats(t)
	if err != nil {
		return nil, err
	}
	return floatTensor(t.GetName(), tDouble, t.GetDims(), vals)
}

func doubleNode(n *pb.NodeProto) (*pb.NodeProto, error) {
	changed := false
	attrs := make([]*pb.AttributeProto, len(n.GetAttribute()))
	for i, a := range n.GetAttribute() {
		attrs[i] = a
		switch {
		case n.GetOpType() == "Cast" && a.GetName() == "to" && isFloatType(int32(a.GetI())):
			attrs[i] = graph.AttrInt("to", int64(tDouble))
		case n.GetOpType() == "LayerNormalization" && a.GetName() == "stash_type":
			attrs[i] = graph.AttrInt("stash_type", int64(tDouble))
		case a.GetType() == pb.AttributeProto_TENSOR && a.GetT() != nil && isFloatType(a.GetT().GetDataType()):
			t, err := doubleTensor(a.GetT())
			if err != nil {
				return nil, err
			}
			attrs[i] = attrTensor(a.GetName(), t)
		case n.GetOpType() == "Constant" && a.GetName() == "value_float":
			t, _ := floatTensor("value", tDouble, nil, []float64{float64(a.GetF())})
			attrs[i] = attrTensor("value", t)
		case n.GetOpType() == "Constant" && a.GetName() == "value_floats":
			vals := make([]float64, len(a.GetFloats()))
			for j, f := range a.GetFloats() {
				vals[j] = float64(f)
			}
			t, _ := floatTensor("value", tDouble, []int64{int64(len(vals))}, vals)
			attrs[i] = attrTensor("value", t)
		case a.GetName() == "dtype" && isFloatType(int32(a.GetI())):
			attrs[i] = graph.AttrInt("dtype", int64(tDouble))
		default:
			continue
		}
		changed = true
	}
	if n.GetOpType() == "LayerNormalization" && findAttr(n, "stash_type") == nil {
		// the default stash type is float32: the statistics would be rounded
		attrs = append(attrs, graph.AttrInt("stash_type", int64(tDouble)))
		changed = true
	}
	if !changed {
		return n, nil
	}
	return &pb.NodeProto{Name: n.GetName(), OpType: n.GetOpType(), Domain: n.GetDomain(),
		Input: n.GetInput(), Output: n.GetOutput(), Attribute: attrs, DocString: n.GetDocString()}, nil
}

// erfNodes is the number of Gauss–Legendre nodes of the double erf:
// with |x| clipped to erfClip, 32 nodes give erf and its derivative to
// about 1e-15 (checked against math.Erf in the tests).
const (
	erfNodes = 32
	erfClip  = 8 // erf(8) = 1 − 1e-29; the clip's zero gradient matches erf'(8) ≈ 1e-28
)

// lowerErf replaces every double Erf node by
// erf(x) = 2x/√π · ∫₀¹ exp(−x²u²) du, evaluated with Gauss–Legendre
// nodes on [0, 1]: onnxruntime has no double Erf kernel, and a float32
// erf inside a double model would put 1e-7 steps into the finite
// differences.
func lowerErf(b *Builder) error {
	var keep []*pb.NodeProto
	var lowered []*pb.NodeProto
	for _, n := range b.g.GetNode() {
		if n.GetOpType() == "Erf" && b.info(input(n, 0)).dt == tDouble {
			lowered = append(lowered, n)
			continue
		}
		keep = append(keep, n)
	}
	if len(lowered) == 0 {
		return nil
	}
	b.g.Node = keep
	u, w := gaussLegendre01(erfNodes)
	uc, err := floatTensor(b.fresh("erf_u"), tDouble, []int64{erfNodes}, u)
	if err != nil {
		return err
	}
	wc, err := floatTensor(b.fresh("erf_w"), tDouble, []int64{erfNodes}, w)
	if err != nil {
		return err
	}
	un, wn := b.addInit(uc), b.addInit(wc)
	for _, n := range lowered {
		x := input(n, 0)
		xc := b.op("Clip", []string{x, b.Scalar(x, -erfClip), b.Scalar(x, erfClip)})
		t := b.Mul(b.Unsqueeze(xc, -1), un)
		s := b.MatMul(b.Exp(b.Neg(b.Mul(t, t))), wn)
		y := b.Mul(b.Mul(s, xc), b.Scalar(x, twoOverSqrtPi))
		b.g.Node = append(b.g.Node, &pb.NodeProto{OpType: "Identity", Name: b.nodeName("Identity"), Input: []string{y}, Output: n.GetOutput()})
	}
	if b.err != nil {
		return b.err
	}
	available := map[string]bool{}
	for _, in := range b.g.GetInput() {
		available[in.GetName()] = true
	}
	for _, t := range b.g.GetInitializer() {
		available[t.GetName()] = true
	}
	sorted, err := topoSort(b.g.GetNode(), available)
	if err != nil {
		return err
	}
	b.g.Node = sorted
	return nil
}

// gaussLegendre01 returns the n Gauss–Legendre nodes and weights on
// [0, 1], by Newton's method on the Legendre polynomial Pₙ.
func gaussLegendre01(n int) (x, w []float64) {
	x, w = make([]float64, n), make([]float64, n)
	legendre := func(z float64) (p, dp float64) {
		p0, p1 := 1.0, z
		for k := 2; k <= n; k++ {
			p0, p1 = p1, ((2*float64(k)-1)*z*p1-(float64(k)-1)*p0)/float64(k)
		}
		return p1, float64(n) * (z*p1 - p0) / (z*z - 1)
	}
	for i := range n {
		z := math.Cos(math.Pi * (float64(i) + 0.75) / (float64(n) + 0.5))
		for range 100 {
			p, dp := legendre(z)
			dz := p / dp
			z -= dz
			if math.Abs(dz) < 1e-16 {
				break
			}
		}
		_, dp := legendre(z)
		x[i] = (1 - z) / 2
		w[i] = 1 / ((1 - z*z) * dp * dp)
	}
	return x, w
}
