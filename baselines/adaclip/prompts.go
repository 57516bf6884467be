package adaclip

import (
	"fmt"
	"strings"

	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/tokenizer"
)

// The prompt ensemble of TextEmbebddingLayer (method/adaclip.py L151-L160;
// docs/methods.md#adaclip-text-prompts): 7 normal and 5 abnormal states of
// the object, each in 4 templates.
var (
	normalStates   = []string{"{}", "flawless {}", "perfect {}", "unblemished {}", "{} without flaw", "{} without defect", "{} without damage"}
	abnormalStates = []string{"damaged {}", "broken {}", "{} with flaw", "{} with defect", "{} with damage"}
	templates      = []string{"a bad photo of a {}.", "a low resolution photo of the {}.", "a bad photo of the {}.", "a cropped photo of the {}."}
)

// Sentences returns the 28 normal and 20 abnormal sentences of a class
// name, state-major and template-minor as encode_text builds them. Only
// hyphens become spaces: "metal_nut" keeps its underscore
// (method/adaclip.py L213).
func Sentences(class string) (normal, abnormal []string) {
	class = strings.ReplaceAll(class, "-", " ")
	build := func(states []string) []string {
		var out []string
		for _, s := range states {
			obj := strings.ReplaceAll(s, "{}", class)
			for _, t := range templates {
				out = append(out, strings.ReplaceAll(t, "{}", obj))
			}
		}
		return out
	}
	return build(normalStates), build(abnormalStates)
}

// TextInputs are the text tower's inputs for the sentences of one class:
// their plain token embeddings [N, 77, Dt] and end-of-text indices, normal
// sentences first. The official tokenize refuses over-long text
// (truncate=False), and so does this.
type TextInputs struct {
	Embeds clip.Tensor
	EOT    []int64
	// Normal is how many of the N rows are normal sentences.
	Normal int
}

// NewTextInputs tokenises and embeds the sentences of a class.
func NewTextInputs(tk *tokenizer.Tokenizer, table clip.Tensor, class string) (*TextInputs, error) {
	normal, abnormal := Sentences(class)
	texts := append(append([]string{}, normal...), abnormal...)
	if len(table.Shape) != 2 {
		return nil, fmt.Errorf("adaclip: token-embedding table has shape %v, want [vocab, width]", table.Shape)
	}
	vocab, w := table.Shape[0], table.Shape[1]
	const ctx = tokenizer.ContextLength
	in := &TextInputs{Embeds: clip.NewTensor(len(texts), ctx, w), EOT: make([]int64, len(texts)), Normal: len(normal)}
	for n, text := range texts {
		ids, err := tk.Tokenize(text, false)
		if err != nil {
			return nil, fmt.Errorf("adaclip: class %q: %w", class, err)
		}
		in.EOT[n] = int64(tokenizer.EOTIndex(ids))
		for p, id := range ids {
			if int(id) >= vocab {
				return nil, fmt.Errorf("adaclip: class %q: token id %d outside the %d-row embedding table", class, id, vocab)
			}
			copy(in.Embeds.Data[(n*ctx+p)*w:], table.Data[int(id)*w:(int(id)+1)*w])
		}
	}
	return in, nil
}
