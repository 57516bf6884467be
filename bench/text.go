package bench

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"

	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/onnx/runner"
)

// textCacheKind is the preprocessing part of a text-cache key: what the
// entry holds, so that text entries never collide with image entries.
const textCacheKind = "text_features of one prompt: embeds row, eot index, deep tokens"

// EncodeText runs the text tower on prompt token embeddings [N, 77, Dt]
// with their end-of-text indices and, for the variants that have them, the
// deep prompt tokens [depth, 4, Dt]; it returns the unnormalised text
// features [N, De].
//
// With a TextCache, each prompt's features are read from the cache when
// present and only the missing prompts go through the tower, in one run,
// in their original order (docs/README.md#text-cache). Every prompt is an
// independent row of the tower, so the result does not depend on which
// rows came from the cache.
func (m *Model) EncodeText(ctx context.Context, embeds clip.Tensor, eot []int64, deep *clip.Tensor) (clip.Tensor, error) {
	if m.Manifest.Files["text"] == "" {
		return clip.Tensor{}, fmt.Errorf("bench: %s has no text tower", m.Dir)
	}
	if len(embeds.Shape) != 3 || embeds.Shape[0] != len(eot) || embeds.Shape[0] == 0 {
		return clip.Tensor{}, fmt.Errorf("bench: text inputs of shape %v with %d end-of-text indices", embeds.Shape, len(eot))
	}
	if m.TextCache == nil {
		return m.runText(ctx, embeds, eot, deep)
	}
	n, de := len(eot), m.Manifest.EmbedDim
	keys, err := m.textKeys(embeds, eot, deep)
	if err != nil {
		return clip.Tensor{}, err
	}
	out := clip.Tensor{Shape: []int{n, de}, Data: make([]float32, n*de)}
	var miss []int
	for i, k := range keys {
		e, err := m.TextCache.Get(ctx, k)
		if err != nil && !errors.Is(err, featcache.ErrMiss) && !errors.Is(err, featcache.ErrCorrupt) {
			return clip.Tensor{}, fmt.Errorf("bench: text cache: %w", err)
		}
		t, ok := e.Tensor(clip.OutTextFeatures)
		if err != nil || !ok || len(t.Data) != de {
			miss = append(miss, i)
			continue
		}
		copy(out.Data[i*de:], t.Data)
	}
	if len(miss) == 0 {
		return out, nil
	}
	row := len(embeds.Data) / n
	sub := clip.Tensor{Shape: []int{len(miss), embeds.Shape[1], embeds.Shape[2]}, Data: make([]float32, 0, len(miss)*row)}
	subEOT := make([]int64, 0, len(miss))
	for _, i := range miss {
		sub.Data = append(sub.Data, embeds.Data[i*row:(i+1)*row]...)
		subEOT = append(subEOT, eot[i])
	}
	f, err := m.runText(ctx, sub, subEOT, deep)
	if err != nil {
		return clip.Tensor{}, err
	}
	if len(f.Data) != len(miss)*de {
		return clip.Tensor{}, fmt.Errorf("bench: text tower returned shape %v for %d prompts, want [%d %d]", f.Shape, len(miss), len(miss), de)
	}
	for j, i := range miss {
		v := f.Data[j*de : (j+1)*de]
		copy(out.Data[i*de:], v)
		e := featcache.Entry{Tensors: []featcache.Tensor{{Name: clip.OutTextFeatures, Shape: []int{de}, Data: v}}}
		if err := m.TextCache.Put(ctx, keys[i], e); err != nil {
			return clip.Tensor{}, fmt.Errorf("bench: text cache: %w", err)
		}
	}
	return out, nil
}

// TextRuns is the number of times the text tower has run.
func (m *Model) TextRuns() int {
	textMu.Lock()
	defer textMu.Unlock()
	return m.textRuns
}

// TextChunk is the most prompts the text tower runs at once. A scheme
// encodes hundreds of prompts (DAPO: 210 per category), and one run over
// all of them holds every prompt's activations at once, more than a
// ViT-L/14 image tower's (docs/README.md#perf-text-chunks); each prompt is
// an independent row, so the features do not depend on the chunking.
var TextChunk = 32

// runText runs the text tower in chunks of TextChunk prompts, loading it
// first if needed.
func (m *Model) runText(ctx context.Context, embeds clip.Tensor, eot []int64, deep *clip.Tensor) (clip.Tensor, error) {
	if err := m.loadText(ctx); err != nil {
		return clip.Tensor{}, err
	}
	n := len(eot)
	row := len(embeds.Data) / n
	var feats clip.Tensor
	for lo := 0; lo < n; lo += TextChunk {
		hi := min(lo+TextChunk, n)
		shape := append([]int64{int64(hi - lo)}, int64s(embeds.Shape[1:])...)
		in := map[string]runner.Tensor{
			clip.InEmbeds:   {Shape: shape, Float32: embeds.Data[lo*row : hi*row]},
			clip.InEOTIndex: {Shape: []int64{int64(hi - lo)}, Int64: eot[lo:hi]},
		}
		if deep != nil {
			in[clip.InDeepTokens] = runner.Tensor{Shape: int64s(deep.Shape), Float32: deep.Data}
		}
		textMu.Lock()
		m.textRuns++
		textMu.Unlock()
		out, err := m.Text.Run(ctx, in)
		if err != nil {
			return clip.Tensor{}, fmt.Errorf("bench: text tower: %w", err)
		}
		t := out[clip.OutTextFeatures]
		if len(t.Shape) != 2 || t.Shape[0] != int64(hi-lo) {
			return clip.Tensor{}, fmt.Errorf("bench: text tower returned shape %v for %d prompts", t.Shape, hi-lo)
		}
		if feats.Data == nil {
			feats = clip.Tensor{Shape: []int{n, int(t.Shape[1])}, Data: make([]float32, 0, n*int(t.Shape[1]))}
		}
		feats.Data = append(feats.Data, t.Float32...)
	}
	return feats, nil
}

// textKeys returns one cache key per prompt: the text tower's files, and
// the prompt's embedding row, end-of-text index and the deep tokens.
func (m *Model) textKeys(embeds clip.Tensor, eot []int64, deep *clip.Tensor) ([]featcache.Key, error) {
	textMu.Lock()
	if m.textHash == "" {
		_, h, _, err := modelHashes(m.Dir, m.Manifest, "")
		if err != nil {
			textMu.Unlock()
			return nil, err
		}
		m.textHash = h
	}
	model := "text " + m.textHash
	textMu.Unlock()
	dh := sha256.New()
	if deep != nil {
		hashShape(dh, deep.Shape)
		hashFloats(dh, deep.Data)
	} else {
		dh.Write([]byte("no deep tokens"))
	}
	deepSum := dh.Sum(nil)
	n := len(eot)
	row := len(embeds.Data) / n
	keys := make([]featcache.Key, n)
	for i := range n {
		h := sha256.New()
		hashShape(h, embeds.Shape[1:])
		hashFloats(h, embeds.Data[i*row:(i+1)*row])
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(eot[i]))
		h.Write(b[:])
		h.Write(deepSum)
		keys[i] = featcache.Key{Model: model, Preprocess: textCacheKind, Content: hex.EncodeToString(h.Sum(nil))}
	}
	return keys, nil
}

func hashShape(h hash.Hash, shape []int) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(len(shape)))
	h.Write(b[:])
	for _, d := range shape {
		binary.LittleEndian.PutUint64(b[:], uint64(d))
		h.Write(b[:])
	}
}

// hashFloats writes v's little-endian bytes to h.
func hashFloats(h hash.Hash, v []float32) {
	var buf [4096]byte
	for len(v) > 0 {
		k := min(len(v), len(buf)/4)
		for i, x := range v[:k] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
		}
		h.Write(buf[:4*k])
		v = v[k:]
	}
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
