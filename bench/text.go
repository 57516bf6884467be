package bench

import (
	"context"
	"fmt"

	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/onnx/runner"
)

// EncodeText runs the text tower on prompt token embeddings [N, 77, Dt]
// with their end-of-text indices and, for the variants that have them, the
// deep prompt tokens [depth, 4, Dt]; it returns the unnormalised text
// features [N, De].
func (m *Model) EncodeText(ctx context.Context, embeds clip.Tensor, eot []int64, deep *clip.Tensor) (clip.Tensor, error) {
	if m.Text == nil {
		return clip.Tensor{}, fmt.Errorf("bench: %s has no text tower", m.Dir)
	}
	in := map[string]runner.Tensor{
		clip.InEmbeds:   {Shape: int64s(embeds.Shape), Float32: embeds.Data},
		clip.InEOTIndex: {Shape: []int64{int64(len(eot))}, Int64: eot},
	}
	if deep != nil {
		in[clip.InDeepTokens] = runner.Tensor{Shape: int64s(deep.Shape), Float32: deep.Data}
	}
	out, err := m.Text.Run(ctx, in)
	if err != nil {
		return clip.Tensor{}, fmt.Errorf("bench: text tower: %w", err)
	}
	t := out[clip.OutTextFeatures]
	return clip.Tensor{Shape: ints(t.Shape), Data: t.Float32}, nil
}

func int64s(s []int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}

func ints(s []int64) []int {
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d)
	}
	return out
}

// TensorOf converts a clip tensor for a graph input.
func TensorOf(t clip.Tensor) runner.Tensor {
	return runner.Tensor{Shape: int64s(t.Shape), Float32: t.Data}
}
