package checkpoints

import (
	"archive/zip"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/dapobench/dapobench/clip"
)

// component is one state dict of an official checkpoint.
type component struct {
	// names are the accepted top-level keys: DAPO's trainer writes
	// prompt_learner, visual_prompt and linear_adapter, while its test script
	// reads *_state_dict first (docs/methods.md#dapo-checkpoint).
	names []string
	// sources map keys inside the state dict to canonical tensors.
	sources []source
	// ignored are documented unused keys: exact names, or prefixes
	// ending in ".".
	ignored []string
}

// source is one official tensor and where it goes.
type source struct {
	key  string
	want []int
	dst  string
	// slot is the index along dst's first axis for tensors stacked from
	// per-layer lists; -1 when the tensor is the whole of dst, possibly
	// with unit axes dropped.
	slot int
}

// layout is the state dicts a scheme's checkpoint must hold for d.
func layout(d Dims) []component {
	if d.Scheme == AdaCLIP {
		return adaclipLayout(d)
	}
	if LinearOnly(d.Scheme) {
		// {'trainable_linearlayer': LinearLayer.state_dict()}, fc.{i} one
		// nn.Linear per feature layer (docs/methods.md#aprilgan-checkpoint).
		c := component{names: []string{"trainable_linearlayer"}}
		for i := range d.Adapters {
			fc := "fc." + strconv.Itoa(i)
			c.sources = append(c.sources,
				source{fc + ".weight", []int{d.EmbedDim, d.VisionWidth}, AdapterWeight(i), -1},
				source{fc + ".bias", []int{d.EmbedDim}, AdapterBias(i), -1})
		}
		return []component{c}
	}
	if d.Scheme == AnomalyCLIP {
		ctx := []int{1, 1, d.CtxTokens, d.TextWidth} // n_cls × n_templates × n_ctx × width
		c := component{
			names: []string{"prompt_learner"},
			sources: []source{
				// ctx_pos is the normal prompt "X…X object.", ctx_neg the
				// abnormal "X…X damaged object." (docs/methods.md#anomalyclip-prompts).
				{"ctx_pos", ctx, NormalCtx, -1},
				{"ctx_neg", slices.Clone(ctx), AbnormalCtx, -1},
			},
			// The projections exist but are never called; the prompt
			// buffers are rebuilt from the tokenizer and the model's
			// token-embedding table (docs/methods.md#anomalyclip-unused-projections,
			// docs/methods.md#clip-token-embedding).
			ignored: []string{"compound_prompt_projections.",
				"token_prefix_pos", "token_prefix_neg", "token_suffix_pos", "token_suffix_neg",
				"tokenized_prompts_pos", "tokenized_prompts_neg"},
		}
		for i := range d.TextDepth {
			c.sources = append(c.sources, source{"compound_prompts_text." + strconv.Itoa(i), []int{d.DeepTokens, d.TextWidth}, TextDeep, i})
		}
		return []component{c}
	}
	ctx := []int{d.Groups, d.CtxTokens, d.TextWidth}
	prompt := component{
		names: []string{"prompt_learner", "prompt_learner_state_dict"},
		sources: []source{
			{"learnable_normal_tokens", ctx, NormalCtx, -1},
			{"learnable_abnormal_tokens", slices.Clone(ctx), AbnormalCtx, -1},
		},
		// meta_net is saved but unused: its call in
		// LearnablePrompt.forward is commented out (docs/methods.md#dapo-meta-net).
		ignored: []string{"meta_net."},
	}
	for i := range d.TextDepth {
		prompt.sources = append(prompt.sources, source{"learnable_layer_tokens." + strconv.Itoa(i), []int{d.DeepTokens, d.TextWidth}, TextDeep, i})
	}
	visual := component{
		names:   []string{"visual_prompt", "visual_prompt_state_dict"},
		sources: []source{{"learnable_visual_tokens", []int{d.VisualDepth, d.DeepTokens, d.VisionWidth}, VisualPrompts, -1}},
	}
	adapter := component{names: []string{"linear_adapter", "trainable_adapter_state_dict"}}
	for i := range d.Adapters {
		fc := "fc." + strconv.Itoa(i)
		adapter.sources = append(adapter.sources,
			source{fc + ".weight", []int{d.EmbedDim, d.VisionWidth}, AdapterWeight(i), -1},
			source{fc + ".bias", []int{d.EmbedDim}, AdapterBias(i), -1})
	}
	return []component{prompt, visual, adapter}
}

// Import reads an official training checkpoint of a scheme (DAPO,
// AnomalyCLIP, AdaCLIP, APRIL-GAN or MultiADS; a torch zip .pth as
// torch.save writes it) and returns its
// learned tensors under the canonical names, checked against m (nil: the
// official ViT-L/14@336px sizes).
//
// Every tensor of the scheme's state dicts must be present with its
// exact shape; a key inside them that is neither used nor documented as
// unused (DAPO's meta_net, AnomalyCLIP's compound_prompt_projections and
// prompt buffers) is an error. Other top-level entries (epoch,
// optimizer_state_dict, train_loss, …) are training state and ignored.
func Import(path, scheme string, m *clip.Manifest) (*Learned, error) {
	d, err := DimsOf(scheme, m)
	if err != nil {
		return nil, err
	}
	if err := checkArchive(path); err != nil {
		return nil, err
	}
	ts, err := clip.ReadTensors(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: import %s: %w", scheme, err)
	}
	sum, err := clip.FileSHA256(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: import %s: %w", scheme, err)
	}
	tensors, err := extract(ts, d)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	return &Learned{Scheme: scheme, Trained: true, Source: filepath.Base(path), SourceSHA256: sum, Tensors: tensors}, nil
}

// checkArchive gives clear errors for two zip files the checkpoint
// reader would misread: a damaged or truncated archive, and a torch.jit
// archive, which holds code and no state dicts. Files that are not zip
// archives are left to the reader.
func checkArchive(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	defer f.Close()
	var head [4]byte
	if _, err := io.ReadFull(f, head[:]); err != nil || string(head[:]) != "PK\x03\x04" {
		return nil
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	z, err := zip.NewReader(f, st.Size())
	if err != nil {
		return fmt.Errorf("checkpoints: %s: a damaged zip archive (truncated download?): %w", file, err)
	}
	for _, e := range z.File {
		if path.Base(e.Name) == "constants.pkl" {
			return fmt.Errorf("checkpoints: %s: a TorchScript archive (torch.jit.save), not a training checkpoint: want the torch.save dict of state dicts that train.py writes", file)
		}
	}
	return nil
}

// extract maps the flattened checkpoint ts ("prompt_learner.ctx_pos", …)
// to canonical tensors, collecting every problem into one error.
func extract(ts map[string]clip.Tensor, d Dims) (map[string]clip.Tensor, error) {
	out := map[string]clip.Tensor{}
	for name, shape := range d.Shapes() {
		out[name] = clip.NewTensor(shape...)
	}
	var p problems
	for _, c := range layout(d) {
		prefix, err := statePrefix(ts, c.names)
		if err != nil {
			p.add(problem{kind: noStateDict, key: c.names[0], text: err.Error()})
			continue
		}
		seen := map[string]bool{}
		for _, s := range c.sources {
			key := prefix + s.key
			seen[key] = true
			t, ok := ts[key]
			switch {
			case !ok:
				p.add(problem{kind: missingTensor, key: key, want: s.want})
				continue
			case !slices.Equal(t.Shape, s.want):
				p.add(problem{kind: wrongShape, key: key, got: t.Shape, want: s.want})
				continue
			}
			off := 0
			if s.slot >= 0 {
				off = s.slot * len(t.Data)
			}
			copy(out[s.dst].Data[off:], t.Data)
		}
		for _, key := range slices.Sorted(maps.Keys(ts)) {
			if strings.HasPrefix(key, prefix) && !seen[key] && !ignorable(strings.TrimPrefix(key, prefix), c.ignored) {
				p.add(problem{kind: unknownTensor, key: key, got: ts[key].Shape})
			}
		}
	}
	if err := p.err(d); err != nil {
		return nil, fmt.Errorf("%w%s", err, hint(ts, d.Scheme))
	}
	return out, nil
}

// statePrefix finds which spelling of a state dict ts holds and returns
// its key prefix ("prompt_learner.").
func statePrefix(ts map[string]clip.Tensor, names []string) (string, error) {
	var found []string
	for _, n := range names {
		for k := range ts {
			if strings.HasPrefix(k, n+".") {
				found = append(found, n)
				break
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0] + ".", nil
	case 0:
		return "", fmt.Errorf("no %s state dict with tensors (top-level entries with tensors: %s)",
			strings.Join(quoteAll(names), " or "), strings.Join(quoteAll(topLevel(ts)), ", "))
	}
	return "", fmt.Errorf("both %s are present; want one spelling", strings.Join(quoteAll(found), " and "))
}

func ignorable(key string, ignored []string) bool {
	for _, p := range ignored {
		if key == p || strings.HasSuffix(p, ".") && strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// hint suggests the other scheme when ts holds its characteristic tensor.
func hint(ts map[string]clip.Tensor, scheme string) string {
	for k := range ts {
		switch {
		case scheme == DAPO && strings.HasSuffix(k, ".ctx_pos"):
			return " (it looks like an AnomalyCLIP checkpoint: scheme anomalyclip)"
		case scheme == AnomalyCLIP && strings.HasSuffix(k, ".learnable_normal_tokens"):
			return " (it looks like a DAPO checkpoint: scheme dapo)"
		case !LinearOnly(scheme) && strings.HasPrefix(k, "trainable_linearlayer."):
			return " (it looks like an APRIL-GAN or MultiADS checkpoint: scheme aprilgan or multiads)"
		}
	}
	return ""
}

func topLevel(ts map[string]clip.Tensor) []string {
	set := map[string]bool{}
	for k := range ts {
		top, _, _ := strings.Cut(k, ".")
		set[top] = true
	}
	return slices.Sorted(maps.Keys(set))
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strconv.Quote(v)
	}
	return out
}
