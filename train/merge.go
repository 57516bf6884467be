package train

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
)

// Part is one model of a merged graph.
type Part struct {
	Model *pb.ModelProto
	// Prefix is prepended to every value and node name of the part, so
	// that two towers that both call a weight "ln_final.weight" stay apart.
	Prefix string
	// Bind renames graph inputs of the part to names of the merged graph,
	// without the prefix: a value another part produces (the part then
	// reads it), or a shared input several parts read. A bound name that no
	// part produces becomes one graph input of the merged model.
	Bind map[string]string
}

// Merge joins the parts into one model whose nodes run the parts in the
// order given. Weights are shared with the parts, not copied, and
// initializers stored as ONNX external data keep pointing at their files:
// load the result with the external-data folder of the parts (a model
// directory). Graph outputs that feed a bound input of another part are
// internal to the merged model and are not outputs of it.
func Merge(name string, parts ...Part) (*pb.ModelProto, error) {
	m, err := merge(name, parts)
	if err != nil {
		return nil, fmt.Errorf("train: merge %s: %w", name, err)
	}
	return m, nil
}

func merge(name string, parts []Part) (*pb.ModelProto, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("no parts")
	}
	out := &pb.ModelProto{ProducerName: "dapobench", Graph: &pb.GraphProto{Name: name}}
	var opset int64 = -1
	g := out.Graph
	produced := map[string]string{} // value → part that defines it
	type boundInput struct {
		info *pb.ValueInfoProto
		part string
	}
	bound := map[string]boundInput{}
	var boundOrder []string
	for i, p := range parts {
		label := fmt.Sprintf("part %d (%s)", i, p.Model.GetGraph().GetName())
		pg := p.Model.GetGraph()
		if pg == nil {
			return nil, fmt.Errorf("%s: no graph", label)
		}
		if len(p.Model.GetFunctions()) > 0 || len(pg.GetSparseInitializer()) > 0 {
			return nil, fmt.Errorf("%s: model-local functions and sparse initializers are not supported", label)
		}
		v, err := defaultOpset(p.Model)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		if opset >= 0 && v != opset {
			return nil, fmt.Errorf("%s: opset %d, the other parts have %d", label, v, opset)
		}
		opset = v
		out.IrVersion = max(out.IrVersion, p.Model.GetIrVersion())

		inputs := map[string]bool{}
		for _, in := range pg.GetInput() {
			inputs[in.GetName()] = true
		}
		for k := range p.Bind {
			if !inputs[k] {
				return nil, fmt.Errorf("%s: bound name %q is not a graph input", label, k)
			}
		}
		rename := func(v string) string {
			if v == "" {
				return ""
			}
			if b, ok := p.Bind[v]; ok {
				return b
			}
			return p.Prefix + v
		}
		define := func(v string) error {
			if other, dup := produced[v]; dup {
				return fmt.Errorf("%s: value %q is also defined by %s", label, v, other)
			}
			produced[v] = label
			return nil
		}
		for _, t := range pg.GetInitializer() {
			if _, ok := p.Bind[t.GetName()]; ok {
				return nil, fmt.Errorf("%s: bound input %q has a default value (an initializer)", label, t.GetName())
			}
			r := renamedTensor(t, rename(t.GetName()))
			if err := define(r.GetName()); err != nil {
				return nil, err
			}
			g.Initializer = append(g.Initializer, r)
		}
		for _, n := range pg.GetNode() {
			for _, a := range n.GetAttribute() {
				if a.GetG() != nil || len(a.GetGraphs()) > 0 {
					return nil, fmt.Errorf("%s: node %s has a subgraph attribute; not supported", label, n.GetName())
				}
			}
			c := &pb.NodeProto{Name: p.Prefix + n.GetName(), OpType: n.GetOpType(), Domain: n.GetDomain(),
				Attribute: n.GetAttribute(), DocString: n.GetDocString()}
			for _, in := range n.GetInput() {
				c.Input = append(c.Input, rename(in))
			}
			for _, o := range n.GetOutput() {
				r := rename(o)
				if r != "" {
					if err := define(r); err != nil {
						return nil, err
					}
				}
				c.Output = append(c.Output, r)
			}
			g.Node = append(g.Node, c)
		}
		for _, in := range pg.GetInput() {
			r := rename(in.GetName())
			vi := &pb.ValueInfoProto{Name: r, Type: in.GetType(), DocString: in.GetDocString()}
			if _, ok := p.Bind[in.GetName()]; !ok {
				if err := define(r); err != nil {
					return nil, err
				}
				g.Input = append(g.Input, vi)
				continue
			}
			if b, seen := bound[r]; seen {
				if !sameType(b.info.GetType(), in.GetType()) {
					return nil, fmt.Errorf("%s: input %q is bound to %q, which %s declares with another type", label, in.GetName(), r, b.part)
				}
				continue
			}
			bound[r] = boundInput{vi, label}
			boundOrder = append(boundOrder, r)
		}
		for _, vi := range pg.GetValueInfo() {
			g.ValueInfo = append(g.ValueInfo, &pb.ValueInfoProto{Name: rename(vi.GetName()), Type: vi.GetType(), DocString: vi.GetDocString()})
		}
		for _, o := range pg.GetOutput() {
			g.Output = append(g.Output, &pb.ValueInfoProto{Name: rename(o.GetName()), Type: o.GetType(), DocString: o.GetDocString()})
		}
		var tags []string
		for _, kv := range p.Model.GetMetadataProps() {
			tags = append(tags, kv.GetKey()+"="+kv.GetValue())
		}
		out.MetadataProps = append(out.MetadataProps, &pb.StringStringEntryProto{
			Key: fmt.Sprintf("dapobench.train.part%d", i), Value: pg.GetName() + " " + strconv.Quote(p.Prefix) + " " + strings.Join(tags, ";")})
	}
	// A bound name that no part defines is a graph input, declared once.
	for _, r := range boundOrder {
		if _, ok := produced[r]; !ok {
			g.Input = append(g.Input, bound[r].info)
		}
	}
	// Outputs that feed another part are internal.
	g.Output = slices.DeleteFunc(g.Output, func(o *pb.ValueInfoProto) bool {
		_, linked := bound[o.GetName()]
		return linked
	})
	out.OpsetImport = []*pb.OperatorSetIdProto{{Domain: "", Version: opset}}
	return out, nil
}

// renamedTensor is t under another name; the data (inline or external) is
// shared, not copied.
func renamedTensor(t *pb.TensorProto, name string) *pb.TensorProto {
	return &pb.TensorProto{
		Name: name, Dims: t.GetDims(), DataType: t.GetDataType(), Segment: t.GetSegment(),
		FloatData: t.GetFloatData(), Int32Data: t.GetInt32Data(), StringData: t.GetStringData(),
		Int64Data: t.GetInt64Data(), DocString: t.GetDocString(), RawData: t.GetRawData(),
		ExternalData: t.GetExternalData(), DataLocation: t.GetDataLocation(),
		DoubleData: t.GetDoubleData(), Uint64Data: t.GetUint64Data(),
	}
}

// defaultOpset is the model's version of the default ONNX domain.
func defaultOpset(m *pb.ModelProto) (int64, error) {
	for _, o := range m.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			return o.GetVersion(), nil
		}
	}
	return 0, fmt.Errorf("no default-domain opset import")
}

// sameType compares two tensor types: element type and shape, a symbolic
// dimension matching any.
func sameType(a, b *pb.TypeProto) bool {
	ta, tb := a.GetTensorType(), b.GetTensorType()
	if ta.GetElemType() != tb.GetElemType() {
		return false
	}
	da, db := ta.GetShape().GetDim(), tb.GetShape().GetDim()
	if len(da) != len(db) {
		return false
	}
	for i := range da {
		if da[i].GetDimParam() == "" && db[i].GetDimParam() == "" && da[i].GetDimValue() != db[i].GetDimValue() {
			return false
		}
	}
	return true
}
