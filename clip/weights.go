package clip

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"github.com/dapobench/dapobench/clip/safetensors"
	"github.com/dapobench/dapobench/internal/mapfile"
	"github.com/dapobench/dapobench/internal/rawfloat"
)

// Tensor is a float32 tensor in C order.
type Tensor struct {
	Shape []int
	Data  []float32
}

// NewTensor allocates a zero tensor.
func NewTensor(shape ...int) Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return Tensor{Shape: shape, Data: make([]float32, n)}
}

// Weights are CLIP tensors under OpenAI / open_clip key names
// (visual.conv1.weight, transformer.resblocks.0.attn.in_proj_weight, …).
type Weights map[string]Tensor

// ErrWeights is wrapped by every missing- or mis-shaped-tensor error.
var ErrWeights = errors.New("weights do not match the architecture")

// shapes lists every tensor the towers read, with its expected shape.
func (a Arch) shapes() map[string][]int {
	m := map[string][]int{}
	g := a.Grid(a.ImageSize)
	vw, tw := a.VisionWidth, a.TextWidth
	m["visual.conv1.weight"] = []int{vw, 3, a.PatchSize, a.PatchSize}
	m["visual.class_embedding"] = []int{vw}
	m["visual.positional_embedding"] = []int{g*g + 1, vw}
	m["visual.ln_pre.weight"] = []int{vw}
	m["visual.ln_pre.bias"] = []int{vw}
	m["visual.ln_post.weight"] = []int{vw}
	m["visual.ln_post.bias"] = []int{vw}
	m["visual.proj"] = []int{vw, a.EmbedDim}
	blocks := func(prefix string, layers, w int) {
		for i := range layers {
			p := prefix + "transformer.resblocks." + strconv.Itoa(i) + "."
			m[p+"ln_1.weight"] = []int{w}
			m[p+"ln_1.bias"] = []int{w}
			m[p+"attn.in_proj_weight"] = []int{3 * w, w}
			m[p+"attn.in_proj_bias"] = []int{3 * w}
			m[p+"attn.out_proj.weight"] = []int{w, w}
			m[p+"attn.out_proj.bias"] = []int{w}
			m[p+"ln_2.weight"] = []int{w}
			m[p+"ln_2.bias"] = []int{w}
			m[p+"mlp.c_fc.weight"] = []int{4 * w, w}
			m[p+"mlp.c_fc.bias"] = []int{4 * w}
			m[p+"mlp.c_proj.weight"] = []int{w, 4 * w}
			m[p+"mlp.c_proj.bias"] = []int{w}
		}
	}
	blocks("visual.", a.VisionLayers, vw)
	blocks("", a.TextLayers, tw)
	m["token_embedding.weight"] = []int{a.VocabSize, tw}
	m["positional_embedding"] = []int{a.ContextLength, tw}
	m["ln_final.weight"] = []int{tw}
	m["ln_final.bias"] = []int{tw}
	m["text_projection"] = []int{tw, a.EmbedDim}
	return m
}

// Check reports every tensor of a that w lacks or holds with another
// shape, naming the key and both shapes.
func (w Weights) Check(a Arch) error {
	want := a.shapes()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []string
	for _, k := range keys {
		t, ok := w[k]
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("missing tensor %q (want shape %v)", k, want[k]))
		case !slices.Equal(t.Shape, want[k]):
			errs = append(errs, fmt.Sprintf("tensor %q has shape %v, want %v", k, t.Shape, want[k]))
		case len(t.Data) != numel(t.Shape):
			errs = append(errs, fmt.Sprintf("tensor %q has %d values for shape %v", k, len(t.Data), t.Shape))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	more := ""
	if len(errs) > 5 {
		more = fmt.Sprintf("; and %d more", len(errs)-5)
		errs = errs[:5]
	}
	return fmt.Errorf("%w %s: %s%s", ErrWeights, a.Name, strings.Join(errs, "; "), more)
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// zipMagic starts a torch zip checkpoint.
var zipMagic = []byte("PK\x03\x04")

// ReadTensors reads every floating-point tensor of a safetensors file or
// a torch .pt/.pth zip checkpoint (fp32, fp16 or bf16). Nested dicts of a
// checkpoint become dotted names ({"prompt_learner": {"ctx_pos": …}} →
// "prompt_learner.ctx_pos"); other values are skipped.
func ReadTensors(path string) (map[string]Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	var head [4]byte
	_, err = io.ReadFull(f, head[:])
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("clip: %s: too short to be a weights file: %w", path, err)
	}
	if bytes.Equal(head[:], zipMagic) {
		return readTorch(path)
	}
	out := map[string]Tensor{}
	err = safetensors.ReadFloat32(path, nil, func(name string, shape []int, v []float32) error {
		out[name] = Tensor{Shape: shape, Data: v}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("clip: %s is neither a torch zip checkpoint nor safetensors: %w", path, err)
	}
	return out, nil
}

// mapWeights reads CLIP weights for a build as ReadWeights does, but a
// safetensors file is mapped and its aligned float32 tensors are used
// where they lie: no copy and no fresh memory, whose page faults cost more
// than the build's arithmetic (docs/README.md#build-memory). Other dtypes
// are converted; anything that is not a mappable safetensors file goes
// through ReadWeights, with its errors. The tensors are read-only and must
// not be used after m.release.
func mapWeights(path string) (w Weights, m mapping, err error) {
	b, unmap, err := mapfile.Map(path, true)
	if err == nil && len(b) >= 4 && !bytes.Equal(b[:4], zipMagic) {
		if f, perr := safetensors.Parse(b); perr == nil {
			ts := make(map[string]Tensor, len(f.Tensors))
			for _, t := range f.Tensors {
				v, ok := []float32(nil), false
				if t.DType == "F32" {
					v, ok = rawfloat.Floats(t.Data)
				}
				if !ok {
					if v, err = t.Float32(); err != nil {
						continue // not floating point, as ReadWeights skips it
					}
				}
				ts[t.Name] = Tensor{Shape: t.Shape, Data: v}
			}
			if w, err = Canonical(ts); err != nil {
				unmap()
				return nil, mapping{}, fmt.Errorf("clip: %s: %w", path, err)
			}
			return w, mapping{b: b, unmap: unmap}, nil
		}
	}
	if unmap != nil {
		unmap()
	}
	w, err = ReadWeights(path)
	return w, mapping{}, err
}

// mapping is a mapped weights file; its zero value is none.
type mapping struct {
	b     []byte
	unmap func()
}

func (m mapping) release() {
	if m.unmap != nil {
		m.unmap()
	}
}

// drop gives the pages of a tensor that lies in the mapping back to the
// system, so that a build's resident memory falls as it consumes the
// weights; the file is unchanged.
func (m mapping) drop(v []float32) {
	raw, ok := rawfloat.Bytes(v)
	if !ok || len(raw) == 0 || len(m.b) == 0 {
		return
	}
	lo := uintptr(unsafe.Pointer(&raw[0])) - uintptr(unsafe.Pointer(&m.b[0]))
	if lo >= uintptr(len(m.b)) || lo+uintptr(len(raw)) > uintptr(len(m.b)) {
		return // converted, not mapped
	}
	mapfile.Release(m.b[lo : lo+uintptr(len(raw))])
}

// ReadWeights reads CLIP weights from a safetensors or torch file, with
// OpenAI/open_clip or Hugging Face CLIPModel key names, and returns them
// under OpenAI names.
func ReadWeights(path string) (Weights, error) {
	ts, err := ReadTensors(path)
	if err != nil {
		return nil, err
	}
	w, err := Canonical(ts)
	if err != nil {
		return nil, fmt.Errorf("clip: %s: %w", path, err)
	}
	return w, nil
}

// Canonical renames a state dict to OpenAI key names: it drops the
// "state_dict." and "module." prefixes of training checkpoints, open_clip's
// "text." tower prefix, and maps Hugging Face CLIPModel names.
func Canonical(ts map[string]Tensor) (Weights, error) {
	w := Weights{}
	hf := false
	for k := range ts {
		if strings.HasPrefix(k, "vision_model.") || strings.HasPrefix(k, "text_model.") {
			hf = true
		}
	}
	for k, t := range ts {
		k = strings.TrimPrefix(k, "state_dict.")
		k = strings.TrimPrefix(k, "module.")
		if !hf {
			k = strings.TrimPrefix(k, "text.")
			w[k] = t
		} else {
			w[k] = t
		}
	}
	if hf {
		return fromHF(w)
	}
	return w, nil
}

// hfRenames maps Hugging Face CLIPModel name pieces to OpenAI ones, applied
// in order.
var hfRenames = []struct{ from, to string }{
	{"vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"},
	{"vision_model.embeddings.class_embedding", "visual.class_embedding"},
	{"vision_model.embeddings.position_embedding.weight", "visual.positional_embedding"},
	{"vision_model.pre_layrnorm.", "visual.ln_pre."},
	{"vision_model.post_layernorm.", "visual.ln_post."},
	{"vision_model.encoder.layers.", "visual.transformer.resblocks."},
	{"text_model.embeddings.token_embedding.weight", "token_embedding.weight"},
	{"text_model.embeddings.position_embedding.weight", "positional_embedding"},
	{"text_model.final_layer_norm.", "ln_final."},
	{"text_model.encoder.layers.", "transformer.resblocks."},
	{".self_attn.out_proj.", ".attn.out_proj."},
	{".layer_norm1.", ".ln_1."},
	{".layer_norm2.", ".ln_2."},
	{".mlp.fc1.", ".mlp.c_fc."},
	{".mlp.fc2.", ".mlp.c_proj."},
}

func fromHF(in Weights) (Weights, error) {
	out := Weights{}
	qkv := map[string]map[string]Tensor{} // block prefix → "q.weight" … → tensor
	for k, t := range in {
		for _, r := range hfRenames {
			k = strings.Replace(k, r.from, r.to, 1)
		}
		switch {
		case k == "visual_projection.weight":
			out["visual.proj"] = transpose2(t)
		case k == "text_projection.weight":
			out["text_projection"] = transpose2(t)
		case strings.Contains(k, ".self_attn.") && (strings.Contains(k, "_proj.weight") || strings.Contains(k, "_proj.bias")):
			i := strings.Index(k, ".self_attn.")
			block, part := k[:i], k[i+len(".self_attn."):]
			if qkv[block] == nil {
				qkv[block] = map[string]Tensor{}
			}
			qkv[block][part] = t
		default:
			out[k] = t
		}
	}
	for block, parts := range qkv {
		for _, kind := range []string{"weight", "bias"} {
			var cat []float32
			var rows int
			var shape []int
			for _, p := range []string{"q", "k", "v"} {
				t, ok := parts[p+"_proj."+kind]
				if !ok {
					return nil, fmt.Errorf("%w: Hugging Face tensor %s.self_attn.%s_proj.%s missing", ErrWeights, block, p, kind)
				}
				if shape != nil && !slices.Equal(t.Shape, shape) {
					return nil, fmt.Errorf("%w: Hugging Face %s.self_attn.%s_proj.%s has shape %v, want %v", ErrWeights, block, p, kind, t.Shape, shape)
				}
				shape = t.Shape
				rows += t.Shape[0]
				cat = append(cat, t.Data...)
			}
			s := append([]int{rows}, shape[1:]...)
			name := block + ".attn.in_proj_weight"
			if kind == "bias" {
				name = block + ".attn.in_proj_bias"
			}
			out[name] = Tensor{Shape: s, Data: cat}
		}
	}
	return out, nil
}

func transpose2(t Tensor) Tensor {
	if len(t.Shape) != 2 {
		return t // Check reports the shape
	}
	r, c := t.Shape[0], t.Shape[1]
	out := NewTensor(c, r)
	for i := range r {
		for j := range c {
			out.Data[j*r+i] = t.Data[i*c+j]
		}
	}
	return out
}

// FileSHA256 is the hex sha256 of a file, recorded in model.json so that a
// model directory names the exact weights it was built from.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("clip: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("clip: %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// WriteSafetensors writes weights as F32 under their (OpenAI) names.
func (w Weights) WriteSafetensors(path string) error {
	var ts []safetensors.Tensor
	for k, t := range w {
		ts = append(ts, safetensors.F32(k, t.Shape, t.Data))
	}
	return safetensors.WriteFile(path, ts, map[string]string{"format": "pt"})
}
