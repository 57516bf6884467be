package grad

import (
	"fmt"
	"slices"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
)

// shallowCopy returns a model whose graph lists can be changed without
// touching m. Nodes, initializers and value infos are shared, so the
// weights of a large tower are not copied; code in this package never
// modifies a shared message, it replaces it.
func shallowCopy(m *pb.ModelProto) *pb.ModelProto {
	g := m.GetGraph()
	c := &pb.ModelProto{
		IrVersion:       m.GetIrVersion(),
		ProducerName:    m.GetProducerName(),
		ProducerVersion: m.GetProducerVersion(),
		Domain:          m.GetDomain(),
		ModelVersion:    m.GetModelVersion(),
		DocString:       m.GetDocString(),
		MetadataProps:   slices.Clone(m.GetMetadataProps()),
		Functions:       slices.Clone(m.GetFunctions()),
	}
	for _, o := range m.GetOpsetImport() {
		c.OpsetImport = append(c.OpsetImport, &pb.OperatorSetIdProto{Domain: o.GetDomain(), Version: o.GetVersion()})
	}
	c.Graph = &pb.GraphProto{
		Name:              g.GetName(),
		DocString:         g.GetDocString(),
		Node:              slices.Clone(g.GetNode()),
		Initializer:       slices.Clone(g.GetInitializer()),
		SparseInitializer: slices.Clone(g.GetSparseInitializer()),
		Input:             slices.Clone(g.GetInput()),
		Output:            slices.Clone(g.GetOutput()),
		ValueInfo:         slices.Clone(g.GetValueInfo()),
	}
	return c
}

// defaultOpset is the model's version of the default ONNX domain.
func defaultOpset(m *pb.ModelProto) (int64, error) {
	for _, o := range m.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			return o.GetVersion(), nil
		}
	}
	return 0, fmt.Errorf("model imports no version of the default ONNX domain")
}

// The opsets whose operator semantics this package implements: 16 adds
// reduction="add" to ScatterND and ScatterElements, which the Gather
// gradients need; 17 is the graph builder's; above 21 is untested.
const (
	minOpset = 16
	maxOpset = 21
)

// checkModel rejects what the package does not handle, with a reason.
func checkModel(m *pb.ModelProto) (int64, error) {
	if m == nil || m.GetGraph() == nil {
		return 0, fmt.Errorf("no model graph")
	}
	opset, err := defaultOpset(m)
	if err != nil {
		return 0, err
	}
	if opset < minOpset || opset > maxOpset {
		return 0, fmt.Errorf("opset %d: supported are %d to %d", opset, minOpset, maxOpset)
	}
	if len(m.GetFunctions()) > 0 {
		return 0, fmt.Errorf("model-local functions are not supported")
	}
	if len(m.GetGraph().GetSparseInitializer()) > 0 {
		return 0, fmt.Errorf("sparse initializers are not supported")
	}
	return opset, nil
}

// topoSort orders nodes so that every node follows the producers of its
// inputs, keeping the given order where it already is one. Names in
// available (graph inputs, initializers) need no producer.
func topoSort(nodes []*pb.NodeProto, available map[string]bool) ([]*pb.NodeProto, error) {
	producer := map[string]int{}
	for i, n := range nodes {
		for _, o := range n.GetOutput() {
			if o == "" {
				continue
			}
			if _, dup := producer[o]; dup || available[o] {
				return nil, fmt.Errorf("value %q is produced twice (%s)", o, nodeLabel(n))
			}
			producer[o] = i
		}
	}
	waiting := make([]int, len(nodes))
	users := make([][]int, len(nodes))
	for i, n := range nodes {
		for _, in := range n.GetInput() {
			if in == "" || available[in] {
				continue
			}
			p, ok := producer[in]
			if !ok {
				return nil, fmt.Errorf("%s reads %q, which nothing defines", nodeLabel(n), in)
			}
			waiting[i]++
			users[p] = append(users[p], i)
		}
	}
	// Kahn's algorithm, always taking the earliest ready node.
	ready := &minHeap{}
	for i := range nodes {
		if waiting[i] == 0 {
			ready.push(i)
		}
	}
	out := make([]*pb.NodeProto, 0, len(nodes))
	for ready.len() > 0 {
		i := ready.pop()
		out = append(out, nodes[i])
		for _, u := range users[i] {
			waiting[u]--
			if waiting[u] == 0 {
				ready.push(u)
			}
		}
	}
	if len(out) != len(nodes) {
		for i, w := range waiting {
			if w > 0 {
				return nil, fmt.Errorf("the graph has a cycle through %s", nodeLabel(nodes[i]))
			}
		}
	}
	return out, nil
}

type minHeap struct{ a []int }

func (h *minHeap) len() int { return len(h.a) }

func (h *minHeap) push(x int) {
	h.a = append(h.a, x)
	i := len(h.a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h.a[p] <= h.a[i] {
			break
		}
		h.a[p], h.a[i] = h.a[i], h.a[p]
		i = p
	}
}

func (h *minHeap) pop() int {
	top := h.a[0]
	last := len(h.a) - 1
	h.a[0] = h.a[last]
	h.a = h.a[:last]
	i := 0
	for {
		l, r, s := 2*i+1, 2*i+2, i
		if l < len(h.a) && h.a[l] < h.a[s] {
			s = l
		}
		if r < len(h.a) && h.a[r] < h.a[s] {
			s = r
		}
		if s == i {
			return top
		}
		h.a[i], h.a[s] = h.a[s], h.a[i]
		i = s
	}
}

// prune drops the nodes and initializers that no graph output needs.
// Graph inputs stay, so the model keeps the forward model's signature.
func prune(g *pb.GraphProto) {
	producer := map[string]*pb.NodeProto{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
	}
	live := map[*pb.NodeProto]bool{}
	used := map[string]bool{}
	var stack []string
	for _, o := range g.GetOutput() {
		stack = append(stack, o.GetName())
	}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if used[v] {
			continue
		}
		used[v] = true
		if n := producer[v]; n != nil && !live[n] {
			live[n] = true
			for _, in := range n.GetInput() {
				if in != "" {
					stack = append(stack, in)
				}
			}
		}
	}
	nodes := g.Node[:0:0]
	for _, n := range g.GetNode() {
		if live[n] {
			nodes = append(nodes, n)
		}
	}
	g.Node = nodes
	for _, in := range g.GetInput() {
		used[in.GetName()] = true // an input's default value stays with it
	}
	inits := g.Initializer[:0:0]
	for _, t := range g.GetInitializer() {
		if used[t.GetName()] {
			inits = append(inits, t)
		}
	}
	g.Initializer = inits
}
