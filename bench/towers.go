package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/dapobench/dapobench/bench/preprocess"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/safetensors"
	"github.com/dapobench/dapobench/clip/tokenizer"
	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/onnx/runner"
)

// TowerInputs are what RunTowers feeds a model directory's towers.
type TowerInputs struct {
	Images []string // image files, preprocessed as the model's manifest says
	Texts  []string // prompts, tokenised and embedded
	// Learned fills the towers' other inputs (visual prompts, deep
	// tokens) by name; inputs without a value get zeros, and a line on
	// Warn says so.
	Learned map[string]runner.Tensor
	Warn    io.Writer
}

// RunTowers runs a model directory's towers directly on images and texts
// and returns every output by name (the text features as "text_embed"):
// how a model is inspected and compared with a PyTorch pipeline.
func RunTowers(ctx context.Context, rt *runner.Runtime, dir string, m *clip.Manifest, in TowerInputs) (map[string]runner.Tensor, error) {
	out := map[string]runner.Tensor{}
	if len(in.Images) > 0 {
		res, err := runImages(ctx, rt, dir, m, in)
		if err != nil {
			return nil, err
		}
		for k, v := range res {
			out[k] = v
		}
	}
	if len(in.Texts) > 0 {
		// AdaCLIP's text tower takes one image's plain embedding
		// (docs/methods.md#adaclip-dynamic-prompts): the image's, when one
		// was given.
		if e, ok := out[clip.OutImageEmbedPlain]; ok && len(in.Images) == 1 {
			if _, given := in.Learned[clip.InImageEmbedPlain]; !given {
				learned := maps.Clone(in.Learned)
				if learned == nil {
					learned = map[string]runner.Tensor{}
				}
				learned[clip.InImageEmbedPlain] = e
				in.Learned = learned
			}
		}
		res, err := runTexts(ctx, rt, dir, m, in)
		if err != nil {
			return nil, err
		}
		out["text_embed"] = res[clip.OutTextFeatures]
	}
	return out, nil
}

// WriteTowerOutputs writes every output of RunTowers as dir/<name>.npy,
// in name order, creating dir, and lists each file with its shape on w
// as it is written.
func WriteTowerOutputs(dir string, res map[string]runner.Tensor, w io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(res)) {
		t := res[name]
		shape := make([]int, len(t.Shape))
		for i, d := range t.Shape {
			shape[i] = int(d)
		}
		path := filepath.Join(dir, name+".npy")
		if err := npy.WriteFile(path, shape, t.Float32); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s %v\n", path, shape)
	}
	return nil
}

// ReadTensors reads every tensor of a safetensors file as float32 runner
// inputs; "" gives none.
func ReadTensors(path string) (map[string]runner.Tensor, error) {
	out := map[string]runner.Tensor{}
	if path == "" {
		return out, nil
	}
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for _, t := range f.Tensors {
		v, err := t.Float32()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out[t.Name] = runner.Tensor{Shape: int64s(t.Shape), Float32: v}
	}
	return out, nil
}

// feedLearned fills the session's remaining inputs from learned, or with
// zeros.
func feedLearned(s *runner.Session, feeds, learned map[string]runner.Tensor, warn io.Writer) error {
	for _, info := range s.Inputs() {
		if _, ok := feeds[info.Name]; ok {
			continue
		}
		if t, ok := learned[info.Name]; ok {
			feeds[info.Name] = t
			continue
		}
		n := int64(1)
		for _, d := range info.Shape {
			if d < 0 {
				return fmt.Errorf("input %s has a free dimension and no value", info.Name)
			}
			n *= d
		}
		if warn != nil {
			fmt.Fprintf(warn, "models run: %s not given (--prompts); using zeros %v\n", info.Name, info.Shape)
		}
		feeds[info.Name] = runner.Tensor{Shape: info.Shape, Float32: make([]float32, n)}
	}
	return nil
}

func runImages(ctx context.Context, rt *runner.Runtime, dir string, m *clip.Manifest, in TowerInputs) (map[string]runner.Tensor, error) {
	spec := preprocess.Spec{Size: m.ImageSize}
	for i := range 3 {
		spec.Mean[i], spec.Std[i] = float32(m.Mean[i]), float32(m.Std[i])
	}
	pixels := make([]float32, len(in.Images)*spec.ImageLen())
	if err := spec.Files(ctx, pixels, in.Images); err != nil {
		return nil, err
	}
	s, err := rt.Load(ctx, m.Path(dir, "image"))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	feeds := map[string]runner.Tensor{clip.InPixels: {Shape: spec.Shape(len(in.Images)), Float32: pixels}}
	if err := feedLearned(s, feeds, in.Learned, in.Warn); err != nil {
		return nil, err
	}
	res, err := s.Run(ctx, feeds)
	if err != nil {
		return nil, fmt.Errorf("image tower: %w", err)
	}
	return res, nil
}

func runTexts(ctx context.Context, rt *runner.Runtime, dir string, m *clip.Manifest, in TowerInputs) (map[string]runner.Tensor, error) {
	if m.Tokenizer.VocabSHA256 != tokenizer.VocabSHA256() {
		return nil, fmt.Errorf("%s was built for vocabulary %s, this build embeds %s", dir, m.Tokenizer.VocabSHA256, tokenizer.VocabSHA256())
	}
	tk, err := tokenizer.New()
	if err != nil {
		return nil, err
	}
	table, err := m.ReadTokenEmbedding(dir)
	if err != nil {
		return nil, err
	}
	embeds, eot, err := clip.TextInputs(tk, table, in.Texts)
	if err != nil {
		return nil, err
	}
	s, err := rt.Load(ctx, m.Path(dir, "text"))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	feeds := map[string]runner.Tensor{
		clip.InEmbeds:   {Shape: int64s(embeds.Shape), Float32: embeds.Data},
		clip.InEOTIndex: {Shape: []int64{int64(len(eot))}, Int64: eot},
	}
	if err := feedLearned(s, feeds, in.Learned, in.Warn); err != nil {
		return nil, err
	}
	res, err := s.Run(ctx, feeds)
	if err != nil {
		return nil, fmt.Errorf("text tower: %w", err)
	}
	return res, nil
}
