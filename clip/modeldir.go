package clip

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/dapobench/dapobench/clip/safetensors"
	"github.com/dapobench/dapobench/clip/tokenizer"
	"github.com/dapobench/dapobench/internal/mapfile"
	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/internal/rawfloat"
	"github.com/dapobench/dapobench/onnx/graph"

	"github.com/dapobench/dapobench/internal/atomicfile"
)

// ManifestSchema identifies model.json files written by this package.
const ManifestSchema = "dapobench/model/v1"

// The files of a model directory.
const (
	ManifestFile       = "model.json"
	ImageFile          = "image.onnx"
	TextFile           = "text.onnx"
	WindowFile         = "window.onnx"
	TokenEmbeddingFile = "token_embedding.safetensors"
	// TokenEmbeddingKey names the [vocab, text_width] table in TokenEmbeddingFile.
	TokenEmbeddingKey = "token_embedding.weight"
)

// externalThreshold is the initializer size above which a graph stores its
// weights as ONNX external data: protobuf messages cannot exceed 2 GiB and
// ViT-L's image tower comes close (docs/methods.md#clip-large-models), and
// onnxruntime maps an external-data file where it copies embedded weights
// into fresh memory, whose page faults dominate loading a ViT-B/16 tower
// (docs/README.md#perf-external-data).
const externalThreshold = 64 << 20

// OpenAI's image normalisation, used by every method here
// (docs/methods.md#clip-normalisation): open_clip's ViT-B-16-plus-240 uses the same numbers.
var (
	clipMean = [3]float64{0.48145466, 0.4578275, 0.40821073}
	clipStd  = [3]float64{0.26862954, 0.26130258, 0.27577711}
)

// Manifest is model.json: everything needed to use a model directory
// without opening its graphs.
type Manifest struct {
	Schema    string  `json:"schema"`
	Arch      Arch    `json:"arch"`
	Variant   Variant `json:"variant"`
	ImageSize int     `json:"image_size"`
	// Grid is the patch grid side at ImageSize.
	Grid int        `json:"grid"`
	Mean [3]float64 `json:"mean"`
	Std  [3]float64 `json:"std"`
	// FeatureLayers are the 1-indexed blocks with a patch_<layer> output.
	FeatureLayers []int `json:"feature_layers"`
	// PatchTokens is the number of tokens of each patch output: 1+G² with
	// the class token first, or G² for DAPO and AdaCLIP, which drop it
	// (docs/methods.md#dapo-patch-tokens).
	PatchTokens int  `json:"patch_tokens"`
	PatchCLS    bool `json:"patch_cls"`
	// PatchDim is the width of the patch outputs: vision_width, or
	// embed_dim for AnomalyCLIP's and AdaCLIP's projected tokens.
	PatchDim  int       `json:"patch_dim"`
	EmbedDim  int       `json:"embed_dim"`
	PosResize PosResize `json:"pos_resize"`
	DType     string    `json:"dtype"`
	// Deep prompt inputs: [depth, DeepTokens, width]; depth 0 when absent.
	// AdaCLIP's are per-depth inputs of PromptTokens = 5 tokens.
	VisualPromptDepth int `json:"visual_prompt_depth"`
	TextPromptDepth   int `json:"text_prompt_depth"`
	PromptTokens      int `json:"prompt_tokens"`
	// DPAMLayers is the number of final vision blocks with AnomalyCLIP's V-V path.
	DPAMLayers int               `json:"dpam_layers"`
	Tokenizer  TokenizerInfo     `json:"tokenizer"`
	Weights    SourceInfo        `json:"weights"`
	Files      map[string]string `json:"files"`
}

// TokenizerInfo pins the vocabulary prompts must be tokenized with.
type TokenizerInfo struct {
	VocabSHA256   string `json:"vocab_sha256"`
	ContextLength int    `json:"context_length"`
	SOT           int    `json:"sot"`
	EOT           int    `json:"eot"`
}

// SourceInfo names the weights a directory was built from.
type SourceInfo struct {
	File   string `json:"file,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// Seed is set for the tiny seeded models.
	Seed *uint64 `json:"seed,omitempty"`
}

// Build writes a model directory: the graphs of the variant, the
// token-embedding table, and model.json last, so that a directory with a
// model.json is complete. Weights are checked against the architecture
// first; a missing or mis-shaped tensor is an error naming it. w is left
// as it was. The
// activation is the one the variant's official code runs: AdaCLIP's
// towers run exact GELU, as its code builds them (adaclipArch); APRIL-GAN's
// and MultiADS' follow their factory (FactoryArch). model.json records it.
func Build(ctx context.Context, dir string, a Arch, w Weights, o Options, src SourceInfo) (*Manifest, error) {
	return build(ctx, dir, a, w, o, src, nil)
}

// BuildFile reads CLIP weights from a file (ReadWeights; a safetensors
// file is mapped, not copied) and builds a model directory from them,
// recording the file's name and sha256. It holds the weights once and no
// copy of a graph's initializers: the large towers
// stream them to their external-data files, and the image tower's weights
// are released before the text tower is built
// (docs/README.md#build-memory). The file is hashed on another core while
// the weights are read and the graphs built.
func BuildFile(ctx context.Context, dir string, a Arch, path string, o Options) (*Manifest, error) {
	type digest struct {
		sum string
		err error
	}
	hashed := make(chan digest, 1)
	go func() {
		sum, err := FileSHA256(path)
		hashed <- digest{sum, err}
	}()
	// The channel holds the digest, so the goroutine never waits for a
	// reader: a build that fails early leaves nothing behind.
	sum := func() (string, error) { d := <-hashed; return d.sum, d.err }
	w, mapped, err := mapWeights(path)
	if err != nil {
		return nil, err
	}
	defer mapped.release()
	return build(ctx, dir, a, w, o, SourceInfo{File: filepath.Base(path)}, &owned{sum: sum, drop: mapped.drop})
}

// owned is what build may do with weights it owns.
type owned struct {
	// sum, when set, gives the weights file's sha256 for model.json; it is
	// awaited only before model.json is written.
	sum func() (string, error)
	// drop, when set, gives a deleted tensor's memory back to the system
	// (mapped weights); otherwise the garbage collector does.
	drop func([]float32)
}

// build is Build; with own it consumes w, deleting tensors once no graph
// still to build needs them.
func build(ctx context.Context, dir string, a Arch, w Weights, o Options, src SourceInfo, own *owned) (*Manifest, error) {
	if o.Variant == AdaCLIP {
		a = adaclipArch(a)
	}
	a = FactoryArch(o.Variant, a, o.ImageSize)
	s, err := resolve(a, o)
	if err != nil {
		return nil, err
	}
	if err := w.Check(a); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	os.Remove(filepath.Join(dir, ManifestFile)) // incomplete until rewritten
	m := manifest(a, s, src)
	type job struct {
		file   string
		visual bool // built from the visual.* weights
		build  func(s spec) (*pb.ModelProto, error)
	}
	// The image-side graphs first, so that a consuming build can drop
	// the vision weights before the text tower.
	jobs := []job{{ImageFile, true, func(s spec) (*pb.ModelProto, error) { return imageGraph(a, w, s) }}}
	if s.variant == WinCLIP {
		jobs = append(jobs, job{WindowFile, true, func(s spec) (*pb.ModelProto, error) { return windowGraph(a, w, s), nil }})
		m.Files["window"] = WindowFile
	}
	jobs = append(jobs, job{TextFile, false, func(s spec) (*pb.ModelProto, error) { return textGraph(a, w, s), nil }})
	if s.variant == AdaCLIP {
		jobs[0].build = func(s spec) (*pb.ModelProto, error) { return adaclipImageGraph(a, w, s) }
		jobs[len(jobs)-1].build = func(s spec) (*pb.ModelProto, error) { return adaclipTextGraph(a, w, s), nil }
	}
	for i, j := range jobs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("clip: build %s: %w", dir, err)
		}
		path := filepath.Join(dir, j.file)
		os.Remove(path + ".data")
		if err := writeGraph(path, o.External || towerBytes(w, j.visual, s) > externalThreshold, s, j.build); err != nil {
			return nil, fmt.Errorf("clip: build %s: %w", j.file, err)
		}
		if own != nil && j.visual && (i+1 == len(jobs) || !jobs[i+1].visual) {
			for k, t := range w {
				if strings.HasPrefix(k, "visual.") {
					if own.drop != nil {
						own.drop(t.Data)
					}
					delete(w, k)
				}
			}
			runtime.GC()
			debug.FreeOSMemory()
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("clip: build %s: %w", dir, err)
	}
	te := w["token_embedding.weight"]
	if err := safetensors.WriteFile(filepath.Join(dir, TokenEmbeddingFile),
		[]safetensors.Tensor{safetensors.F32(TokenEmbeddingKey, te.Shape, te.Data)}, nil); err != nil {
		return nil, err
	}
	if own != nil && own.sum != nil {
		if m.Weights.SHA256, err = own.sum(); err != nil {
			return nil, err
		}
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("clip: model.json: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, ManifestFile), append(js, '\n')); err != nil {
		return nil, err
	}
	return m, nil
}

// writeGraph builds a graph and writes it to path. An external graph
// streams its initializers to path.data while it is built (graph.External),
// so that no copy of its weights is held; the file's bytes are those
// graph.WriteFile(external) would write.
func writeGraph(path string, external bool, s spec, build func(s spec) (*pb.ModelProto, error)) error {
	if !external {
		model, err := build(s)
		if err != nil {
			return err
		}
		return graph.WriteFile(path, model, false)
	}
	var model *pb.ModelProto
	dataName := filepath.Base(path) + ".data"
	err := atomicfile.Write(path+".data", func(w io.Writer) error {
		x := graph.NewExternal(w, dataName)
		s.ext = x
		var err error
		if model, err = build(s); err != nil {
			return err
		}
		return x.Err()
	})
	if err != nil {
		return err
	}
	return graph.WriteFile(path, model, false)
}

// towerBytes is the size of one side's weights (the visual.* tensors, or
// the others but the token table) in the compute type: the size of its
// initializers up to the positional embedding's resize and the small
// constants, to decide before building whether it goes to external data.
func towerBytes(w Weights, visual bool, s spec) int64 {
	elem := int64(4)
	if s.float == graph.Float16 {
		elem = 2
	}
	var n int64
	for k, t := range w {
		if strings.HasPrefix(k, "visual.") == visual && k != "token_embedding.weight" {
			n += int64(len(t.Data)) * elem
		}
	}
	return n
}

func manifest(a Arch, s spec, src SourceInfo) *Manifest {
	g := a.Grid(s.imageSize)
	m := &Manifest{
		Schema: ManifestSchema, Arch: a, Variant: s.variant, ImageSize: s.imageSize, Grid: g,
		Mean: clipMean, Std: clipStd, FeatureLayers: append([]int{}, s.featureLayers...),
		PatchTokens: g*g + 1, PatchCLS: true, PatchDim: a.VisionWidth, EmbedDim: a.EmbedDim,
		PosResize: s.posResize, DType: s.float.String(),
		VisualPromptDepth: s.visualDepth, TextPromptDepth: s.textDepth, DPAMLayers: s.dpamLayers,
		Tokenizer: TokenizerInfo{VocabSHA256: tokenizer.VocabSHA256(), ContextLength: a.ContextLength,
			SOT: tokenizer.SOT, EOT: tokenizer.EOT},
		Weights: src,
		Files:   map[string]string{"image": ImageFile, "text": TextFile, "token_embedding": TokenEmbeddingFile},
	}
	if m.FeatureLayers == nil {
		m.FeatureLayers = []int{}
	}
	if s.visualDepth > 0 || s.textDepth > 0 {
		m.PromptTokens = DeepTokens
	}
	switch s.variant {
	case DAPO:
		m.PatchTokens, m.PatchCLS = g*g, false
	case AnomalyCLIP:
		m.PatchDim = a.EmbedDim
	case AdaCLIP:
		// projected patch tokens without CLS (docs/methods.md#adaclip-towers)
		m.PatchTokens, m.PatchCLS, m.PatchDim = g*g, false, a.EmbedDim
		m.PromptTokens = AdaCLIPPromptTokens
	}
	return m
}

// ParseManifest decodes and checks model.json content.
func ParseManifest(data []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("clip: model.json: %w", err)
	}
	if m.Schema != ManifestSchema {
		return nil, fmt.Errorf("clip: model.json: schema %q, want %q", m.Schema, ManifestSchema)
	}
	if err := m.Arch.Validate(); err != nil {
		return nil, fmt.Errorf("clip: model.json: %w", err)
	}
	s, err := resolve(m.Arch, Options{Variant: m.Variant, ImageSize: m.ImageSize, FeatureLayers: m.FeatureLayers, PosResize: m.PosResize})
	if err != nil {
		return nil, fmt.Errorf("clip: model.json: %w", err)
	}
	want := manifest(m.Arch, s, m.Weights)
	if m.Grid != want.Grid || m.PatchTokens != want.PatchTokens || m.PatchCLS != want.PatchCLS ||
		m.PatchDim != want.PatchDim || m.VisualPromptDepth != want.VisualPromptDepth ||
		m.TextPromptDepth != want.TextPromptDepth || m.DPAMLayers != want.DPAMLayers {
		return nil, fmt.Errorf("clip: model.json: derived fields (grid, patch_tokens, patch_cls, patch_dim, prompt depths, dpam_layers) disagree with arch %q, variant %q, image size %d", m.Arch.Name, m.Variant, m.ImageSize)
	}
	if m.DType != "float32" && m.DType != "float16" {
		return nil, fmt.Errorf("clip: model.json: dtype %q, want float32 or float16", m.DType)
	}
	for _, k := range []string{"image", "text", "token_embedding"} {
		if f := m.Files[k]; f == "" || filepath.Base(f) != f {
			return nil, fmt.Errorf("clip: model.json: files.%s = %q, want a file name in the directory", k, f)
		}
	}
	if m.Variant == WinCLIP && (m.Files["window"] == "" || filepath.Base(m.Files["window"]) != m.Files["window"]) {
		return nil, fmt.Errorf("clip: model.json: files.window missing for variant winclip")
	}
	return &m, nil
}

// ReadManifest reads dir/model.json.
func ReadManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("clip: model directory: %w", err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
	}
	return m, nil
}

// Path is the path of one of the manifest's files ("image", "text",
// "window", "token_embedding") inside dir.
func (m *Manifest) Path(dir, key string) string { return filepath.Join(dir, m.Files[key]) }

// ReadTokenEmbedding reads the [vocab, text_width] token-embedding table
// of a model directory.
func (m *Manifest) ReadTokenEmbedding(dir string) (Tensor, error) {
	t, release, err := m.MapTokenEmbedding(dir)
	if err != nil {
		return Tensor{}, err
	}
	defer release()
	return Tensor{Shape: t.Shape, Data: slices.Clone(t.Data)}, nil
}

// MapTokenEmbedding is ReadTokenEmbedding without a copy: the file is
// mapped and a float32 table is used where it lies, so that only the rows
// prompts use are ever read into memory, and the table costs the Go heap
// nothing (it was most of a run's live heap). The tensor is read-only and
// must not be used after release.
func (m *Manifest) MapTokenEmbedding(dir string) (t Tensor, release func(), err error) {
	path := m.Path(dir, "token_embedding")
	b, unmap, err := mapfile.Map(path, false)
	if err != nil {
		return Tensor{}, nil, fmt.Errorf("clip: %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			unmap()
		}
	}()
	f, err := safetensors.Parse(b)
	if err != nil {
		return Tensor{}, nil, fmt.Errorf("clip: %s: %w", path, err)
	}
	st, ok := f.Get(TokenEmbeddingKey)
	if !ok {
		return Tensor{}, nil, fmt.Errorf("clip: %s: no tensor %q", path, TokenEmbeddingKey)
	}
	if len(st.Shape) != 2 || st.Shape[0] != m.Arch.VocabSize || st.Shape[1] != m.Arch.TextWidth {
		return Tensor{}, nil, fmt.Errorf("clip: %s: %s has shape %v, want [%d %d]", path, TokenEmbeddingKey, st.Shape, m.Arch.VocabSize, m.Arch.TextWidth)
	}
	if st.DType == "F32" {
		if v, ok := rawfloat.Floats(st.Data); ok {
			return Tensor{Shape: st.Shape, Data: v}, unmap, nil
		}
	}
	v, err := st.Float32()
	if err != nil {
		return Tensor{}, nil, fmt.Errorf("clip: %s: %w", path, err)
	}
	unmap()
	return Tensor{Shape: st.Shape, Data: v}, func() {}, nil
}

func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	return nil
}

// BuildTiny writes the tiny seeded model of a variant (TinyArch,
// TinyWeights) at its native image size unless o.ImageSize says otherwise.
func BuildTiny(ctx context.Context, dir string, seed uint64, o Options) (*Manifest, error) {
	return BuildSeeded(ctx, dir, TinyArch(o.Variant), seed, o)
}

// BuildSeeded writes a model directory of architecture a with seeded
// random weights (TinyWeights): the tiny models, or untrained models of a
// real backbone's sizes, whose cost (time, memory) is the real one.
func BuildSeeded(ctx context.Context, dir string, a Arch, seed uint64, o Options) (*Manifest, error) {
	return build(ctx, dir, a, TinyWeights(a, seed), o, SourceInfo{Seed: &seed}, &owned{})
}
