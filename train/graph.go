package train

import (
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/dapobench/dapobench/baselines/anomalyclip"
	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/tokenizer"
	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/grad"
	"github.com/dapobench/dapobench/onnx/graph"
)

// Names of the training graph's data inputs and loss outputs. The learned
// tensors are inputs under their checkpoint names (checkpoints.NormalCtx,
// …), their gradients outputs named by GradName.
const (
	InPixels = clip.InPixels // float32 [batch, 3, S, S]
	// InMask is the binary defect mask at S×S, the resized mask read with
	// the run's MaskRule.
	InMask = "mask" // float32 [batch, S, S]
	// InClass is each image's pixel class: 0 normal, 1..K its defect.
	InClass = "pixel_class" // int64 [batch]
	// InLabel is the image label, 0 normal or 1 anomalous.
	InLabel = "label" // float32 [batch]

	// OutLoss is local + image, the loss the optimizer follows.
	OutLoss = "loss"
	// OutLocal is LocalWeight·Σ_layers (focal + both dice terms).
	OutLocal = "loss_local"
	// OutImage is the image-level cross-entropy.
	OutImage = "loss_image"
	// OutFocal and OutDice are the unweighted sums over layers of the
	// focal terms and of the two dice terms.
	OutFocal = "loss_focal"
	OutDice  = "loss_dice"
)

// Terms lists the loss outputs a training step returns besides OutLoss.
func Terms() []string { return []string{OutLocal, OutImage, OutFocal, OutDice} }

// GradName names the gradient output of a learned tensor.
func GradName(x string) string { return "grad_" + x }

// Graph is the forward training model of one head: the text and image
// towers merged, the prompt learner in front of them and the loss after.
type Graph struct {
	Head     *Head
	Manifest *clip.Manifest
	// Forward computes OutLoss and the Terms from the data inputs and the
	// Learnable inputs; grad.Backward turns it into a step.
	Forward   *pb.ModelProto
	Learnable []string
}

// ReadGraph reads a model directory's towers and token table and builds
// the training graph of head h.
func ReadGraph(dir string, m *clip.Manifest, h *Head) (*Graph, error) {
	read := func(key string) (*pb.ModelProto, error) {
		data, err := os.ReadFile(m.Path(dir, key))
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		var mp pb.ModelProto
		if err := proto.Unmarshal(data, &mp); err != nil {
			return nil, fmt.Errorf("train: %s: %w", filepath.Base(m.Path(dir, key)), err)
		}
		return &mp, nil
	}
	image, err := read("image")
	if err != nil {
		return nil, err
	}
	if h.Linear() {
		g, err := buildLinearGraph(m, h, image)
		if err != nil {
			return nil, fmt.Errorf("train: %s graph: %w", h.Variant, err)
		}
		return g, nil
	}
	text, err := read("text")
	if err != nil {
		return nil, err
	}
	table, err := m.ReadTokenEmbedding(dir)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	tk, err := tokenizer.New()
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return BuildGraph(m, h, image, text, table, tk)
}

// BuildGraph builds the training graph from the towers of a model of
// manifest m (image.onnx and text.onnx as read from its directory), its
// token-embedding table and the tokenizer.
func BuildGraph(m *clip.Manifest, h *Head, image, text *pb.ModelProto, table clip.Tensor, tk *tokenizer.Tokenizer) (*Graph, error) {
	g, err := buildGraph(m, h, image, text, table, tk)
	if err != nil {
		return nil, fmt.Errorf("train: %s graph: %w", h.Variant, err)
	}
	return g, nil
}

func buildGraph(m *clip.Manifest, h *Head, image, text *pb.ModelProto, table clip.Tensor, tk *tokenizer.Tokenizer) (*Graph, error) {
	if h.Scheme == checkpoints.AdaCLIP {
		return adaclipGraph(m, h, image, text)
	}
	if h.Linear() {
		return buildLinearGraph(m, h, image)
	}
	want := clip.DAPO
	if h.Scheme == checkpoints.AnomalyCLIP {
		want = clip.AnomalyCLIP
	}
	if m.Variant != want {
		return nil, fmt.Errorf("scheme %s needs a %s model, not %s", h.Scheme, want, m.Variant)
	}
	prompts, err := promptLearner(m, h, table, tk)
	if err != nil {
		return nil, err
	}
	imageBind := map[string]string{clip.InPixels: InPixels}
	if h.Scheme == checkpoints.DAPO {
		imageBind[clip.InVisualPrompts] = checkpoints.VisualPrompts
	}
	merged, err := Merge("train-"+h.Scheme,
		Part{Model: prompts, Bind: map[string]string{}},
		Part{Model: text, Prefix: "text/", Bind: map[string]string{
			clip.InEmbeds: textEmbeds, clip.InEOTIndex: textEOT, clip.InDeepTokens: checkpoints.TextDeep}},
		Part{Model: image, Prefix: "image/", Bind: imageBind},
	)
	if err != nil {
		return nil, err
	}
	fwd, err := lossHead(merged, m, h)
	if err != nil {
		return nil, err
	}
	return &Graph{Head: h, Manifest: m, Forward: fwd, Learnable: h.Learnable()}, nil
}

// Values the prompt learner hands to the text tower.
const (
	textEmbeds = "text_embeds"
	textEOT    = "text_eot"
)

// promptLearner is the graph that assembles the text tower's token
// embeddings: the constant embeddings of each template's start token and
// of everything after its context (words, EOT, padding) around the
// learned context, as the official prompt learners concatenate prefix,
// context and suffix (docs/methods.md#dapo-prompt-assembly,
// docs/methods.md#anomalyclip-prompts).
func promptLearner(m *clip.Manifest, h *Head, table clip.Tensor, tk *tokenizer.Tokenizer) (*pb.ModelProto, error) {
	b, err := grad.Extend(graph.New(graph.Float32).Model("prompt_learner", nil))
	if err != nil {
		return nil, err
	}
	dt := m.Arch.TextWidth
	var texts []string
	var ctxLen, groups int
	if h.Scheme == checkpoints.AnomalyCLIP {
		t := anomalyclip.Texts()
		texts, ctxLen, groups = t[:], anomalyclip.ContextTokens, 1
	} else {
		texts, ctxLen, groups = h.Prompts.Texts(), h.Prompts.Context, h.Prompts.Groups
	}
	classes := len(texts) / groups
	embeds, eot, err := clip.TextInputs(tk, table, texts)
	if err != nil {
		return nil, err
	}
	ctxLen64 := int64(ctxLen)
	const l77 = tokenizer.ContextLength
	rest := l77 - 1 - ctxLen
	row := func(n, p int) []float32 { return embeds.Data[(n*l77+p)*dt : (n*l77+p+1)*dt] }
	var out string
	if h.Scheme == checkpoints.DAPO && h.Prompts.Handcrafted != "" {
		out = b.Const(graph.Float32, []int{len(texts), l77, dt}, widen(embeds.Data)...)
	} else {
		// The learned context must land exactly on the placeholder tokens.
		x := tk.Encode("X")
		for _, text := range texts {
			ids, err := tk.Tokenize(text, false)
			if err != nil {
				return nil, err
			}
			for p := 1; p <= ctxLen; p++ {
				if len(x) != 1 || ids[p] != int64(x[0]) {
					return nil, fmt.Errorf("prompt %q: token %d is not the context placeholder", text, p)
				}
			}
		}
		var suffix []float64
		for c := range classes {
			for p := 1 + ctxLen; p < l77; p++ {
				suffix = append(suffix, widen(row(c*groups, p))...)
			}
		}
		ctxShape := []graph.Dim{graph.N(ctxLen), graph.N(dt)}
		if h.Scheme == checkpoints.DAPO {
			ctxShape = append([]graph.Dim{graph.N(checkpoints.DAPOGroups)}, ctxShape...)
		}
		normal := b.Input(checkpoints.NormalCtx, graph.Float32, ctxShape...)
		abnormal := b.Input(checkpoints.AbnormalCtx, graph.Float32, ctxShape...)
		c64, g64, d64 := int64(classes), int64(groups), int64(dt)
		if h.Scheme == checkpoints.AnomalyCLIP {
			// [normal; abnormal] context between each prompt's SOT and suffix.
			ctx := b.Concat(0, b.Unsqueeze(normal, 0), b.Unsqueeze(abnormal, 0))
			pre := b.Const(graph.Float32, []int{classes, 1, dt}, widen(append(append([]float32(nil), row(0, 0)...), row(1, 0)...))...)
			suf := b.Const(graph.Float32, []int{classes, rest, dt}, suffix...)
			out = b.Concat(1, pre, ctx, suf)
		} else {
			// DAPO: group e of the normal context for the normal prompt,
			// group e of the abnormal context, shared by every word, for
			// the others; rows class-major, groups inner
			// (docs/methods.md#dapo-prompt-assembly).
			if groups < checkpoints.DAPOGroups {
				normal, abnormal = b.Slice(normal, 0, 0, g64), b.Slice(abnormal, 0, 0, g64)
			}
			ctx := b.Concat(0, b.Unsqueeze(normal, 0),
				b.Expand(b.Unsqueeze(abnormal, 0), b.Ints(false, c64-1, g64, ctxLen64, d64)))
			pre := b.Expand(b.Const(graph.Float32, []int{1, 1, 1, dt}, widen(row(0, 0))...), b.Ints(false, c64, g64, 1, d64))
			suf := b.Expand(b.Const(graph.Float32, []int{classes, 1, rest, dt}, suffix...), b.Ints(false, c64, g64, int64(rest), d64))
			out = b.Reshape(b.Concat(2, pre, ctx, suf), c64*g64, l77, d64)
		}
	}
	b.Output(out, textEmbeds)
	b.Output(b.Identity(b.Ints(false, eot...)), textEOT)
	return b.Model()
}

func widen(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// lossHead appends the scheme's head and loss to the merged towers
// (docs/methods.md#train-dapo-loss, docs/methods.md#train-anomalyclip-loss).
func lossHead(merged *pb.ModelProto, m *clip.Manifest, h *Head) (*pb.ModelProto, error) {
	b, err := grad.Extend(merged)
	if err != nil {
		return nil, err
	}
	batch := graph.Sym("batch")
	s, gr := m.ImageSize, m.Grid
	mask := b.Input(InMask, graph.Float32, batch, graph.N(s), graph.N(s))
	class := b.Input(InClass, graph.Int64, batch)
	label := b.Input(InLabel, graph.Float32, batch)

	// x / ‖x‖ over the last axis (torch's x / x.norm(dim=-1), no epsilon).
	norm := func(x string, rank int64) string {
		return b.Div(x, b.Sqrt(b.ReduceSum(b.Mul(x, x), true, rank-1)))
	}
	tau := func(x string) string { return b.Div(x, b.Scalar(x, Temperature)) }
	c := h.Classes()
	c64 := int64(c)

	// Text: class vectors T [C, De] (DAPO: mean over the E groups, then
	// normalised) and the image-level pair [t_normal; a].
	tf := "text/" + clip.OutTextFeatures
	var classT, pair string
	if h.Scheme == checkpoints.DAPO {
		g := int64(h.Prompts.Groups)
		classT = norm(b.ReduceMean(b.Reshape(tf, c64, g, -1), false, 1), 2)
		// a = normalize(mean of the defect embeddings)
		// (docs/methods.md#dapo-image-score).
		abn := norm(b.ReduceMean(b.Slice(classT, 0, 1, c64), true, 0), 2)
		pair = b.Concat(0, b.Slice(classT, 0, 0, 1), abn)
	} else {
		classT = norm(tf, 2)
		pair = classT
	}

	// Image level: CE([f·t_normal, f·a]/τ, label).
	f := norm("image/"+clip.OutImageEmbed, 2)
	ls := b.LogSoftmax(tau(b.MatMul(f, b.Transpose(pair, 1, 0))), 1)
	y := b.Unsqueeze(label, 1)
	onehot := b.Concat(1, b.Sub(b.Scalar(y, 1), y), y)
	imageLoss := b.Neg(b.ReduceMean(b.ReduceSum(b.Mul(onehot, ls), false, 1), false))

	// Pixel level, per feature layer.
	up, err := newUpsampler(b, gr, s, h.AlignCorners)
	if err != nil {
		return nil, err
	}
	m4 := b.Unsqueeze(mask, 1) // [B, 1, S, S]
	g2 := int64(gr * gr)
	idx := b.Expand(b.Reshape(class, -1, 1, 1), b.Ints(false, 1, g2, 1))
	var focals, dices []string
	for j, layer := range h.Layers {
		p := "image/" + clip.OutPatch(layer)
		var x string
		if h.Scheme == checkpoints.DAPO {
			i := h.Adapters[j]
			w := b.Input(checkpoints.AdapterWeight(i), graph.Float32, graph.N(m.Arch.EmbedDim), graph.N(m.Arch.VisionWidth))
			bias := b.Input(checkpoints.AdapterBias(i), graph.Float32, graph.N(m.Arch.EmbedDim))
			x = b.Add(b.MatMul(p, b.Transpose(w, 1, 0)), bias) // LinearAdapter fc.i
		} else {
			x = b.Slice(p, 1, 1, 1+g2) // drop CLS
		}
		probs := b.Softmax(tau(b.MatMul(norm(x, 3), b.Transpose(classT, 1, 0))), 2) // [B, G², C]
		focal, diceN, diceA := segmentationLoss(b, probs, m4, idx, up, c)
		focals = append(focals, focal)
		dices = append(dices, diceN, diceA)
	}
	focal := sum(b, focals)
	dice := sum(b, dices)
	local := b.Mul(b.Add(focal, dice), b.Scalar(focal, LocalWeight))
	loss := b.Add(local, imageLoss)
	for _, o := range []struct{ v, name string }{
		{loss, OutLoss}, {local, OutLocal}, {imageLoss, OutImage}, {focal, OutFocal}, {dice, OutDice},
	} {
		b.Output(b.Reshape(o.v, 1), o.name)
	}
	return b.Model()
}

func sum(b *grad.Builder, xs []string) string {
	if len(xs) == 1 {
		return xs[0]
	}
	return b.Sum(xs...)
}

// upsampler resizes [B, k, G, G] grids to [B, k, S, S] as two MatMuls with
// fixed interpolation matrices, U·X·Vᵀ, whose gradient is the MatMul rule.
// The matrices hold exactly the weights the evaluation's bilinear
// resampling (bench/postproc, PyTorch's kernel) applies.
type upsampler struct {
	rows, colsT string // U [S, G] and Vᵀ [G, S]
	g           int
}

func newUpsampler(b *grad.Builder, g, s int, alignCorners bool) (*upsampler, error) {
	u, err := interpolationMatrix(g, s, alignCorners)
	if err != nil {
		return nil, err
	}
	ut := make([]float64, len(u))
	for i := range s {
		for j := range g {
			ut[j*s+i] = u[i*g+j]
		}
	}
	return &upsampler{rows: b.Const(graph.Float32, []int{s, g}, u...), colsT: b.Const(graph.Float32, []int{g, s}, ut...), g: g}, nil
}

func (u *upsampler) apply(b *grad.Builder, x string) string {
	return b.MatMul(b.MatMul(u.rows, x), u.colsT)
}

// interpolationMatrix is the [s, g] matrix of 1-D bilinear resizing from g
// to s samples: row i holds the weights of output i, read off the
// evaluation's resampler by resizing unit impulses.
func interpolationMatrix(g, s int, alignCorners bool) ([]float64, error) {
	bl, err := postproc.NewBilinear(g, 1, s, 1, alignCorners)
	if err != nil {
		return nil, err
	}
	src := make([]float32, g*g)
	for j := range g {
		src[j*g+j] = 1 // channel j: impulse at row j
	}
	dst := make([]float32, g*s)
	if err := bl.Apply(postproc.Grid{C: g, H: s, W: 1, Data: dst}, postproc.Grid{C: g, H: g, W: 1, Data: src}); err != nil {
		return nil, err
	}
	u := make([]float64, s*g)
	for j := range g {
		for i := range s {
			u[i*g+j] = float64(dst[j*s+i])
		}
	}
	return u, nil
}

// segmentationLoss is the pixel loss of one layer on its class
// probabilities probs [B, G², C] (loss.py; docs/methods.md#train-dapo-loss,
// docs/methods.md#train-focal-loss, docs/methods.md#train-dice-loss):
//
//	Focal(S, gt) + Dice(S[:,0], 1−gt_b) + Dice(Σ_{c≥1} S[:,c], gt_b)
//
// with S the probabilities upsampled to S×S. Every image's defect pixels
// share one class k (its pixel class; 0 for a normal image, whose mask is
// empty), so the focal loss's pt = Σ_c onehot_c·S_c with the one-hot
// clamped to [ε/(C−1), 1−ε] is
//
//	pt = (1−ε)·S_gt + ε/(C−1)·(Σ_c S_c − S_gt) + ε,  S_gt = (1−m)·S_0 + m·S_k
//
// and upsampling is linear, so only three maps are upsampled: S_0, Σ_{c≥1}
// S_c and S_k, not all C. The values are those of the official loss up to
// float rounding; the memory is that of three maps per image.
func segmentationLoss(b *grad.Builder, probs, m4, idx string, up *upsampler, c int) (focal, diceN, diceA string) {
	c64 := int64(c)
	p0 := b.Slice(probs, 2, 0, 1)
	pa := b.ReduceSum(b.Slice(probs, 2, 1, c64), true, 2)
	pk := b.GatherElements(probs, idx, 2)
	grid := b.Transpose(b.Concat(2, p0, pa, pk), 0, 2, 1)                // [B, 3, G²]
	maps := up.apply(b, b.Reshape(grid, 0, 3, int64(up.g), int64(up.g))) // [B, 3, S, S]
	s0, sa, sk := b.Slice(maps, 1, 0, 1), b.Slice(maps, 1, 1, 2), b.Slice(maps, 1, 2, 3)
	sgt := b.Add(s0, b.Mul(m4, b.Sub(sk, s0)))
	all := b.Add(s0, sa)
	eps := FocalSmooth
	off := eps / float64(c-1)
	pt := b.Add(b.Add(b.Mul(sgt, b.Scalar(sgt, 1-eps)), b.Mul(b.Sub(all, sgt), b.Scalar(sgt, off))), b.Scalar(sgt, eps))
	focal = b.ReduceMean(b.Mul(b.Pow(b.Sub(b.Scalar(pt, 1), pt), FocalGamma), b.Neg(b.Log(pt))), false)
	dice := func(x, y string) string {
		inter := b.ReduceSum(b.Mul(x, y), false, 1, 2, 3)
		den := b.Add(b.Add(b.ReduceSum(x, false, 1, 2, 3), b.ReduceSum(y, false, 1, 2, 3)), b.Scalar(x, DiceSmooth))
		coef := b.Div(b.Add(b.Mul(inter, b.Scalar(x, 2)), b.Scalar(x, DiceSmooth)), den)
		return b.Sub(b.Scalar(x, 1), b.ReduceMean(coef, false))
	}
	diceN = dice(s0, b.Sub(b.Scalar(m4, 1), m4))
	diceA = dice(sa, m4)
	return focal, diceN, diceA
}
