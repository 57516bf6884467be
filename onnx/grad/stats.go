package grad

import (
	"fmt"
	"slices"
	"strings"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
)

// Stats describes a model made by Backward: how much of it is backward,
// and which forward activations the backward part reads, which
// onnxruntime must therefore keep until the backward part has used them.
type Stats struct {
	ForwardNodes, BackwardNodes int
	// Saved are the forward activations (not inputs, not weights) read by
	// backward nodes, in graph order.
	Saved []string
	// SavedBytes is their total size at the given symbolic sizes, or -1
	// when a size is unknown at build time.
	SavedBytes int64
}

// Analyze computes Stats for a model made by Backward. sizes gives the
// run-time value of symbolic dimensions (such as "batch") for SavedBytes.
func Analyze(m *pb.ModelProto, sizes map[string]int64) (Stats, error) {
	opset, err := checkModel(m)
	if err != nil {
		return Stats{}, fmt.Errorf("grad: analyze: %w", err)
	}
	b, err := newBuilder(shallowCopy(m), opset, "")
	if err != nil {
		return Stats{}, fmt.Errorf("grad: analyze %s: %w", m.GetGraph().GetName(), err)
	}
	forward := map[string]bool{}
	var s Stats
	for _, n := range b.g.GetNode() {
		if strings.HasPrefix(n.GetName(), GradPrefix) {
			s.BackwardNodes++
			continue
		}
		s.ForwardNodes++
		for _, o := range n.GetOutput() {
			forward[o] = true
		}
	}
	saved := map[string]bool{}
	for _, n := range b.g.GetNode() {
		if !strings.HasPrefix(n.GetName(), GradPrefix) {
			continue
		}
		for _, in := range n.GetInput() {
			if forward[in] && !saved[in] {
				saved[in] = true
				s.Saved = append(s.Saved, in)
			}
		}
	}
	// A value that is also a graph output is kept anyway, but it still
	// counts: it is memory the step holds.
	order := map[string]int{}
	for i, n := range b.g.GetNode() {
		for _, o := range n.GetOutput() {
			order[o] = i
		}
	}
	slices.SortStableFunc(s.Saved, func(x, y string) int { return order[x] - order[y] })
	for _, v := range s.Saved {
		vi := b.info(v)
		n, ok := elems(vi, sizes)
		if !ok || s.SavedBytes < 0 {
			s.SavedBytes = -1
			continue
		}
		s.SavedBytes += n * elemSize(vi.dt)
	}
	return s, nil
}

func elems(v *info, sizes map[string]int64) (int64, bool) {
	if v.rank < 0 {
		return 0, false
	}
	n := int64(1)
	for _, d := range v.dims {
		switch {
		case d.known():
			n *= d.n
		case d.sym != "" && sizes[d.sym] > 0:
			n *= sizes[d.sym]
		default:
			return 0, false
		}
	}
	return n, true
}

func elemSize(dt int32) int64 {
	switch dt {
	case tDouble, tInt64:
		return 8
	case tFloat, tInt32:
		return 4
	case tFloat16:
		return 2
	}
	return 1
}
