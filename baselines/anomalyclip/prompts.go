package anomalyclip

import (
	"fmt"
	"strings"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/tokenizer"
)

// Prompt constants of prompt_ensemble.py AnomalyCLIP_PromptLearner
// (docs/methods.md#anomalyclip-prompts).
const (
	// ContextTokens is n_ctx, the learned tokens in front of both prompts.
	ContextTokens = checkpoints.AnomalyCLIPContextTokens
	// placeholder is the word whose token positions 1..n_ctx the learned
	// context replaces (prompt_prefix = " ".join(["X"] * n_ctx)).
	placeholder = "X"
	// object is the only class name (classnames = ["object"]).
	object = "object"
	// normalState and abnormalState are state_normal_list and
	// state_anomaly_list.
	normalState   = "{}"
	abnormalState = "damaged {}"
)

// Texts returns the normal and the abnormal prompt, prefix + " " +
// state.format("object") + ".":
// "X X X X X X X X X X X X object." and "X X X X X X X X X X X X damaged object.".
func Texts() [2]string {
	prefix := strings.TrimSpace(strings.Repeat(placeholder+" ", ContextTokens))
	var out [2]string
	for i, st := range [2]string{normalState, abnormalState} {
		out[i] = prefix + " " + strings.Replace(st, "{}", object, 1) + "."
	}
	return out
}

// Assemble builds the text tower's inputs for the two prompts: token
// embeddings [2, 77, Dt] with normalCtx (ctx_pos) spliced into positions
// 1..12 of the normal prompt and abnormalCtx (ctx_neg) into those of the
// abnormal one, as the prompt learner concatenates prefix, context and
// suffix; and the end-of-text indices (15 and 16), where the tower reads
// its output.
func Assemble(tk *tokenizer.Tokenizer, table, normalCtx, abnormalCtx clip.Tensor) (clip.Tensor, []int64, error) {
	texts := Texts()
	embeds, eot, err := clip.TextInputs(tk, table, texts[:])
	if err != nil {
		return clip.Tensor{}, nil, fmt.Errorf("anomalyclip: %w", err)
	}
	dt := table.Shape[1]
	x := tk.Encode(placeholder)
	if len(x) != 1 {
		return clip.Tensor{}, nil, fmt.Errorf("anomalyclip: placeholder %q is not one token", placeholder)
	}
	row := tokenizer.ContextLength * dt
	for n, c := range []struct {
		name string
		t    clip.Tensor
	}{{"normal context", normalCtx}, {"abnormal context", abnormalCtx}} {
		if len(c.t.Shape) != 2 || c.t.Shape[0] != ContextTokens || c.t.Shape[1] != dt || len(c.t.Data) != ContextTokens*dt {
			return clip.Tensor{}, nil, fmt.Errorf("anomalyclip: %s has shape %v, want [%d %d]", c.name, c.t.Shape, ContextTokens, dt)
		}
		ids, err := tk.Tokenize(texts[n], false)
		if err != nil {
			return clip.Tensor{}, nil, fmt.Errorf("anomalyclip: %w", err)
		}
		// The context must land exactly on the placeholder tokens.
		for p := 1; p <= ContextTokens; p++ {
			if ids[p] != int64(x[0]) {
				return clip.Tensor{}, nil, fmt.Errorf("anomalyclip: %q: token %d is %d, not the placeholder", texts[n], p, ids[p])
			}
		}
		copy(embeds.Data[n*row+dt:n*row+(1+ContextTokens)*dt], c.t.Data)
	}
	return embeds, eot, nil
}
