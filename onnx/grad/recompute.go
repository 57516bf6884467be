package grad

import (
	"fmt"
	"slices"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
)

// recompute trades computation for memory (gradient checkpointing,
// docs/README.md#train-memory): the forward values the backward part
// reads are kept only at the checkpoints; every other one is computed again
// from the nearest checkpoint before it, when the backward part reaches
// it.
//
// The forward nodes fall into segments: a node belongs to segment k when
// the latest checkpoint it depends on (directly, or through values of its
// own segment) is checkpoints[k]. For each segment whose values the
// backward nodes read, the nodes that produce them are cloned, reading
// their checkpoints through a gate: Where(c, x, x), which is x itself,
// with a condition c computed from the gradient of the next checkpoint.
// The clones can therefore run only once the backward part has come back
// to that segment, and onnxruntime frees the forward originals after
// their last forward use. The gradients are the same numbers: the clones
// repeat the same operations on the same values.
//
// gradOf maps forward values to their (summed) gradient. The last segment
// and segments whose next checkpoint has no gradient keep their values.
func recompute(b *Builder, nodes []*pb.NodeProto, checkpoints []string, gradOf map[string]string) error {
	pos := map[string]int{} // producer position of each forward value
	for i, n := range nodes {
		for _, o := range n.GetOutput() {
			if o != "" {
				pos[o] = i
			}
		}
	}
	cks := slices.Clone(checkpoints)
	for _, c := range cks {
		if _, ok := pos[c]; !ok {
			return fmt.Errorf("checkpoint %q is not a forward value", c)
		}
	}
	slices.SortStableFunc(cks, func(a, b string) int { return pos[a] - pos[b] })
	cks = slices.Compact(cks)
	ck := map[string]int{}
	for k, c := range cks {
		ck[c] = k
	}
	// Segments of the forward values (checkpoints excepted) and nodes;
	// -1 for what depends on graph inputs and weights alone.
	seg := map[string]int{}
	nodeSeg := make([]int, len(nodes))
	for i, n := range nodes {
		s := -1
		for _, in := range n.GetInput() {
			if k, ok := ck[in]; ok {
				s = max(s, k)
			} else if v, ok := seg[in]; ok {
				s = max(s, v)
			}
		}
		nodeSeg[i] = s
		for _, o := range n.GetOutput() {
			if _, isCk := ck[o]; o != "" && !isCk {
				seg[o] = s
			}
		}
	}
	// A value read by a node of another segment (the outputs of a
	// segment: checkpoints, the towers' feature outputs) is kept: only
	// values used inside their own segment are recomputed. The gradients
	// of a segment's outputs come from the backward part of later
	// segments alone, so they can gate the segment's recomputation
	// without a cycle.
	outputOf := map[int][]string{} // a segment's values read elsewhere
	inner := map[string]bool{}     // values read only inside their segment
	for v, s := range seg {
		inner[v] = s >= 0
	}
	for i, n := range nodes {
		for _, in := range n.GetInput() {
			if s, ok := seg[in]; ok && s != nodeSeg[i] {
				inner[in] = false
			}
		}
		for _, o := range n.GetOutput() {
			if _, isCk := ck[o]; isCk && nodeSeg[i] >= 0 {
				outputOf[nodeSeg[i]] = append(outputOf[nodeSeg[i]], o)
			}
		}
	}
	for v, s := range seg {
		if s >= 0 && !inner[v] {
			outputOf[s] = append(outputOf[s], v)
		}
	}
	// The forward values each segment must give the backward nodes.
	backward := b.g.Node[len(nodes):]
	need := map[int][]string{}
	for _, n := range backward {
		for _, in := range n.GetInput() {
			if inner[in] && !slices.Contains(need[seg[in]], in) {
				need[seg[in]] = append(need[seg[in]], in)
			}
		}
	}
	rename := map[string]string{}
	for s := range len(cks) {
		gate := ""
		slices.Sort(outputOf[s]) // a deterministic choice
		for _, o := range outputOf[s] {
			if g := gradOf[o]; g != "" {
				gate = g
				break
			}
		}
		if len(need[s]) == 0 || gate == "" {
			continue // nothing to recompute, or nothing to wait for
		}
		// The segment's nodes the needed values come from.
		clone := map[int]bool{}
		stack := slices.Clone(need[s])
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			i, ok := pos[v]
			if !ok || !inner[v] || nodeSeg[i] != s || clone[i] {
				continue
			}
			clone[i] = true
			stack = append(stack, nodes[i].GetInput()...)
		}
		cond := b.gateCondition(gate)
		gated := map[string]string{}
		for i, n := range nodes {
			if !clone[i] {
				continue
			}
			in := slices.Clone(n.GetInput())
			for j, v := range in {
				switch {
				case v == "":
				case rename[v] != "":
					in[j] = rename[v]
				default:
					if k, ok := ck[v]; ok && k <= s {
						if gated[v] == "" {
							gated[v] = b.op("Where", []string{cond, v, v})
						}
						in[j] = gated[v]
					}
				}
			}
			out := make([]string, len(n.GetOutput()))
			for j, o := range n.GetOutput() {
				if o != "" {
					out[j] = b.fresh("recompute")
					rename[o] = out[j]
				}
			}
			c := &pb.NodeProto{OpType: n.GetOpType(), Domain: n.GetDomain(), Name: b.nodeName("recompute/" + n.GetOpType()),
				Input: in, Output: out, Attribute: n.GetAttribute()}
			for j, o := range n.GetOutput() {
				if o != "" {
					b.inf.vals[out[j]] = b.info(o)
				}
			}
			b.g.Node = append(b.g.Node, c)
		}
	}
	if b.err != nil {
		return b.err
	}
	for _, n := range backward {
		for j, in := range n.GetInput() {
			if r := rename[in]; r != "" {
				n.Input[j] = r
			}
		}
	}
	return nil
}

// gateCondition is a true boolean scalar computed from g: the sum of none
// of its elements, compared with itself. It makes whatever reads it wait
// for g.
func (b *Builder) gateCondition(g string) string {
	flat := b.Reshape(g, -1)
	empty := b.op("Slice", []string{flat, b.Ints(false, 0), b.Ints(false, 0), b.Ints(false, 0)})
	zero := b.ReduceSum(empty, false)
	return b.op("Equal", []string{zero, zero})
}
