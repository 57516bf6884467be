package train

import (
	"fmt"
	"strings"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/grad"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Recompute says when a training step recomputes activations instead of
// keeping them (gradient checkpointing, docs/README.md#train-memory).
type Recompute string

const (
	// RecomputeAuto recomputes when the step would keep more than
	// RecomputeAbove bytes of activations at the batch size.
	RecomputeAuto Recompute = "auto"
	// RecomputeOn keeps only the residual stream at each transformer
	// block and recomputes the rest in the backward pass.
	RecomputeOn Recompute = "on"
	// RecomputeOff keeps every activation the backward pass reads.
	RecomputeOff Recompute = "off"
)

// RecomputeAbove is the activation size from which RecomputeAuto
// recomputes: a ViT-L step at 518 px and batch 8 keeps about 47 GB without
// recomputation and 4 GB with it, at the cost of a second forward pass; a
// step that keeps less than this runs as it is.
const RecomputeAbove = 4 << 30

// StepLoadOptions are how a training step's session is loaded: each
// weight is held once, not once per node that reads it (the forward,
// backward and recomputed products; docs/README.md#train-memory).
var StepLoadOptions = runner.LoadOptions{OneWeightCopy: true}

// ParseRecompute checks a --recompute value; "" is auto.
func ParseRecompute(s string) (Recompute, error) {
	switch Recompute(s) {
	case "", RecomputeAuto:
		return RecomputeAuto, nil
	case RecomputeOn, RecomputeOff:
		return Recompute(s), nil
	}
	return "", fmt.Errorf("train: recompute %q: want auto, on or off", s)
}

// Step differentiates the forward graph into a training step for batches
// of the given size, recomputing activations as r says. It returns the
// step and whether it recomputes.
func Step(g *Graph, batch int, r Recompute) (*pb.ModelProto, bool, error) {
	opts := grad.Options{GradName: GradName, Keep: Terms()}
	if r != RecomputeOn {
		step, err := grad.Backward(g.Forward, OutLoss, g.Learnable, opts)
		if err != nil || r == RecomputeOff {
			return step, false, err
		}
		st, err := grad.Analyze(step, map[string]int64{"batch": int64(batch)})
		if err != nil {
			return nil, false, err
		}
		if st.SavedBytes >= 0 && st.SavedBytes <= RecomputeAbove {
			return step, false, nil
		}
	}
	opts.Checkpoints = BlockInputs(g.Forward)
	step, err := grad.Backward(g.Forward, OutLoss, g.Learnable, opts)
	return step, true, err
}

// BlockInputs are the residual stream entering each transformer block of
// both towers: the input of every block's first layer norm (the one whose
// weight is <tower>.resblocks.<i>.ln_1.weight), the checkpoints of a
// recomputing step.
func BlockInputs(fwd *pb.ModelProto) []string {
	var out []string
	for _, n := range fwd.GetGraph().GetNode() {
		if n.GetOpType() == "LayerNormalization" && len(n.GetInput()) > 1 && strings.HasSuffix(n.GetInput()[1], ".ln_1.weight") &&
			strings.Contains(n.GetInput()[1], "resblocks.") {
			out = append(out, n.GetInput()[0])
		}
	}
	return out
}
