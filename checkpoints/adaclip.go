package checkpoints

import (
	"fmt"
	"math"

	"github.com/dapobench/dapobench/clip"
)

// AdaCLIP's learned tensors keep the names of its official checkpoint
// without the "clip_model." prefix (docs/methods.md#adaclip-checkpoint),
// one tensor per official parameter: a stacked layout would give the
// never-used text_prompter.static_prompts.0 a zero gradient, and AdamW
// would then decay it, where torch skips a parameter without gradient
// (docs/methods.md#adaclip-adamw). With J the prompting depth, n = 5
// prompt tokens, K feature layers, Dt = De the text and embedding width
// and Dv the vision width:
//
//	text_prompter.static_prompts.{0..J-1}                  [n, Dt] (0 unused)
//	visual_prompter.static_prompts.{0..J-1}                [n, Dv]
//	patch_token_layer.head.{0..K-1}.weight / .bias         [De, Dv] / [De]
//	cls_token_layer.head.0.weight / .bias                  [De, De] / [De]
//	dynamic_visual_prompt_generator.head.{0..4}.weight / .bias  [Dv, De] / [Dv]
//	dynamic_text_prompt_generator.head.{0..4}.weight / .bias    [Dt, De] / [Dt]

// AdaCLIPStaticStd is the standard deviation of nn.init.normal_ on the
// static prompts in AdaCLIP's code (docs/methods.md#adaclip-init).
const AdaCLIPStaticStd = 0.02

// adaclipOfficialPrefix is the prefix of every key of the official
// checkpoint: AdaCLIP_Trainer.save keeps the trainer's state_dict entries
// of its clip_model (docs/methods.md#adaclip-checkpoint).
const adaclipOfficialPrefix = "clip_model"

// adaclipTensor is one of AdaCLIP's tensors with how it is initialised:
// fanIn 0 for a static prompt (normal), else the input width of its
// Linear head (uniform).
type adaclipTensor struct {
	name  string
	shape []int
	fanIn int
}

// adaclipTensors lists AdaCLIP's tensors for d.
func adaclipTensors(d Dims) []adaclipTensor {
	n, dt, dv, de := d.DeepTokens, d.TextWidth, d.VisionWidth, d.EmbedDim
	var ts []adaclipTensor
	add := func(name string, fanIn int, shape ...int) { ts = append(ts, adaclipTensor{name, shape, fanIn}) }
	for j := range d.TextDepth {
		add(clip.AdaCLIPTextStatic(j), 0, n, dt)
	}
	for j := range d.VisualDepth {
		add(clip.AdaCLIPVisualStatic(j), 0, n, dv)
	}
	for k := range d.Adapters {
		add(clip.AdaCLIPPatchHead(k, "weight"), dv, de, dv)
		add(clip.AdaCLIPPatchHead(k, "bias"), dv, de)
	}
	add(clip.AdaCLIPClsHead("weight"), de, de, de)
	add(clip.AdaCLIPClsHead("bias"), de, de)
	// ProjectLayer has one head per prompt token.
	for i := range n {
		add(clip.AdaCLIPVisualGen(i, "weight"), de, dv, de)
		add(clip.AdaCLIPVisualGen(i, "bias"), de, dv)
		add(clip.AdaCLIPTextGen(i, "weight"), de, dt, de)
		add(clip.AdaCLIPTextGen(i, "bias"), de, dt)
	}
	return ts
}

// adaclipShapes lists AdaCLIP's tensors for d by name.
func adaclipShapes(d Dims) map[string][]int {
	m := map[string][]int{}
	for _, t := range adaclipTensors(d) {
		m[t.name] = t.shape
	}
	return m
}

// adaclipDims infers the sizes of AdaCLIP tensors from the tensors
// themselves: counts from the indexed names, widths from the class-token
// head and the first visual prompt.
func adaclipDims(ts map[string]clip.Tensor) (Dims, error) {
	d := Dims{Scheme: AdaCLIP, Origin: "each other", DeepTokens: clip.AdaCLIPPromptTokens}
	count := func(name func(int) string) int {
		n := 0
		for _, ok := ts[name(n)]; ok; _, ok = ts[name(n)] {
			n++
		}
		return n
	}
	d.TextDepth = count(clip.AdaCLIPTextStatic)
	d.VisualDepth = count(clip.AdaCLIPVisualStatic)
	d.Adapters = count(func(k int) string { return clip.AdaCLIPPatchHead(k, "weight") })
	cls, ok := ts[clip.AdaCLIPClsHead("weight")]
	if !ok || len(cls.Shape) != 2 {
		return Dims{}, fmt.Errorf("%s %w: missing %s [De, De]", AdaCLIP, ErrMismatch, clip.AdaCLIPClsHead("weight"))
	}
	vis, ok := ts[clip.AdaCLIPVisualStatic(0)]
	if !ok || len(vis.Shape) != 2 {
		return Dims{}, fmt.Errorf("%s %w: missing %s [5, Dv]", AdaCLIP, ErrMismatch, clip.AdaCLIPVisualStatic(0))
	}
	d.EmbedDim, d.TextWidth, d.VisionWidth = cls.Shape[0], cls.Shape[0], vis.Shape[1]
	if err := d.check(ts); err != nil {
		return Dims{}, err
	}
	return d, nil
}

// adaclipLayout maps the official checkpoint onto the canonical tensors:
// the same names under the one "clip_model" state dict. Nothing else may
// be in it: AdaCLIP_Trainer.save writes exactly the learned parameters.
func adaclipLayout(d Dims) []component {
	c := component{names: []string{adaclipOfficialPrefix}}
	for _, t := range adaclipTensors(d) {
		c.sources = append(c.sources, source{t.name, t.shape, t.name, -1})
	}
	return []component{c}
}

// adaclipUntrained draws AdaCLIP's tensors as its modules initialise
// them: static prompts N(0, 0.02²) (PromptLayer), every head torch.nn.Linear's
// default, weight and bias U(−1/√fan_in, 1/√fan_in) with fan_in the
// input width (docs/methods.md#adaclip-init).
func adaclipUntrained(d Dims, fill func(name string, draw func(r *stream, i int) float64)) {
	for _, t := range adaclipTensors(d) {
		if t.fanIn == 0 {
			fill(t.name, func(r *stream, _ int) float64 { return AdaCLIPStaticStd * r.normal() })
			continue
		}
		bound := 1 / math.Sqrt(float64(t.fanIn))
		fill(t.name, func(r *stream, _ int) float64 { return bound * r.symmetric() })
	}
}
