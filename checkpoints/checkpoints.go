// Package checkpoints holds the learned tensors of the learned schemes,
// DAPO, AnomalyCLIP, AdaCLIP, APRIL-GAN and MultiADS, in one canonical
// safetensors layout that the schemes load. It imports them from the
// official training checkpoints (torch zip .pth; docs/methods.md#dapo-checkpoint,
// docs/methods.md#anomalyclip-checkpoint,
// docs/methods.md#aprilgan-checkpoint) and makes seeded
// untrained ones, initialised as the official code initialises them, for
// runs without a checkpoint.
//
// Canonical tensors (Dt, Dv, De: text width, vision width, embed dim):
//
//	scheme       tensor               shape            official name
//	dapo         normal_ctx           [E, l, Dt]       prompt_learner.learnable_normal_tokens
//	dapo         abnormal_ctx         [E, l, Dt]       prompt_learner.learnable_abnormal_tokens
//	dapo         text_deep            [depth, 4, Dt]   prompt_learner.learnable_layer_tokens.{i} stacked
//	dapo         visual_prompts       [depth, 4, Dv]   visual_prompt.learnable_visual_tokens
//	dapo         adapter.{i}.weight   [De, Dv]         linear_adapter.fc.{i}.weight
//	dapo         adapter.{i}.bias     [De]             linear_adapter.fc.{i}.bias
//	anomalyclip  normal_ctx           [12, Dt]         prompt_learner.ctx_pos
//	anomalyclip  abnormal_ctx         [12, Dt]         prompt_learner.ctx_neg
//	anomalyclip  text_deep            [depth, 4, Dt]   prompt_learner.compound_prompts_text.{i} stacked
//	aprilgan     adapter.{i}.weight   [De, Dv]         trainable_linearlayer.fc.{i}.weight
//	aprilgan     adapter.{i}.bias     [De]             trainable_linearlayer.fc.{i}.bias
//	multiads     (as aprilgan: the same LinearLayer and checkpoint format)
//
// with E = 10 prompt groups and l = 5 context tokens for DAPO. AdaCLIP's
// tensors keep their official names (adaclip.go). For ViT-L
// the text depth is 12 (DAPO) or 8 (AnomalyCLIP), the visual depth 24 and
// there are 4 adapters; a model directory's model.json gives the depths of
// smaller models.
package checkpoints

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/dapobench/dapobench/clip"
)

// The schemes with learned tensors.
const (
	DAPO        = "dapo"
	AnomalyCLIP = "anomalyclip"
	AdaCLIP     = "adaclip"
	// APRILGAN and MultiADS learn only a linear layer per feature layer
	// on the patch tokens (LinearLayer; docs/methods.md#aprilgan-linear).
	APRILGAN = "aprilgan"
	MultiADS = "multiads"
)

// Schemes lists the schemes with learned tensors.
func Schemes() []string { return []string{DAPO, AnomalyCLIP, AdaCLIP, APRILGAN, MultiADS} }

// LinearOnly reports whether a scheme's learned tensors are its linear
// layers alone, without prompts (APRIL-GAN, MultiADS).
func LinearOnly(scheme string) bool { return scheme == APRILGAN || scheme == MultiADS }

// Canonical tensor names; adapters are named by AdapterWeight and AdapterBias.
const (
	NormalCtx     = "normal_ctx"
	AbnormalCtx   = "abnormal_ctx"
	TextDeep      = "text_deep"
	VisualPrompts = "visual_prompts"
)

// AdapterWeight is the name of the weight of adapter i (DAPO's
// LinearAdapter fc.{i}, docs/methods.md#dapo-adapters).
func AdapterWeight(i int) string { return "adapter." + strconv.Itoa(i) + ".weight" }

// AdapterBias is the name of the bias of adapter i.
func AdapterBias(i int) string { return "adapter." + strconv.Itoa(i) + ".bias" }

// Prompt sizes of the official code.
const (
	// DAPOGroups is E, DAPO's prompt_count: every prompt is built 10
	// times, each with its own learned context
	// (docs/methods.md#dapo-hyperparameters).
	DAPOGroups = 10
	// DAPOContextTokens is l, DAPO's normal_token_cnt and
	// abnormal_token_cnt (docs/methods.md#dapo-hyperparameters).
	DAPOContextTokens = 5
	// AnomalyCLIPContextTokens is AnomalyCLIP's n_ctx, the learned "X"
	// tokens of its two prompts (docs/methods.md#anomalyclip-prompts).
	AnomalyCLIPContextTokens = 12
)

// officialArch is the backbone of both official schemes
// (docs/methods.md#clip-backbones); its sizes are expected when no model directory is given.
const officialArch = "ViT-L-14-336"

// ErrMismatch is wrapped by every error about missing, unknown or
// mis-shaped learned tensors.
var ErrMismatch = errors.New("learned tensors do not match")

// Learned is the learned prompt tensors of one scheme.
type Learned struct {
	// Scheme is DAPO or AnomalyCLIP.
	Scheme string
	// Trained is false for seeded initial tensors (Untrained): results
	// computed with them must say so.
	Trained bool
	// Source is the base name of the imported checkpoint, and
	// SourceSHA256 the hex sha256 of its bytes; both empty when untrained.
	Source       string
	SourceSHA256 string
	// Seed made the untrained tensors; 0 when trained.
	Seed uint64
	// Tensors are float32, under the canonical names.
	Tensors map[string]clip.Tensor
}

// Label says where the tensors come from, for reports: "trained
// (epoch_1.pth, sha256 0123abcd…)" or "untrained (seed 7)".
func (l *Learned) Label() string {
	if !l.Trained {
		return fmt.Sprintf("untrained (seed %d)", l.Seed)
	}
	sum := l.SourceSHA256
	if len(sum) > 12 {
		sum = sum[:12] + "…"
	}
	return fmt.Sprintf("trained (%s, sha256 %s)", l.Source, sum)
}

// Names lists the tensor names in sorted order.
func (l *Learned) Names() []string { return slices.Sorted(maps.Keys(l.Tensors)) }

// Dims are the sizes of a scheme's learned tensors.
type Dims struct {
	Scheme string
	// Groups is DAPO's E; 0 for AnomalyCLIP, whose contexts have no
	// group axis.
	Groups int
	// CtxTokens is the number of learned context tokens per prompt.
	CtxTokens int
	// DeepTokens is the number of deep prompt tokens per layer.
	DeepTokens int
	// TextDepth and VisualDepth count the deep prompt layers; Adapters
	// counts DAPO's linear adapters (one per feature layer).
	TextDepth, VisualDepth, Adapters int
	TextWidth, VisionWidth, EmbedDim int
	// Origin says where the sizes come from, for error messages.
	Origin string
}

// DimsOf gives the sizes a scheme's tensors must have for a model: the
// widths of m.Arch, its prompt depths and its feature layers. A nil m
// means the official ViT-L/14@336px sizes of the scheme's own code.
func DimsOf(scheme string, m *clip.Manifest) (Dims, error) {
	v, err := variant(scheme)
	if err != nil {
		return Dims{}, err
	}
	if m == nil {
		a, err := clip.Preset(officialArch)
		if err != nil {
			return Dims{}, fmt.Errorf("checkpoints: %w", err)
		}
		man := &clip.Manifest{
			Arch: a, Variant: v,
			TextPromptDepth:   clip.TextDeepDepth(v, a.TextLayers),
			VisualPromptDepth: clip.VisualDeepDepth(v, a.VisionLayers),
			PromptTokens:      clip.DeepTokens,
			FeatureLayers:     clip.DefaultFeatureLayers(v, a.VisionLayers),
		}
		if v == clip.AdaCLIP {
			man.PromptTokens = clip.AdaCLIPPromptTokens
		}
		d := dimsOf(scheme, man)
		d.Origin = "the official " + officialArch + " sizes"
		return d, nil
	}
	if m.Variant != v {
		return Dims{}, fmt.Errorf("checkpoints: scheme %s needs a model directory of variant %s, not %s (%s)", scheme, v, m.Variant, m.Arch.Name)
	}
	if LinearOnly(scheme) {
		if len(m.FeatureLayers) == 0 {
			return Dims{}, fmt.Errorf("checkpoints: %s model %s has no feature layers", scheme, m.Arch.Name)
		}
		d := dimsOf(scheme, m)
		d.Origin = "model " + m.Arch.Name
		return d, nil
	}
	if m.PromptTokens <= 0 || m.TextPromptDepth <= 0 {
		return Dims{}, fmt.Errorf("checkpoints: model %s (%s) has no deep text prompts", m.Arch.Name, m.Variant)
	}
	if (v == clip.DAPO || v == clip.AdaCLIP) && (m.VisualPromptDepth <= 0 || len(m.FeatureLayers) == 0) {
		return Dims{}, fmt.Errorf("checkpoints: %s model %s has no deep visual prompts or no feature layers", scheme, m.Arch.Name)
	}
	d := dimsOf(scheme, m)
	d.Origin = "model " + m.Arch.Name
	return d, nil
}

func dimsOf(scheme string, m *clip.Manifest) Dims {
	d := Dims{
		Scheme: scheme, DeepTokens: m.PromptTokens, TextDepth: m.TextPromptDepth,
		TextWidth: m.Arch.TextWidth, VisionWidth: m.Arch.VisionWidth, EmbedDim: m.Arch.EmbedDim,
	}
	switch {
	case scheme == DAPO:
		d.Groups, d.CtxTokens = DAPOGroups, DAPOContextTokens
		d.VisualDepth, d.Adapters = m.VisualPromptDepth, len(m.FeatureLayers)
	case scheme == AdaCLIP:
		d.VisualDepth, d.Adapters = m.VisualPromptDepth, len(m.FeatureLayers)
	case LinearOnly(scheme):
		d.DeepTokens, d.TextDepth, d.TextWidth = 0, 0, 0
		d.Adapters = len(m.FeatureLayers)
	default:
		d.CtxTokens = AnomalyCLIPContextTokens
	}
	return d
}

func variant(scheme string) (clip.Variant, error) {
	switch scheme {
	case DAPO:
		return clip.DAPO, nil
	case AnomalyCLIP:
		return clip.AnomalyCLIP, nil
	case AdaCLIP:
		return clip.AdaCLIP, nil
	case APRILGAN:
		return clip.APRILGAN, nil
	case MultiADS:
		return clip.MultiADS, nil
	}
	return "", fmt.Errorf("checkpoints: unknown scheme %q (want %s)", scheme, strings.Join(Schemes(), ", "))
}

// Shapes lists every canonical tensor of d with its shape.
func (d Dims) Shapes() map[string][]int {
	if d.Scheme == AdaCLIP {
		return adaclipShapes(d)
	}
	if LinearOnly(d.Scheme) {
		m := map[string][]int{}
		for i := range d.Adapters {
			m[AdapterWeight(i)] = []int{d.EmbedDim, d.VisionWidth}
			m[AdapterBias(i)] = []int{d.EmbedDim}
		}
		return m
	}
	ctx := []int{d.CtxTokens, d.TextWidth}
	if d.Scheme == DAPO {
		ctx = []int{d.Groups, d.CtxTokens, d.TextWidth}
	}
	m := map[string][]int{
		NormalCtx:   ctx,
		AbnormalCtx: slices.Clone(ctx),
		TextDeep:    {d.TextDepth, d.DeepTokens, d.TextWidth},
	}
	if d.Scheme == DAPO {
		m[VisualPrompts] = []int{d.VisualDepth, d.DeepTokens, d.VisionWidth}
		for i := range d.Adapters {
			m[AdapterWeight(i)] = []int{d.EmbedDim, d.VisionWidth}
			m[AdapterBias(i)] = []int{d.EmbedDim}
		}
	}
	return m
}

// Dims infers the sizes of l's tensors and checks every tensor against
// them: the set of names, each shape, and the fixed counts of the scheme.
func (l *Learned) Dims() (Dims, error) {
	if _, err := variant(l.Scheme); err != nil {
		return Dims{}, err
	}
	if l.Scheme == AdaCLIP {
		return adaclipDims(l.Tensors)
	}
	shape := func(name string, rank int) ([]int, error) {
		t, ok := l.Tensors[name]
		if !ok {
			return nil, fmt.Errorf("%s %w: missing %s", l.Scheme, ErrMismatch, name)
		}
		if len(t.Shape) != rank {
			return nil, fmt.Errorf("%s %w: %s has shape %v, want rank %d", l.Scheme, ErrMismatch, name, t.Shape, rank)
		}
		return t.Shape, nil
	}
	d := Dims{Scheme: l.Scheme, Origin: "each other"}
	adapters := func() error {
		for _, ok := l.Tensors[AdapterWeight(d.Adapters)]; ok; _, ok = l.Tensors[AdapterWeight(d.Adapters)] {
			d.Adapters++
		}
		w, err := shape(AdapterWeight(0), 2)
		if err != nil {
			return err
		}
		d.EmbedDim, d.VisionWidth = w[0], w[1]
		return nil
	}
	if LinearOnly(l.Scheme) {
		if err := adapters(); err != nil {
			return Dims{}, err
		}
		if err := d.check(l.Tensors); err != nil {
			return Dims{}, err
		}
		return d, nil
	}
	deep, err := shape(TextDeep, 3)
	if err != nil {
		return Dims{}, err
	}
	d.TextDepth, d.DeepTokens, d.TextWidth = deep[0], deep[1], deep[2]
	if l.Scheme == DAPO {
		d.Groups, d.CtxTokens = DAPOGroups, DAPOContextTokens
		vis, err := shape(VisualPrompts, 3)
		if err != nil {
			return Dims{}, err
		}
		if err := adapters(); err != nil {
			return Dims{}, err
		}
		d.VisualDepth, d.VisionWidth = vis[0], vis[2]
	} else {
		d.CtxTokens = AnomalyCLIPContextTokens
	}
	if err := d.check(l.Tensors); err != nil {
		return Dims{}, err
	}
	return d, nil
}

// Check reports whether l fits the model of m (nil: the official
// ViT-L/14@336px sizes), naming every mismatched tensor.
func (l *Learned) Check(m *clip.Manifest) error {
	d, err := DimsOf(l.Scheme, m)
	if err != nil {
		return err
	}
	return d.check(l.Tensors)
}

// check compares tensors with d's shapes: missing, extra and mis-shaped
// tensors, and data lengths, all reported at once.
func (d Dims) check(ts map[string]clip.Tensor) error {
	want := d.Shapes()
	var p problems
	for _, k := range slices.Sorted(maps.Keys(want)) {
		t, ok := ts[k]
		switch {
		case !ok:
			p.add(problem{kind: missingTensor, key: k, want: want[k]})
		case !slices.Equal(t.Shape, want[k]):
			p.add(problem{kind: wrongShape, key: k, got: t.Shape, want: want[k]})
		case len(t.Data) != numel(t.Shape):
			p.add(problem{kind: wrongLength, key: k, got: t.Shape, text: strconv.Itoa(len(t.Data))})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ts)) {
		if _, ok := want[k]; !ok {
			p.add(problem{kind: unknownTensor, key: k, got: ts[k].Shape})
		}
	}
	return p.err(d)
}

func numel(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

// shapesSummary is "name [shape]; …" in name order, the shapes entry of
// the safetensors metadata.
func shapesSummary(ts map[string]clip.Tensor) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(ts)) {
		parts = append(parts, fmt.Sprintf("%s %v", k, ts[k].Shape))
	}
	return strings.Join(parts, "; ")
}
