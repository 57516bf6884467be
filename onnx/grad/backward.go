package grad

import (
	"fmt"
	"slices"
	"strings"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
)

// Options configure Backward.
type Options struct {
	// Float64 computes the whole forward and backward pass in double:
	// float inputs, outputs, weights and casts become double. It is the
	// reference for gradient checks, where float32 rounding would swamp
	// finite differences.
	Float64 bool
	// GradName names the gradient output of input x; nil gives "grad_"+x.
	GradName func(x string) string
	// Keep lists forward values to return as well (per-term losses for
	// logging); each becomes an output of the same name.
	Keep []string
	// Checkpoints, when set, are the only forward values the step keeps
	// for its backward part besides graph inputs and weights: every other
	// value the backward part reads is computed again from the checkpoint
	// before it when needed (see recompute). It trades one more forward
	// pass for the activations of all but one segment; the gradients are
	// the same numbers. The residual stream at each transformer block is
	// the usual choice.
	Checkpoints []string
}

// GradPrefix starts the names of the nodes Backward adds, so that tools
// can tell the backward part of a model from the forward part.
const GradPrefix = "grad/"

// Backward returns one model that computes the forward pass of fwd and
// returns the scalar output loss (shape [] or [1]) together with its
// gradient with respect to each graph input named in wrt, as outputs
// grad_<name> (see Options.GradName) of the input's type and shape.
//
// Only what the gradients need is differentiated: a node gets gradient
// nodes only if it lies on a path from a wrt input to the loss, so frozen
// weights (initializers) get neither gradients nor nodes, and forward
// outputs the loss does not use are dropped. The model keeps fwd's
// inputs. fwd is not modified.
func Backward(fwd *pb.ModelProto, loss string, wrt []string, opts Options) (*pb.ModelProto, error) {
	m, err := backward(fwd, loss, wrt, opts)
	if err != nil {
		return nil, fmt.Errorf("grad: backward of %s: %w", fwd.GetGraph().GetName(), err)
	}
	return m, nil
}

func backward(fwd *pb.ModelProto, loss string, wrt []string, opts Options) (*pb.ModelProto, error) {
	opset, err := checkModel(fwd)
	if err != nil {
		return nil, err
	}
	m := shallowCopy(fwd)
	if opts.Float64 {
		if err := toDouble(m); err != nil {
			return nil, err
		}
	}
	b, err := newBuilder(m, opset, GradPrefix)
	if err != nil {
		return nil, err
	}
	g := m.GetGraph()
	gradName := opts.GradName
	if gradName == nil {
		gradName = func(x string) string { return "grad_" + x }
	}

	if !slices.ContainsFunc(g.GetOutput(), func(o *pb.ValueInfoProto) bool { return o.GetName() == loss }) {
		return nil, fmt.Errorf("loss %q is not a graph output", loss)
	}

	// The inputs to differentiate against.
	inputs := map[string]*pb.ValueInfoProto{}
	for _, in := range g.GetInput() {
		inputs[in.GetName()] = in
	}
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	if len(wrt) == 0 {
		return nil, fmt.Errorf("no inputs to differentiate against")
	}
	outNames := map[string]bool{loss: true}
	seen := map[string]bool{}
	for _, x := range wrt {
		if inputs[x] == nil {
			if inits[x] {
				return nil, fmt.Errorf("%q is an initializer (a frozen weight); make it a graph input to learn it", x)
			}
			return nil, fmt.Errorf("%q is not a graph input", x)
		}
		if seen[x] {
			return nil, fmt.Errorf("input %q is listed twice", x)
		}
		seen[x] = true
		if dt := b.info(x).dt; !isFloat(dt) {
			return nil, fmt.Errorf("input %q has element type %s; only float inputs have gradients", x, dtName(dt))
		}
		name := gradName(x)
		if name == "" || outNames[name] || b.names[name] {
			return nil, fmt.Errorf("gradient output name %q for %q is empty or already taken", name, x)
		}
		outNames[name] = true
	}
	for _, k := range opts.Keep {
		if !b.defined(k) {
			return nil, fmt.Errorf("kept value %q is not defined", k)
		}
		if outNames[k] {
			return nil, fmt.Errorf("kept value %q is already an output", k)
		}
		outNames[k] = true
	}

	nodes := slices.Clone(g.GetNode()) // the forward nodes, in order
	flow := flowSet(nodes, wrt, loss, b)
	for _, n := range nodes {
		if !slices.ContainsFunc(n.GetOutput(), func(o string) bool { return flow[o] }) {
			continue
		}
		if _, ok := ruleFor(n.GetOpType()); !ok || (n.GetDomain() != "" && n.GetDomain() != "ai.onnx") {
			return nil, fmt.Errorf("%s: no gradient rule for operation %s (it lies between an input in wrt and the loss)", nodeLabel(n), n.GetOpType())
		}
	}

	// The loss: a float scalar.
	li := b.info(loss)
	if !isFloat(li.dt) {
		return nil, fmt.Errorf("loss %q has element type %s, want a float type", loss, dtName(li.dt))
	}
	if !(li.rank == 0 || (li.rank == 1 && li.dims[0].n == 1)) {
		return nil, fmt.Errorf("loss %q has shape %s, want a scalar ([] or [1])", loss, li.shapeString())
	}

	e := &emitter{b: b, shapes: map[string]string{}, sources: symbolSources(g)}
	grads := map[string][]string{}
	gradOf := map[string]string{} // summed gradient of each forward value
	if flow[loss] {
		grads[loss] = []string{e.ones(loss)}
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		gy := make([]string, len(n.GetOutput()))
		any := false
		for k, o := range n.GetOutput() {
			if o != "" && flow[o] && len(grads[o]) > 0 {
				gy[k] = e.sum(grads[o])
				gradOf[o] = gy[k]
				any = true
			}
		}
		if !any {
			continue
		}
		rule, _ := ruleFor(n.GetOpType()) // checked above
		c := &vjp{e: e, n: n, gy: gy, need: func(i int) bool {
			in := input(n, i)
			return in != "" && flow[in]
		}}
		gx, err := rule(c)
		if err != nil {
			return nil, fmt.Errorf("%s: gradient: %w", nodeLabel(n), err)
		}
		if b.err != nil {
			return nil, fmt.Errorf("%s: gradient: %w", nodeLabel(n), b.err)
		}
		for k, v := range gx {
			if v == "" || !c.need(k) {
				continue
			}
			x := input(n, k)
			grads[x] = append(grads[x], v)
		}
	}

	// Outputs: the loss, the gradients, the kept values.
	outs := []*pb.ValueInfoProto{outputInfo(g, loss, b)}
	for _, x := range wrt {
		var v string
		if len(grads[x]) > 0 {
			v = e.sum(grads[x])
		} else {
			v = e.zerosLike(x) // the loss does not depend on x
		}
		name := gradName(x)
		b.g.Node = append(b.g.Node, &pb.NodeProto{OpType: "Identity", Name: b.nodeName("Identity"), Input: []string{v}, Output: []string{name}})
		b.names[name] = true
		b.inf.vals[name] = b.info(x)
		outs = append(outs, &pb.ValueInfoProto{Name: name, Type: inputs[x].GetType()})
	}
	for _, k := range opts.Keep {
		outs = append(outs, outputInfo(g, k, b))
	}
	if b.err != nil {
		return nil, b.err
	}
	if len(opts.Checkpoints) > 0 {
		if err := recompute(b, nodes, opts.Checkpoints, gradOf); err != nil {
			return nil, err
		}
	}
	g.Output = outs
	g.ValueInfo = nil // the forward's annotations may not match any more
	if opts.Float64 {
		if err := lowerErf(b); err != nil {
			return nil, err
		}
	}
	prune(g)
	available := map[string]bool{}
	for _, in := range g.GetInput() {
		available[in.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		available[t.GetName()] = true
	}
	sorted, err := topoSort(g.GetNode(), available)
	if err != nil {
		return nil, fmt.Errorf("backward graph: %w", err)
	}
	g.Node = sorted
	var ws []string
	for _, x := range wrt {
		ws = append(ws, x+"="+gradName(x))
	}
	m.MetadataProps = append(m.MetadataProps,
		&pb.StringStringEntryProto{Key: "dapobench.grad.loss", Value: loss},
		&pb.StringStringEntryProto{Key: "dapobench.grad.wrt", Value: strings.Join(ws, ",")})
	return m, nil
}

// outputInfo describes value v as a graph output: its declared type if it
// is a forward output, else the inferred one.
func outputInfo(g *pb.GraphProto, v string, b *Builder) *pb.ValueInfoProto {
	for _, o := range g.GetOutput() {
		if o.GetName() == v {
			return o
		}
	}
	return &pb.ValueInfoProto{Name: v, Type: b.info(v).typeProto()}
}

// flowSet returns the values a gradient flows through: those that depend
// on a wrt input and that the loss depends on, both along differentiable
// edges only (not through indices, shapes, comparisons or integer casts).
func flowSet(nodes []*pb.NodeProto, wrt []string, loss string, b *Builder) map[string]bool {
	active := map[string]bool{}
	for _, x := range wrt {
		active[x] = true
	}
	for _, n := range nodes {
		for i, in := range n.GetInput() {
			if in != "" && active[in] && differentiable(n, i) {
				for _, o := range n.GetOutput() {
					// An unknown type may be float: keep the path, so that
					// an operation the build does not know is named.
					if dt := b.info(o).dt; o != "" && (isFloat(dt) || dt == 0) {
						active[o] = true
					}
				}
				break
			}
		}
	}
	needed := map[string]bool{loss: true}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if !slices.ContainsFunc(n.GetOutput(), func(o string) bool { return o != "" && needed[o] && active[o] }) {
			continue
		}
		for k, in := range n.GetInput() {
			if in != "" && active[in] && differentiable(n, k) {
				needed[in] = true
			}
		}
	}
	flow := map[string]bool{}
	for v := range needed {
		if active[v] {
			flow[v] = true
		}
	}
	return flow
}

// differentiable reports whether a gradient can pass from input i of n to
// its outputs. Operations without a rule count as differentiable, so that
// Backward can name them when they lie on a path.
func differentiable(n *pb.NodeProto, i int) bool {
	switch n.GetOpType() {
	case "Shape", "Size", "Less", "Greater", "Equal", "LessOrEqual", "GreaterOrEqual",
		"And", "Or", "Not", "NonZero", "ArgMax", "ArgMin", "ConstantOfShape", "Range",
		"Sign", "Floor", "Ceil", "Round", "Constant":
		return false
	case "Reshape", "Expand", "Gather", "GatherElements", "Squeeze", "Unsqueeze", "Pad", "Flatten":
		return i == 0
	case "Slice":
		return i == 0
	case "ReduceSum", "ReduceMean":
		return i == 0
	case "Where":
		return i != 0
	case "Clip":
		return i == 0
	case "ScatterElements", "ScatterND":
		return i != 1
	}
	return true
}

// symbolSources maps each symbolic dimension of a graph input to that
// input and axis, so that a run-time shape can be read off an input,
// which lives through the whole run anyway, instead of off an activation,
// which a late Shape node would keep alive.
func symbolSources(g *pb.GraphProto) map[string]source {
	src := map[string]source{}
	for _, in := range g.GetInput() {
		for i, d := range in.GetType().GetTensorType().GetShape().GetDim() {
			if p := d.GetDimParam(); p != "" {
				if _, ok := src[p]; !ok {
					src[p] = source{input: in.GetName(), axis: i}
				}
			}
		}
	}
	return src
}

type source struct {
	input string
	axis  int
}
