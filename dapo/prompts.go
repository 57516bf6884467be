package dapo

import (
	"fmt"
	"math"
	"strings"

	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/tokenizer"
)

// Prompt constants of the official code (docs/methods.md#dapo-hyperparameters,
// docs/methods.md#dapo-prompt-templates, docs/methods.md#dapo-temperature).
const (
	// ContextTokens is l, the learned context tokens per prompt
	// (normal_token_cnt = abnormal_token_cnt = 5).
	ContextTokens = 5
	// Groups is E, the prompt groups (prompt_count = 10).
	Groups = 10
	// Temperature divides every cosine logit (τ = 0.07, hard-coded).
	Temperature = 0.07
	// placeholder is the word whose token positions the learned context
	// replaces ("X X X X X flawless object").
	placeholder = "X"
	normalState = "flawless"
	anchor      = "anomaly"
	object      = "object"
)

// PromptSet describes the text prompts of one run: the normal prompt and
// one abnormal prompt per defect word, E groups each.
type PromptSet struct {
	// Words are the defect words; an empty list means one abnormal prompt
	// without a defect word ("… anomaly object"), the no-defect-words
	// ablation.
	Words []string
	// Groups is E; the learned context of groups ≥ Groups is unused.
	Groups int
	// Context is the number of learned context tokens, l.
	Context int
	// Handcrafted, when set, replaces the learned context by these words
	// ("a photo of a"): no tensor is spliced in.
	Handcrafted string
}

// Texts returns the prompt strings in the batch order of the official code:
// the normal prompt E times, then for each word its abnormal prompt E times.
func (p PromptSet) Texts() []string {
	ctx := strings.TrimSpace(strings.Repeat(placeholder+" ", p.Context))
	if p.Handcrafted != "" {
		ctx = p.Handcrafted
	}
	join := func(parts ...string) string {
		var keep []string
		for _, s := range parts {
			if s != "" {
				keep = append(keep, s)
			}
		}
		return strings.Join(keep, " ")
	}
	words := p.Words
	if len(words) == 0 {
		words = []string{""}
	}
	out := make([]string, 0, p.Groups*(1+len(words)))
	for range p.Groups {
		out = append(out, join(ctx, normalState, object))
	}
	for _, w := range words {
		for range p.Groups {
			out = append(out, join(ctx, w, anchor, object))
		}
	}
	return out
}

// Classes is 1 + the number of abnormal prompts.
func (p PromptSet) Classes() int { return 1 + max(1, len(p.Words)) }

// Assemble builds the text tower's inputs: token embeddings [N, 77, Dt]
// with the learned context of group e spliced into positions 1..l (normal
// context for the normal prompt, the abnormal context — shared by every
// defect word — for the others), and the end-of-text index of each 77-token
// template (docs/methods.md#dapo-prompt-assembly). The tower reads its output
// at that index of the 81-token sequence, a quirk the checkpoints were
// trained with (docs/methods.md#dapo-eot-index).
func (p PromptSet) Assemble(tk *tokenizer.Tokenizer, table, normalCtx, abnormalCtx clip.Tensor) (clip.Tensor, []int64, error) {
	texts := p.Texts()
	embeds, eot, err := clip.TextInputs(tk, table, texts)
	if err != nil {
		return clip.Tensor{}, nil, fmt.Errorf("dapo: %w", err)
	}
	if p.Handcrafted != "" {
		return embeds, eot, nil
	}
	dt := table.Shape[1]
	for _, c := range []struct {
		name string
		t    clip.Tensor
	}{{"normal context", normalCtx}, {"abnormal context", abnormalCtx}} {
		if len(c.t.Shape) != 3 || c.t.Shape[0] < p.Groups || c.t.Shape[1] != p.Context || c.t.Shape[2] != dt {
			return clip.Tensor{}, nil, fmt.Errorf("dapo: %s has shape %v, want [≥%d, %d, %d]", c.name, c.t.Shape, p.Groups, p.Context, dt)
		}
	}
	row := tokenizer.ContextLength * dt
	for n := range texts {
		ctx, e := abnormalCtx, n%p.Groups
		if n < p.Groups {
			ctx = normalCtx
		}
		src := ctx.Data[e*p.Context*dt : (e+1)*p.Context*dt]
		copy(embeds.Data[n*row+dt:n*row+dt+len(src)], src)
	}
	return embeds, eot, nil
}

// ClassFeatures reduces the tower's [N, De] features to one unit vector per
// class: the mean over the E groups (unnormalised), then L2 normalisation
// (docs/methods.md#dapo-class-embeddings). Row 0 is normal.
func (p PromptSet) ClassFeatures(features clip.Tensor) ([][]float32, error) {
	c := p.Classes()
	if len(features.Shape) != 2 || features.Shape[0] != c*p.Groups {
		return nil, fmt.Errorf("dapo: text features have shape %v, want [%d, D]", features.Shape, c*p.Groups)
	}
	d := features.Shape[1]
	out := make([][]float32, c)
	for k := range c {
		acc := make([]float64, d)
		for e := range p.Groups {
			row := features.Data[(k*p.Groups+e)*d : (k*p.Groups+e+1)*d]
			for i, v := range row {
				acc[i] += float64(v)
			}
		}
		out[k] = normalized(acc)
	}
	return out, nil
}

// normalized returns v / ‖v‖ in float32.
func normalized(v []float64) []float32 {
	var ss float64
	for _, x := range v {
		ss += x * x
	}
	out := make([]float32, len(v))
	if ss == 0 {
		return out
	}
	n := 1 / math.Sqrt(ss)
	for i, x := range v {
		out[i] = float32(x * n)
	}
	return out
}
