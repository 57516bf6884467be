package dapo

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/tokenizer"
)

// reference holds the values testdata/gen_prompts.py computed with the
// reference tokenizer and numpy.
type reference struct {
	Cases []struct {
		Word *string `json:"word"`
		Text string  `json:"text"`
		IDs  []int64 `json:"ids"`
		EOT  int     `json:"eot"`
	} `json:"cases"`
	Assembly struct {
		Groups, Context, Dim int
		Words                []string
		TableRows            map[string][]float32 `json:"table_rows"`
		NormalCtx            []float32            `json:"normal_ctx"`
		AbnormalCtx          []float32            `json:"abnormal_ctx"`
		Embeds               []float32
		EOT                  []int64
	} `json:"assembly"`
}

func readReference(t *testing.T) reference {
	t.Helper()
	b, err := os.ReadFile("testdata/prompts.json")
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestTemplateTokens checks the prompt of every vocabulary word against
// the reference tokenizer: token ids and end-of-text index
// (docs/methods.md#dapo-token-ids:
// 8 for the normal prompt, 9 for one-token words, 12 for "discoloration").
func TestTemplateTokens(t *testing.T) {
	ref := readReference(t)
	tk, err := tokenizer.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ref.Cases {
		p := PromptSet{Groups: 1, Context: ContextTokens}
		var text string
		if c.Word == nil {
			text = p.Texts()[0]
		} else {
			if *c.Word != "" {
				p.Words = []string{*c.Word}
			}
			text = p.Texts()[1]
		}
		if text != c.Text {
			t.Errorf("template %q, want %q", text, c.Text)
			continue
		}
		ids, err := tk.Tokenize(text, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.DeleteFunc(slices.Clone(ids), func(i int64) bool { return i == 0 }); !slices.Equal(got, c.IDs) {
			t.Errorf("%q: ids %v, want %v", text, got, c.IDs)
		}
		if e := tokenizer.EOTIndex(ids); e != c.EOT {
			t.Errorf("%q: EOT index %d, want %d", text, e, c.EOT)
		}
	}
}

func TestAssemble(t *testing.T) {
	ref := readReference(t)
	a := ref.Assembly
	tk, err := tokenizer.New()
	if err != nil {
		t.Fatal(err)
	}
	table := clip.NewTensor(49408, a.Dim)
	for k, row := range a.TableRows {
		i, _ := strconv.Atoi(k)
		copy(table.Data[i*a.Dim:], row)
	}
	p := PromptSet{Words: a.Words, Groups: a.Groups, Context: a.Context}
	normal := clip.Tensor{Shape: []int{a.Groups, a.Context, a.Dim}, Data: a.NormalCtx}
	abnormal := clip.Tensor{Shape: []int{a.Groups, a.Context, a.Dim}, Data: a.AbnormalCtx}
	embeds, eot, err := p.Assemble(tk, table, normal, abnormal)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(eot, a.EOT) {
		t.Errorf("EOT %v, want %v", eot, a.EOT)
	}
	if !slices.Equal(embeds.Data, a.Embeds) {
		t.Error("assembled embeddings differ from the reference")
	}
	// A context of the wrong shape is an error, not a silent mis-splice.
	bad := clip.Tensor{Shape: []int{a.Groups, a.Context + 1, a.Dim}, Data: make([]float32, a.Groups*(a.Context+1)*a.Dim)}
	if _, _, err := p.Assemble(tk, table, bad, abnormal); err == nil {
		t.Error("no error for a mis-shaped context")
	}
}

func TestClassFeatures(t *testing.T) {
	p := PromptSet{Words: []string{"a", "b"}, Groups: 2, Context: 5}
	// rows: normal×2, a×2, b×2 in 2 dims
	f := clip.Tensor{Shape: []int{6, 2}, Data: []float32{1, 0, 3, 0, 0, 1, 0, 3, 1, 1, 1, 1}}
	got, err := p.ClassFeatures(f)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]float32{{1, 0}, {0, 1}, {float32(math.Sqrt(0.5)), float32(math.Sqrt(0.5))}}
	for k := range want {
		for i := range want[k] {
			if math.Abs(float64(got[k][i]-want[k][i])) > 1e-7 {
				t.Errorf("class %d: %v, want %v", k, got[k], want[k])
			}
		}
	}
	if _, err := p.ClassFeatures(clip.Tensor{Shape: []int{5, 2}, Data: make([]float32, 10)}); err == nil {
		t.Error("no error for a wrong row count")
	}
}
