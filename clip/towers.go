package clip

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/graph"
)

// Graph input and output names, shared by every variant.
const (
	InPixels        = "pixels"         // float32 [batch, 3, S, S], normalised
	InVisualPrompts = "visual_prompts" // float32 [depth, 4, vision_width] (DAPO)
	InTokens        = "tokens"         // float32 [windows, L, vision_width] (WinCLIP window graph)
	InEmbeds        = "embeds"         // float32 [N, 77, text_width]
	InEOTIndex      = "eot_index"      // int64 [N]
	InDeepTokens    = "deep_tokens"    // float32 [depth, 4, text_width] (DAPO, AnomalyCLIP)

	OutImageEmbed   = "image_embed"   // float32 [batch, embed_dim]
	OutTokens       = "tokens"        // float32 [batch, 1+G², vision_width] before ln_pre (WinCLIP)
	OutTextFeatures = "text_features" // float32 [N, embed_dim], unnormalised
)

// OutPatch names the patch-token output of a 1-indexed layer.
func OutPatch(layer int) string { return "patch_" + strconv.Itoa(layer) }

// tower builds one graph from checked weights.
type tower struct {
	*graph.Builder
	w    Weights
	arch Arch
	made map[string]string // initializers already added, by name
	buf  []float32         // see scratch
}

func newTower(a Arch, w Weights, s spec) *tower {
	t := &tower{Builder: graph.New(s.float), w: cloneWeights(w), arch: a, made: map[string]string{}}
	if s.ext != nil {
		t.StreamTo(s.ext)
	}
	return t
}

// scratch returns a buffer of n values for a weight computed on the fly
// (a transposed matrix): the builder encodes a weight as soon as it is
// added, so one buffer serves them all and building a large tower makes
// no garbage the size of its weights.
func (t *tower) scratch(n int) []float32 {
	if cap(t.buf) < n {
		t.buf = make([]float32, n)
	}
	return t.buf[:n]
}

// once adds an initializer the first time a name is used.
func (t *tower) once(name string, shape []int, data func() []float32) string {
	if v, ok := t.made[name]; ok {
		return v
	}
	v := t.Weight(name, shape, data())
	t.made[name] = v
	return v
}

func (t *tower) weight(name string) string {
	x := t.w[name]
	return t.once(name, x.Shape, func() []float32 { return x.Data })
}

// linear returns x·Wᵀ + b for a torch Linear weight [out, in], optionally
// scaling W and b by s (folding attention's 1/√d into the query).
func (t *tower) linear(x, name string, rows [2]int, s float32) string {
	w, b := t.w[name+"weight"], t.w[name+"bias"]
	in := w.Shape[1]
	lo, hi := rows[0], rows[1]
	if hi == 0 {
		hi = w.Shape[0]
	}
	tag := name + "[" + strconv.Itoa(lo) + ":" + strconv.Itoa(hi) + "]"
	wt := t.once(tag+".weight_t", []int{in, hi - lo}, func() []float32 {
		wt := t.scratch(in * (hi - lo))
		transpose(wt, w.Data[lo*in:hi*in], hi-lo, in, s)
		return wt
	})
	bias := t.once(tag+".bias", []int{hi - lo}, func() []float32 {
		bias := make([]float32, hi-lo)
		for r := lo; r < hi; r++ {
			bias[r-lo] = b.Data[r] * s
		}
		return bias
	})
	return t.Add(t.MatMul(x, wt), bias)
}

// transpose writes s·srcᵀ into dst for src [rows, cols] row-major, in
// tiles that stay in cache (a row-by-row transpose of ViT-L's matrices
// misses the cache on every store).
func transpose(dst, src []float32, rows, cols int, s float32) {
	const tile = 32
	for r0 := 0; r0 < rows; r0 += tile {
		r1 := min(r0+tile, rows)
		for c0 := 0; c0 < cols; c0 += tile {
			c1 := min(c0+tile, cols)
			for r := r0; r < r1; r++ {
				row := src[r*cols : r*cols+c1]
				for c := c0; c < c1; c++ {
					dst[c*rows+r] = row[c] * s
				}
			}
		}
	}
}

// inProj is attn.in_proj_weight/bias renamed so that linear can read them.
func (t *tower) inProj(prefix string) {
	t.w[prefix+"attn.in_proj."+"weight"] = t.w[prefix+"attn.in_proj_weight"]
	t.w[prefix+"attn.in_proj."+"bias"] = t.w[prefix+"attn.in_proj_bias"]
}

func (t *tower) ln(x, name string) string {
	return t.LayerNorm(x, t.weight(name+".weight"), t.weight(name+".bias"), layerNormEps)
}

func (t *tower) act(x string) string {
	if t.arch.Act == QuickGELU {
		return t.Mul(x, t.Sigmoid(t.Mul(x, t.Scalar(quickGELUScale))))
	}
	// exact GELU: 0.5·x·(1 + erf(x/√2))
	return t.Mul(t.Mul(x, t.Scalar(0.5)), t.Add(t.Erf(t.Mul(x, t.Scalar(float32(1/math.Sqrt2)))), t.Scalar(1)))
}

func (t *tower) mlp(x, prefix string) string {
	h := t.act(t.linear(x, prefix+"mlp.c_fc.", [2]int{}, 1))
	return t.linear(h, prefix+"mlp.c_proj.", [2]int{}, 1)
}

// heads reshapes [N, L, w] to [N, H, L, d] (or [N, H, d, L] when keyT).
func (t *tower) heads(x string, h, d int, keyT bool) string {
	x = t.Reshape(x, 0, 0, int64(h), int64(d))
	if keyT {
		return t.Transpose(x, 0, 2, 3, 1)
	}
	return t.Transpose(x, 0, 2, 1, 3)
}

func (t *tower) merge(x string, w int) string {
	return t.Reshape(t.Transpose(x, 0, 2, 1, 3), 0, 0, int64(w))
}

// attention is torch's MultiheadAttention on y = ln_1(x): softmax(q·kᵀ/√d
// + mask)·v, then out_proj. It also returns AnomalyCLIP's V-V attention
// softmax(v·vᵀ/√d)·v through out_proj when vv is set.
func (t *tower) attention(y, prefix string, width, nh int, mask string, vv bool) (ori, vvOut string) {
	d := width / nh
	scale := float32(1 / math.Sqrt(float64(d)))
	t.inProj(prefix)
	q := t.linear(y, prefix+"attn.in_proj.", [2]int{0, width}, scale)
	k := t.linear(y, prefix+"attn.in_proj.", [2]int{width, 2 * width}, 1)
	v := t.linear(y, prefix+"attn.in_proj.", [2]int{2 * width, 3 * width}, 1)
	vh := t.heads(v, nh, d, false)
	s := t.MatMul(t.heads(q, nh, d, false), t.heads(k, nh, d, true))
	if mask != "" {
		s = t.Add(s, mask)
	}
	ori = t.linear(t.merge(t.MatMul(t.Softmax(s, -1), vh), width), prefix+"attn.out_proj.", [2]int{}, 1)
	if vv {
		sv := t.Mul(t.MatMul(vh, t.heads(v, nh, d, true)), t.Scalar(scale))
		vvOut = t.linear(t.merge(t.MatMul(t.Softmax(sv, -1), vh), width), prefix+"attn.out_proj.", [2]int{}, 1)
	}
	return ori, vvOut
}

// block is one standard residual block.
func (t *tower) block(x, prefix string, width, nh int, mask string) string {
	a, _ := t.attention(t.ln(x, prefix+"ln_1"), prefix, width, nh, mask, false)
	x = t.Add(x, a)
	return t.Add(x, t.mlp(t.ln(x, prefix+"ln_2"), prefix))
}

// batchShape is the int64 tensor [N, rest...] with N taken from x.
func (t *tower) batchShape(x string, rest ...int64) string {
	n := t.Slice(t.Shape(x), 0, 0, 1)
	return t.Concat(0, n, t.Ints(false, rest...))
}

// prompts returns p[i] ([k, w] from a [depth, k, w] input) broadcast over
// the batch of x.
func (t *tower) prompts(p string, i int, like string, k, w int) string {
	pi := t.Gather(p, t.Ints(true, int64(i)), 0)
	return t.Expand(pi, t.batchShape(like, int64(k), int64(w)))
}

// splice replaces x[:, 1:1+k] by mid: [x[:, :1], mid, x[:, 1+k:]].
func (t *tower) splice(x, mid string, k int) string {
	return t.Concat(1, t.Slice(x, 1, 0, 1), mid, t.Slice(x, 1, int64(1+k), math.MaxInt64))
}

// blend is DAPO's progressive update of the deep tokens before a block:
// x[:, 1:1+k] ← α·x[:, 1:1+k] + (1−α)·p[i].
func (t *tower) blend(x, p string, i, k, w int) string {
	prev := t.Slice(x, 1, 1, int64(1+k))
	pi := t.Gather(p, t.Ints(true, int64(i)), 0)
	mid := t.Add(t.Mul(prev, t.Scalar(DeepBlend)), t.Mul(pi, t.Scalar(1-DeepBlend)))
	return t.splice(x, mid, k)
}

// embedPatches is conv1 (as a patch reshape and a matmul), the class token
// and the positional embedding: [N, 1+G², w], before ln_pre.
func (t *tower) embedPatches(pixels string, size int, pos Tensor) string {
	a := t.arch
	p, w, g := a.PatchSize, a.VisionWidth, a.Grid(size)
	x := t.In(pixels)
	if g*p != size { // the strided conv ignores the remainder
		x = t.Slice(t.Slice(x, 2, 0, int64(g*p)), 3, 0, int64(g*p))
	}
	x = t.Reshape(x, 0, 3, int64(g), int64(p), int64(g), int64(p))
	x = t.Transpose(x, 0, 2, 4, 1, 3, 5)
	x = t.Reshape(x, 0, int64(g*g), int64(3*p*p))
	conv := t.w["visual.conv1.weight"] // [w, 3, p, p] → [3·p·p, w]
	kt := t.scratch(3 * p * p * w)
	for o := range w {
		for i := range 3 * p * p {
			kt[i*w+o] = conv.Data[o*3*p*p+i]
		}
	}
	x = t.MatMul(x, t.Weight("visual.conv1.weight_t", []int{3 * p * p, w}, kt))
	cls := t.Expand(t.Weight("visual.class_embedding", []int{1, 1, w}, t.w["visual.class_embedding"].Data), t.batchShape(x, 1, int64(w)))
	x = t.Concat(1, cls, x)
	return t.Add(x, t.Weight("visual.positional_embedding", pos.Shape, pos.Data))
}

// project is x·proj for x [.., w] and proj [w, e].
func (t *tower) project(x, name string) string { return t.MatMul(x, t.weight(name)) }

func (t *tower) cls(x string) string {
	return t.Reshape(t.Slice(x, 1, 0, 1), 0, -1)
}

// imageGraph builds image.onnx for a variant.
func imageGraph(a Arch, w Weights, s spec) (*pb.ModelProto, error) {
	t := newTower(a, w, s)
	g := a.Grid(s.imageSize)
	pos, err := resizePos(w["visual.positional_embedding"], a.Grid(a.ImageSize), g, s.posResize)
	if err != nil {
		return nil, err
	}
	batch := graph.Sym("batch")
	pixels := t.Input(InPixels, graph.Float32, batch, graph.N(3), graph.N(s.imageSize), graph.N(s.imageSize))
	var vp string
	if s.visualDepth > 0 {
		vp = t.In(t.Input(InVisualPrompts, graph.Float32, graph.N(s.visualDepth), graph.N(DeepTokens), graph.N(a.VisionWidth)))
	}
	emb := t.embedPatches(pixels, s.imageSize, pos)
	if s.variant == WinCLIP {
		t.Output(t.Out(emb), OutTokens, graph.Float32, batch, graph.N(g*g+1), graph.N(a.VisionWidth))
	}
	x := t.ln(emb, "visual.ln_pre")
	vw, vh := a.VisionWidth, a.VisionHeads
	feature := map[int]bool{}
	for _, l := range s.featureLayers {
		feature[l] = true
	}
	patchDim, patchLen := vw, g*g+1
	if s.variant == AnomalyCLIP {
		patchDim = a.EmbedDim
	}
	if s.variant == DAPO {
		patchLen = g * g
	}
	dpamFrom := a.VisionLayers - s.dpamLayers // 0-indexed first V-V block
	var xvv string
	for i := range a.VisionLayers {
		prefix := "visual.transformer.resblocks." + strconv.Itoa(i) + "."
		switch {
		case s.variant == DAPO && i == 0:
			x = t.Concat(1, t.Slice(x, 1, 0, 1), t.prompts(vp, 0, x, DeepTokens, vw), t.Slice(x, 1, 1, math.MaxInt64))
		case s.variant == DAPO && i < s.visualDepth:
			x = t.blend(x, vp, i, DeepTokens, vw)
		}
		if s.variant == AnomalyCLIP && i >= dpamFrom {
			if xvv == "" {
				xvv = x
			}
			ori, vv := t.attention(t.ln(x, prefix+"ln_1"), prefix, vw, vh, "", true)
			x = t.Add(x, ori)
			x = t.Add(x, t.mlp(t.ln(x, prefix+"ln_2"), prefix))
			xvv = t.Add(xvv, vv)
		} else {
			x = t.block(x, prefix, vw, vh, "")
		}
		if !feature[i+1] {
			continue
		}
		var out string
		switch {
		case s.variant == DAPO:
			// drop CLS and the prompt tokens (docs/methods.md#dapo-patch-tokens)
			out = t.Slice(x, 1, 1+DeepTokens, math.MaxInt64)
		case s.variant == AnomalyCLIP:
			// V-V path → ln_post → proj (docs/methods.md#anomalyclip-patch-tokens)
			src := x
			if xvv != "" {
				src = xvv
			}
			out = t.project(t.ln(src, "visual.ln_post"), "visual.proj")
		default:
			out = x
		}
		t.Output(t.Out(out), OutPatch(i+1), graph.Float32, batch, graph.N(patchLen), graph.N(patchDim))
	}
	var embed string
	// AnomalyCLIP: x_ori[CLS]·proj without ln_post (docs/methods.md#anomalyclip-image-embed,
	// https://github.com/zqhang/AnomalyCLIP/issues/14).
	if s.variant == AnomalyCLIP {
		embed = t.project(t.cls(x), "visual.proj")
	} else {
		embed = t.project(t.ln(t.cls(x), "visual.ln_post"), "visual.proj")
	}
	t.Output(t.Out(embed), OutImageEmbed, graph.Float32, batch, graph.N(a.EmbedDim))
	return t.Model("image", s.meta("image")), nil
}

// windowGraph builds WinCLIP's second image graph: token subsets (CLS and
// a window's patches, taken from image.onnx's tokens output) → ln_pre →
// blocks → ln_post(CLS)·proj (docs/methods.md#clip-winclip-graphs).
func windowGraph(a Arch, w Weights, s spec) *pb.ModelProto {
	t := newTower(a, w, s)
	m := graph.Sym("windows")
	x := t.In(t.Input(InTokens, graph.Float32, m, graph.Sym("length"), graph.N(a.VisionWidth)))
	x = t.ln(x, "visual.ln_pre")
	for i := range a.VisionLayers {
		x = t.block(x, "visual.transformer.resblocks."+strconv.Itoa(i)+".", a.VisionWidth, a.VisionHeads, "")
	}
	embed := t.project(t.ln(t.cls(x), "visual.ln_post"), "visual.proj")
	t.Output(t.Out(embed), OutImageEmbed, graph.Float32, m, graph.N(a.EmbedDim))
	return t.Model("window", s.meta("window"))
}

// textGraph builds text.onnx: token embeddings (learned context already
// spliced in) + positional embedding → blocks → ln_final → gather at the
// end-of-text index → text_projection (docs/methods.md#clip-text-graph).
func textGraph(a Arch, w Weights, s spec) *pb.ModelProto {
	t := newTower(a, w, s)
	n := graph.Sym("prompts")
	tw, ctx := a.TextWidth, a.ContextLength
	// APRIL-GAN's and MultiADS' towers take prompts cut after their last
	// end-of-text token (TruncatesText): with the causal mask no position
	// reads a later one, so the features are those of the 77-token input.
	tokens := graph.N(ctx)
	if TruncatesText(s.variant) {
		tokens = graph.Sym("tokens")
	}
	x := t.In(t.Input(InEmbeds, graph.Float32, n, tokens, graph.N(tw)))
	eot := t.Input(InEOTIndex, graph.Int64, n)
	var deep string
	if s.textDepth > 0 {
		deep = t.In(t.Input(InDeepTokens, graph.Float32, graph.N(s.textDepth), graph.N(DeepTokens), graph.N(tw)))
	}
	pos := t.weight("positional_embedding")
	if TruncatesText(s.variant) {
		pos = t.SliceLike(pos, 0, x, 1)
	}
	x = t.Add(x, pos)
	mask := ""
	// DAPO's encode_learn_prompts passes no mask (docs/methods.md#dapo-text-no-mask).
	if s.variant != DAPO {
		m := make([]float32, ctx*ctx)
		for i := range ctx {
			for j := i + 1; j < ctx; j++ {
				m[i*ctx+j] = float32(math.Inf(-1))
			}
		}
		mask = t.Weight("causal_mask", []int{ctx, ctx}, m)
		if TruncatesText(s.variant) {
			mask = t.SliceLike(t.SliceLike(mask, 0, x, 1), 1, x, 1)
		}
	}
	for i := range a.TextLayers {
		switch {
		case s.variant == DAPO && i == 0: // insert after SOT: 77 → 81 tokens
			x = t.Concat(1, t.Slice(x, 1, 0, 1), t.prompts(deep, 0, x, DeepTokens, tw), t.Slice(x, 1, 1, math.MaxInt64))
		case s.variant == DAPO && i < s.textDepth:
			x = t.blend(x, deep, i, DeepTokens, tw)
		case s.variant == AnomalyCLIP && i >= 1 && i <= s.textDepth:
			// overwrite positions 1..4 with compound[i−1].half()
			// (docs/methods.md#anomalyclip-deep-text)
			p := t.prompts(deep, i-1, x, DeepTokens, tw)
			if s.float == graph.Float32 {
				p = t.Cast(t.Cast(p, graph.Float16), graph.Float32)
			}
			x = t.splice(x, p, DeepTokens)
		}
		x = t.block(x, "transformer.resblocks."+strconv.Itoa(i)+".", tw, a.TextHeads, mask)
	}
	x = t.ln(x, "ln_final")
	// DAPO gathers at the 77-token EOT index on its 81-token output, which
	// reads 4 positions early; that is the trained behaviour
	// (docs/methods.md#dapo-eot-index).
	idx := t.Expand(t.Reshape(eot, -1, 1, 1), t.Ints(false, 1, 1, int64(tw)))
	x = t.Reshape(t.GatherElements(x, idx, 1), 0, int64(tw))
	t.Output(t.Out(t.project(x, "text_projection")), OutTextFeatures, graph.Float32, n, graph.N(a.EmbedDim))
	return t.Model("text", s.meta("text"))
}

// cloneWeights copies the map (not the data): towers add renamed entries.
func cloneWeights(w Weights) Weights {
	c := make(Weights, len(w)+64)
	for k, v := range w {
		c[k] = v
	}
	return c
}

// spec is Options resolved against an architecture.
type spec struct {
	ext           *graph.External // where the towers stream their weights; nil holds them
	variant       Variant
	imageSize     int
	featureLayers []int
	posResize     PosResize
	float         graph.DType
	visualDepth   int
	textDepth     int
	dpamLayers    int
	arch          Arch
}

func (s spec) meta(graphName string) [][2]string {
	return [][2]string{
		{"dapobench.graph", graphName},
		{"dapobench.variant", string(s.variant)},
		{"dapobench.arch", s.arch.Name},
		{"dapobench.image_size", strconv.Itoa(s.imageSize)},
		{"dapobench.dtype", s.float.String()},
	}
}

func resolve(a Arch, o Options) (spec, error) {
	if err := a.Validate(); err != nil {
		return spec{}, err
	}
	if _, err := ParseVariant(string(o.Variant)); err != nil {
		return spec{}, err
	}
	s := spec{variant: o.Variant, imageSize: o.ImageSize, posResize: o.PosResize, float: graph.Float32, arch: a}
	if s.imageSize == 0 {
		s.imageSize = a.ImageSize
	}
	if s.imageSize < a.PatchSize || s.imageSize > 1<<14 {
		return spec{}, fmt.Errorf("clip: image size %d outside [%d, %d] for patch %d", s.imageSize, a.PatchSize, 1<<14, a.PatchSize)
	}
	if s.posResize == "" {
		s.posResize = DefaultPosResize(o.Variant)
	}
	if !slices.Contains(PosResizes(), s.posResize) {
		return spec{}, fmt.Errorf("clip: unknown positional-embedding resize %q", s.posResize)
	}
	if o.FP16 {
		s.float = graph.Float16
	}
	s.featureLayers = o.FeatureLayers
	if s.featureLayers == nil {
		s.featureLayers = DefaultFeatureLayers(o.Variant, a.VisionLayers)
	}
	seen := map[int]bool{}
	for _, l := range s.featureLayers {
		if l < 1 || l > a.VisionLayers || seen[l] {
			return spec{}, fmt.Errorf("clip: feature layer %d: want distinct layers in 1..%d", l, a.VisionLayers)
		}
		seen[l] = true
	}
	s.visualDepth = VisualDeepDepth(o.Variant, a.VisionLayers)
	s.textDepth = TextDeepDepth(o.Variant, a.TextLayers)
	if o.Variant == AdaCLIP {
		if err := checkAdaCLIP(a, s); err != nil {
			return spec{}, err
		}
	}
	if o.Variant == AnomalyCLIP {
		s.dpamLayers = DPAMLayers(a.VisionLayers)
	}
	return s, nil
}
