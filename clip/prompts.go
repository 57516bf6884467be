package clip

import (
	"fmt"

	"github.com/dapobench/dapobench/clip/tokenizer"
)

// TextInputs tokenizes texts and looks up their token embeddings in the
// [vocab, width] table, giving the text tower's embeds [N, 77, width] and
// eot_index [N] inputs. Text too long for the context is truncated with EOT
// last, as open_clip's tokenizer does. Schemes with learned context splice
// it into embeds before running the tower.
func TextInputs(tk *tokenizer.Tokenizer, table Tensor, texts []string) (Tensor, []int64, error) {
	if len(table.Shape) != 2 {
		return Tensor{}, nil, fmt.Errorf("clip: token-embedding table has shape %v, want [vocab, width]", table.Shape)
	}
	vocab, w := table.Shape[0], table.Shape[1]
	out := NewTensor(len(texts), tokenizer.ContextLength, w)
	eot := make([]int64, len(texts))
	for n, text := range texts {
		ids, err := tk.Tokenize(text, true)
		if err != nil {
			return Tensor{}, nil, fmt.Errorf("clip: text %d: %w", n, err)
		}
		eot[n] = int64(tokenizer.EOTIndex(ids))
		for p, id := range ids {
			if int(id) >= vocab {
				return Tensor{}, nil, fmt.Errorf("clip: text %d: token id %d outside the %d-row embedding table", n, id, vocab)
			}
			copy(out.Data[(n*tokenizer.ContextLength+p)*w:], table.Data[int(id)*w:(int(id)+1)*w])
		}
	}
	return out, eot, nil
}
