package clip

import (
	"fmt"
	"math"
	"strconv"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/graph"
)

// AdaCLIP's prompt geometry: the official defaults prompting_depth 4 and
// prompting_length 5, and 5 dynamic-prompt heads, one per prompt token
// (docs/methods.md#adaclip-prompts).
const (
	// AdaCLIPPromptTokens is the prompt length n: 5 tokens per prompted
	// block in both towers.
	AdaCLIPPromptTokens = 5
	// adaCLIPDepth is the prompting depth J: static prompts 0..3. The
	// vision tower uses all four (before blocks 0..3), the text tower
	// only 1..3 (docs/methods.md#adaclip-text-prompts).
	adaCLIPDepth = 4
)

// AdaCLIPDepth is the number of static prompt tensors per tower for a
// tower of the given depth: 4, or fewer for a shallower tower.
func AdaCLIPDepth(layers int) int { return min(adaCLIPDepth, layers) }

// AdaCLIP's extra graph input and output.
const (
	// InImageEmbedPlain is the unprompted image embedding [1, E] that the
	// text graph turns into its dynamic prompts.
	InImageEmbedPlain = "image_embed_plain"
	// OutImageEmbedPlain is ln_post(CLS)·proj of the unprompted pass
	// [B, E], the source of both towers' dynamic prompts.
	OutImageEmbedPlain = "image_embed_plain"
)

// AdaCLIP's learned tensors are graph inputs named as in the official
// checkpoint without its "clip_model." prefix
// (docs/methods.md#adaclip-checkpoint).

// AdaCLIPVisualStatic names static visual prompt j [5, D_v].
func AdaCLIPVisualStatic(j int) string { return "visual_prompter.static_prompts." + strconv.Itoa(j) }

// AdaCLIPTextStatic names static text prompt j [5, D_t]; j = 0 exists in
// the checkpoint but is never used.
func AdaCLIPTextStatic(j int) string { return "text_prompter.static_prompts." + strconv.Itoa(j) }

// AdaCLIPVisualGen names part ("weight" [D_v, E] or "bias" [D_v]) of
// dynamic visual prompt head i.
func AdaCLIPVisualGen(i int, part string) string {
	return "dynamic_visual_prompt_generator.head." + strconv.Itoa(i) + "." + part
}

// AdaCLIPTextGen names part ("weight" [D_t, E] or "bias" [D_t]) of
// dynamic text prompt head i.
func AdaCLIPTextGen(i int, part string) string {
	return "dynamic_text_prompt_generator.head." + strconv.Itoa(i) + "." + part
}

// AdaCLIPPatchHead names part ("weight" [E, D_v] or "bias" [E]) of the
// projection of the k-th feature layer's patch tokens.
func AdaCLIPPatchHead(k int, part string) string {
	return "patch_token_layer.head." + strconv.Itoa(k) + "." + part
}

// AdaCLIPClsHead names part ("weight" [E, E] or "bias" [E]) of the
// projection of the prompted image embedding.
func AdaCLIPClsHead(part string) string { return "cls_token_layer.head.0." + part }

// adaLinear is a torch Linear whose weight [out, in] and bias [out] are
// graph inputs: x·Wᵀ + b.
func (t *tower) adaLinear(x, weight, bias string, out, in int) string {
	w := t.In(t.Input(weight, graph.Float32, graph.N(out), graph.N(in)))
	b := t.In(t.Input(bias, graph.Float32, graph.N(out)))
	return t.Add(t.MatMul(x, t.Transpose(w, 1, 0)), b)
}

// adaRows is adaLinear on the rows of x [B, in], computed so that each
// row's result does not depend on B: onnxruntime multiplies a single row by
// a fed (not constant) matrix on another path than several rows, which
// rounds differently, so the rows are stacked twice, [2, B, in], and the
// first copy is kept. A batch of one image then gives the features a
// batch of several gives (docs/README.md#perf-batch).
func (t *tower) adaRows(x, weight, bias string, out, in int) string {
	x3 := t.Reshape(x, 1, -1, int64(in))
	return t.Gather(t.adaLinear(t.Concat(0, x3, x3), weight, bias, out, in), t.Ints(true, 0), 0)
}

// adaDynamic is a ProjectLayer(stack=True) of AdaCLIPPromptTokens heads on
// the plain image embedding e [B, E]: [B, 5, width]
// (docs/methods.md#adaclip-dynamic-prompts). lin is the head's product.
func (t *tower) adaDynamic(e string, name func(int, string) string, width int, lin func(x, weight, bias string, out, in int) string) string {
	heads := make([]string, AdaCLIPPromptTokens)
	for i := range heads {
		h := lin(e, name(i, "weight"), name(i, "bias"), width, t.arch.EmbedDim)
		heads[i] = t.Reshape(h, 0, 1, int64(width))
	}
	return t.Concat(1, heads...)
}

// adaHalf is the official .half() on a prompt before it joins the float32
// stream: rounded to float16 and promoted back, in value and in gradient
// (docs/methods.md#adaclip-fp16-prompts). A float16 build computes in
// float16 already.
func (t *tower) adaHalf(x string) string {
	if t.Float == graph.Float32 {
		return t.Cast(t.Cast(x, graph.Float16), graph.Float32)
	}
	return x
}

// adaclipImageGraph builds AdaCLIP's image.onnx: the plain tower for the
// dynamic prompts, then the prompted tower (docs/methods.md#adaclip-towers):
//
//	e     = ln_post(CLS)·proj of the plain pass            → image_embed_plain
//	D_v   = stack_i(head_i(e))                              [B, 5, D_v]
//	P_j   = half(D_v + S_j)
//	block 0 input: [x; P_0] (appended at the end), blocks 1..J−1: the last
//	5 tokens replaced by P_j, later blocks carry them
//	patch_l = patch head k on the block-l output without CLS and prompts
//	image_embed = cls head on ln_post(CLS)·proj of the prompted pass
//
// The learned tensors are graph inputs, so that a checkpoint is swapped
// without rebuilding.
func adaclipImageGraph(a Arch, w Weights, s spec) (*pb.ModelProto, error) {
	t := newTower(a, w, s)
	g := a.Grid(s.imageSize)
	pos, err := resizePos(w["visual.positional_embedding"], a.Grid(a.ImageSize), g, s.posResize)
	if err != nil {
		return nil, err
	}
	batch := graph.Sym("batch")
	pixels := t.Input(InPixels, graph.Float32, batch, graph.N(3), graph.N(s.imageSize), graph.N(s.imageSize))
	vw, vh, e := a.VisionWidth, a.VisionHeads, a.EmbedDim
	x0 := t.ln(t.embedPatches(pixels, s.imageSize, pos), "visual.ln_pre")
	block := func(x string, i int) string {
		return t.block(x, "visual.transformer.resblocks."+strconv.Itoa(i)+".", vw, vh, "")
	}
	post := func(x string) string { return t.project(t.ln(t.cls(x), "visual.ln_post"), "visual.proj") }
	x := x0
	for i := range a.VisionLayers {
		x = block(x, i)
	}
	// The heads read the graph output itself: onnxruntime's optimiser
	// fails to load a graph whose value feeds both an output's Identity and
	// these MatMuls.
	t.Output(t.Out(post(x)), OutImageEmbedPlain, graph.Float32, batch, graph.N(e))
	dyn := t.adaDynamic(t.In(OutImageEmbedPlain), AdaCLIPVisualGen, vw, t.adaRows)
	statics := make([]string, s.visualDepth)
	for j := range statics {
		statics[j] = t.In(t.Input(AdaCLIPVisualStatic(j), graph.Float32, graph.N(AdaCLIPPromptTokens), graph.N(vw)))
	}
	feature := map[int]int{}
	for k, l := range s.featureLayers {
		feature[l] = k
	}
	keep := int64(g*g + 1) // CLS and patches; the prompts follow
	x = x0
	for i := range a.VisionLayers {
		if i < s.visualDepth {
			p := t.adaHalf(t.Add(dyn, statics[i]))
			if i == 0 {
				x = t.Concat(1, x, p)
			} else {
				x = t.Concat(1, t.Slice(x, 1, 0, keep), p)
			}
		}
		x = block(x, i)
		k, ok := feature[i+1]
		if !ok {
			continue
		}
		tokens := t.Slice(x, 1, 1, keep) // x[:len−5] without the CLS
		proj := t.adaLinear(tokens, AdaCLIPPatchHead(k, "weight"), AdaCLIPPatchHead(k, "bias"), e, vw)
		t.Output(t.Out(proj), OutPatch(i+1), graph.Float32, batch, graph.N(g*g), graph.N(e))
	}
	embed := t.adaRows(post(x), AdaCLIPClsHead("weight"), AdaCLIPClsHead("bias"), e, e)
	t.Output(t.Out(embed), OutImageEmbed, graph.Float32, batch, graph.N(e))
	return t.Model("image", s.meta("image")), nil
}

// adaclipTextGraph builds AdaCLIP's text.onnx for the sentences of one
// image: the plain token embeddings, and the image's plain embedding for
// the dynamic text prompts D_t = stack_i(head_i(e)) [1, 5, D_t]. Nothing is
// inserted before block 0; before blocks 1..J−1 positions 1..5 (template
// words after SOT) are overwritten by half(D_t + S_j), broadcast over the
// sentences; the causal mask and the EOT gather are those of plain CLIP
// (docs/methods.md#adaclip-text-prompts).
func adaclipTextGraph(a Arch, w Weights, s spec) *pb.ModelProto {
	t := newTower(a, w, s)
	n := graph.Sym("prompts")
	tw, ctx := a.TextWidth, a.ContextLength
	x := t.In(t.Input(InEmbeds, graph.Float32, n, graph.N(ctx), graph.N(tw)))
	eot := t.Input(InEOTIndex, graph.Int64, n)
	plain := t.In(t.Input(InImageEmbedPlain, graph.Float32, graph.N(1), graph.N(a.EmbedDim)))
	dyn := t.adaDynamic(plain, AdaCLIPTextGen, tw, t.adaLinear)
	x = t.Add(x, t.weight("positional_embedding"))
	m := make([]float32, ctx*ctx)
	for i := range ctx {
		for j := i + 1; j < ctx; j++ {
			m[i*ctx+j] = float32(math.Inf(-1))
		}
	}
	mask := t.Weight("causal_mask", []int{ctx, ctx}, m)
	for i := range a.TextLayers {
		if i >= 1 && i < s.textDepth {
			st := t.In(t.Input(AdaCLIPTextStatic(i), graph.Float32, graph.N(AdaCLIPPromptTokens), graph.N(tw)))
			p := t.Expand(t.Add(dyn, st), t.batchShape(x, AdaCLIPPromptTokens, int64(tw)))
			x = t.splice(x, t.adaHalf(p), AdaCLIPPromptTokens)
		}
		x = t.block(x, "transformer.resblocks."+strconv.Itoa(i)+".", tw, a.TextHeads, mask)
	}
	x = t.ln(x, "ln_final")
	idx := t.Expand(t.Reshape(eot, -1, 1, 1), t.Ints(false, 1, 1, int64(tw)))
	x = t.Reshape(t.GatherElements(x, idx, 1), 0, int64(tw))
	t.Output(t.Out(t.project(x, "text_projection")), OutTextFeatures, graph.Float32, n, graph.N(a.EmbedDim))
	return t.Model("text", s.meta("text"))
}

// adaclipArch is the architecture AdaCLIP's code actually runs: it builds
// the final model as CLIP(**model_cfg) from a config without quick_gelu, so
// both towers run exact GELU whatever the weights were trained with
// (docs/methods.md#adaclip-gelu). Build applies it, and model.json records
// it.
func adaclipArch(a Arch) Arch {
	a.Act = GELU
	return a
}

// checkAdaCLIP reports what an architecture lacks for AdaCLIP: its text
// prompts have embed_dim channels and enter the text stream, so the text
// width must equal the embedding width (768 for ViT-L); the prompted
// blocks must exist.
func checkAdaCLIP(a Arch, s spec) error {
	if a.TextWidth != a.EmbedDim {
		return fmt.Errorf("clip: adaclip needs text_width = embed_dim (its text prompts have embed_dim channels); %s has %d and %d", a.Name, a.TextWidth, a.EmbedDim)
	}
	if a.TextLayers < 2 {
		return fmt.Errorf("clip: adaclip prompts text blocks 1..3; %s has %d text blocks", a.Name, a.TextLayers)
	}
	if len(s.featureLayers) == 0 {
		return fmt.Errorf("clip: adaclip needs feature layers")
	}
	return nil
}
