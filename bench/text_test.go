package bench_test

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/clip"
)

// TestTextChunks encodes 70 prompts in one run and in chunks of 32 and of
// 7: the features are the same bits, so the chunking that bounds the text
// tower's memory cannot change a result.
func TestTextChunks(t *testing.T) {
	ctx := context.Background()
	dir, man, rt := tinyModel(t)
	m, err := bench.OpenModelWith(ctx, rt, dir, bench.OpenOptions{Lazy: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const n = 70
	ctxLen, width := man.Arch.ContextLength, man.Arch.TextWidth
	r := rand.New(rand.NewPCG(1, 2))
	embeds := clip.Tensor{Shape: []int{n, ctxLen, width}, Data: make([]float32, n*ctxLen*width)}
	for i := range embeds.Data {
		embeds.Data[i] = float32(r.NormFloat64()) * 0.02
	}
	eot := make([]int64, n)
	for i := range eot {
		eot[i] = int64(5 + i%(ctxLen-5))
	}
	deep := clip.Tensor{Shape: []int{man.TextPromptDepth, clip.DeepTokens, width}, Data: make([]float32, man.TextPromptDepth*clip.DeepTokens*width)}
	for i := range deep.Data {
		deep.Data[i] = float32(r.NormFloat64()) * 0.02
	}
	defer func(c int) { bench.TextChunk = c }(bench.TextChunk)
	var ref clip.Tensor
	for _, chunk := range []int{n, 32, 7} {
		bench.TextChunk = chunk
		before := m.TextRuns()
		got, err := m.EncodeText(ctx, embeds, eot, &deep)
		if err != nil {
			t.Fatal(err)
		}
		if runs, want := m.TextRuns()-before, (n+chunk-1)/chunk; runs != want {
			t.Errorf("chunk %d: %d text-tower runs, want %d", chunk, runs, want)
		}
		if chunk == n {
			ref = got
			continue
		}
		if !slices.Equal(got.Shape, ref.Shape) || !slices.EqualFunc(got.Data, ref.Data, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
			t.Errorf("chunk %d: features differ from one run's", chunk)
		}
	}
}
