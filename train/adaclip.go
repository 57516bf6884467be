package train

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/dapobench/dapobench/baselines/adaclip"
	"github.com/dapobench/dapobench/baselines/adaclip/kmeans"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/tokenizer"
	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/grad"
	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
)

// InHSFWeights is AdaCLIP's per-step input of the HSF weights [1, G²]:
// the k-means clustering that decides them runs in Go between a forward
// pass and the step (docs/methods.md#train-adaclip-step).
const InHSFWeights = "hsf_weights"

// AdaCLIP's loss constants (loss.py; docs/methods.md#train-adaclip-loss):
// FocalLoss(gamma=2, smooth=1e-5) without a softmax inside, and
// BinaryDiceLoss with smooth 1 (DiceSmooth).
const (
	adaclipFocalSmooth = 1e-5
	adaclipGamma       = 2
)

// adaclipGraph merges AdaCLIP's towers and appends its loss
// (docs/methods.md#train-adaclip-loss). The learned tensors are graph inputs
// under their checkpoint names; the text part reads the image part's plain
// embedding for its dynamic prompts; the sentences of the step's class
// (text_embeds, text_eot) and the HSF weights are data inputs.
func adaclipGraph(m *clip.Manifest, h *Head, image, text *pb.ModelProto) (*Graph, error) {
	if m.Variant != clip.AdaCLIP {
		return nil, fmt.Errorf("scheme %s needs a %s model, not %s", h.Scheme, clip.AdaCLIP, m.Variant)
	}
	bind := func(model *pb.ModelProto, fixed map[string]string) map[string]string {
		b := map[string]string{}
		for _, in := range model.GetGraph().GetInput() {
			if v, ok := fixed[in.GetName()]; ok {
				b[in.GetName()] = v
			} else {
				b[in.GetName()] = in.GetName() // a learned tensor, shared by name
			}
		}
		return b
	}
	merged, err := Merge("train-"+h.Scheme,
		Part{Model: image, Prefix: "image/", Bind: bind(image, map[string]string{clip.InPixels: InPixels})},
		Part{Model: text, Prefix: "text/", Bind: bind(text, map[string]string{
			clip.InEmbeds: textEmbeds, clip.InEOTIndex: textEOT, clip.InImageEmbedPlain: "image/" + clip.OutImageEmbedPlain})},
	)
	if err != nil {
		return nil, err
	}
	fwd, err := adaclipLoss(merged, m, h)
	if err != nil {
		return nil, err
	}
	return &Graph{Head: h, Manifest: m, Forward: fwd, Learnable: h.Learnable()}, nil
}

// adaclipLoss appends train_one_batch's loss to the merged towers, for one
// image (docs/methods.md#train-adaclip-loss):
//
//	F_l  = patch_l/‖patch_l‖, c = cls/‖cls‖, T = [t_normal; t_abnormal]
//	A_l  = 100·F_l·Tᵀ
//	h    = normalize(w·Σ_l F_l)          (w: the HSF weights, an input)
//	s    = softmax(100·normalize(0.2·h + 0.8·c)·Tᵀ)
//	P_l  = softmax over the classes of bilinear(A_l) (align_corners=True)
//	loss = Focal(s, y) + Σ_l [Focal(P_l, gt) + Dice(P_l[1], gt) + Dice(P_l[0], 1−gt)]
//
// with the dice over the rows of the squeezed 2-D mask. The second
// F.normalize of the text features is left out: on unit rows it changes
// neither the value nor the gradient.
func adaclipLoss(merged *pb.ModelProto, m *clip.Manifest, h *Head) (*pb.ModelProto, error) {
	b, err := grad.Extend(merged)
	if err != nil {
		return nil, err
	}
	s, gr := m.ImageSize, m.Grid
	g2 := int64(gr * gr)
	e := int64(m.EmbedDim)
	one := graph.N(1)
	mask := b.Input(InMask, graph.Float32, one, graph.N(s), graph.N(s))
	label := b.Input(InLabel, graph.Float32, one)
	w := b.Input(InHSFWeights, graph.Float32, one, graph.N(int(g2)))

	norm := func(x string, rank int64) string { // x / x.norm(dim=-1), no eps
		return b.Div(x, b.Sqrt(b.ReduceSum(b.Mul(x, x), true, rank-1)))
	}
	scale := func(x string) string { return b.Mul(x, b.Scalar(x, adaclip.LogitScale)) }

	// Text: per state the mean of the normalised sentences, normalised.
	sent := norm("text/"+clip.OutTextFeatures, 2)
	nn, na := int64(h.adaclipNormal), int64(h.adaclipSentences-h.adaclipNormal)
	tn := norm(b.ReduceMean(b.Slice(sent, 0, 0, nn), true, 0), 2)
	ta := norm(b.ReduceMean(b.Slice(sent, 0, nn, nn+na), true, 0), 2)
	tT := b.Transpose(b.Concat(0, tn, ta), 1, 0) // [E, 2]

	c := norm("image/"+clip.OutImageEmbed, 2)
	var fs []string
	for _, l := range h.Layers {
		fs = append(fs, norm("image/"+clip.OutPatch(l), 3)) // [1, G², E]
	}
	hsf := norm(b.Reshape(b.MatMul(b.Unsqueeze(w, 1), sum(b, fs)), 1, e), 2)
	mix := b.Add(b.Mul(hsf, b.Scalar(hsf, adaclip.HSFAlpha)), b.Mul(c, b.Scalar(c, 1-adaclip.HSFAlpha)))
	score := b.Softmax(scale(b.MatMul(norm(mix, 2), tT)), 1) // [1, 2]

	// The one-hot of a binary target clamped to [ε, 1−ε]: its abnormal
	// column ε + y·(1−2ε), its normal column one minus that.
	focal := func(p0, p1, y string) string {
		eps := adaclipFocalSmooth
		o1 := b.Add(b.Mul(y, b.Scalar(y, 1-2*eps)), b.Scalar(y, eps))
		o0 := b.Sub(b.Scalar(o1, 1), o1)
		pt := b.Add(b.Add(b.Mul(o0, p0), b.Mul(o1, p1)), b.Scalar(p0, eps))
		return b.ReduceMean(b.Mul(b.Pow(b.Sub(b.Scalar(pt, 1), pt), adaclipGamma), b.Neg(b.Log(pt))), false)
	}
	y := b.Unsqueeze(label, 1) // [1, 1]
	imageLoss := focal(b.Slice(score, 1, 0, 1), b.Slice(score, 1, 1, 2), y)

	up, err := newUpsampler(b, gr, s, true)
	if err != nil {
		return nil, err
	}
	gt := b.Unsqueeze(mask, 1) // [1, 1, S, S]
	// BinaryDiceLoss on the squeezed [S, S] mask: N = S rows.
	dice := func(x, t string) string {
		inter := b.ReduceSum(b.Mul(x, t), false, 3)
		den := b.Add(b.Add(b.ReduceSum(x, false, 3), b.ReduceSum(t, false, 3)), b.Scalar(x, DiceSmooth))
		coef := b.Div(b.Add(b.Mul(inter, b.Scalar(x, 2)), b.Scalar(x, DiceSmooth)), den)
		return b.Sub(b.Scalar(x, 1), b.ReduceMean(coef, false))
	}
	var focals, dices []string
	for _, f := range fs {
		a := scale(b.MatMul(f, tT))                                            // [1, G², 2]
		grid := b.Reshape(b.Transpose(a, 0, 2, 1), 1, 2, int64(gr), int64(gr)) // [1, 2, G, G]
		p := b.Softmax(up.apply(b, grid), 1)                                   // [1, 2, S, S]
		p0, p1 := b.Slice(p, 1, 0, 1), b.Slice(p, 1, 1, 2)
		focals = append(focals, focal(p0, p1, gt))
		dices = append(dices, dice(p1, gt), dice(p0, b.Sub(b.Scalar(gt, 1), gt)))
	}
	focalSum, diceSum := sum(b, focals), sum(b, dices)
	local := b.Add(focalSum, diceSum)
	loss := b.Add(imageLoss, local)
	for _, o := range []struct{ v, name string }{
		{loss, OutLoss}, {local, OutLocal}, {imageLoss, OutImage}, {focalSum, OutFocal}, {diceSum, OutDice},
	} {
		b.Output(b.Reshape(o.v, 1), o.name)
	}
	return b.Model()
}

// FusionHook sees the HSF of an AdaCLIP training step (0-based, counted
// over the whole run) before the step trains with it, and returns the
// fusion to train with: the one given, or another made with
// adaclip.FusionOf from the step's unit patch tokens. The official-parity
// test uses it to compare the clustering with the official one and, where
// a float32 tie orders the top patches differently, to continue from the
// official clustering (docs/methods.md#adaclip-hsf-ties).
type FusionHook func(step int, patches [][]float32, f *adaclip.Fusion) (*adaclip.Fusion, error)

// adaclipPass is the forward pass AdaCLIP's step needs before its
// gradient: the model's own image and text graphs with the current
// tensors give the layer logits, from which HSF's top patches and k-means
// clusters, and so the step's HSF weights, are computed in Go
// (docs/methods.md#train-adaclip-step). The k-means draws of step n are the
// n-th fit of numpy's stream seeded 111, as train.py's process draws them
// (its per-epoch validation draws from the same stream; dapobench trains
// without it).
type adaclipPass struct {
	image, text *runner.Session
	man         *clip.Manifest
	h           *Head
	tk          *tokenizer.Tokenizer
	table       clip.Tensor
	stream      *kmeans.Stream
	fusion      FusionHook

	mu        sync.Mutex
	sentences map[string]*adaclip.TextInputs // by class name
}

func newAdaCLIPPass(ctx context.Context, rt *runner.Runtime, dir string, m *clip.Manifest, h *Head, table clip.Tensor, hook FusionHook) (*adaclipPass, error) {
	tk, err := tokenizer.New()
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	p := &adaclipPass{man: m, h: h, tk: tk, table: table, sentences: map[string]*adaclip.TextInputs{}, fusion: hook,
		stream: kmeans.NewStream(adaclip.KMeansSeed, adaclip.TopK(m.Grid*m.Grid), kmeans.Options{K: adaclip.Clusters, First: h.adaclipFirst})}
	if p.image, err = rt.Load(ctx, m.Path(dir, "image")); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if p.text, err = rt.Load(ctx, m.Path(dir, "text")); err != nil {
		p.image.Close()
		return nil, fmt.Errorf("train: %w", err)
	}
	return p, nil
}

func (p *adaclipPass) close() error { return errors.Join(p.image.Close(), p.text.Close()) }

// textInputs are the class's sentences, tokenised once.
func (p *adaclipPass) textInputs(class string) (*adaclip.TextInputs, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.sentences[class]; ok {
		return t, nil
	}
	t, err := adaclip.NewTextInputs(p.tk, p.table, class)
	if err != nil {
		return nil, err
	}
	p.sentences[class] = t
	return t, nil
}

// prepare completes a step's feeds (which hold the pixels, mask, label
// and the current tensors): the sentences of the image's class and the
// HSF weights of the forward pass, with the draws of the run's step number
// (Adam's step count).
func (p *adaclipPass) prepare(ctx context.Context, st *State, data *trainingSet, batch []int, feeds map[string]runner.Tensor) error {
	if len(batch) != 1 {
		return fmt.Errorf("adaclip trains one image per step, got %d", len(batch))
	}
	delete(feeds, InClass)
	sample := data.examples[batch[0]].sample
	text, err := p.textInputs(sample.CategoryName)
	if err != nil {
		return err
	}
	feeds[textEmbeds] = runner.Tensor{Shape: shape64(text.Embeds.Shape), Float32: text.Embeds.Data}
	feeds[textEOT] = runner.Tensor{Shape: []int64{int64(len(text.EOT))}, Int64: text.EOT}

	in := map[string]runner.Tensor{}
	for _, info := range p.image.Inputs() {
		in[info.Name] = feeds[info.Name]
	}
	out, err := p.image.Run(ctx, in)
	if err != nil {
		return fmt.Errorf("forward pass: image tower: %w", err)
	}
	plain := out[clip.OutImageEmbedPlain]
	tin := map[string]runner.Tensor{
		clip.InEmbeds: feeds[textEmbeds], clip.InEOTIndex: feeds[textEOT], clip.InImageEmbedPlain: plain,
	}
	for _, info := range p.text.Inputs() {
		if _, ok := tin[info.Name]; !ok {
			tin[info.Name] = feeds[info.Name]
		}
	}
	tout, err := p.text.Run(ctx, tin)
	if err != nil {
		return fmt.Errorf("forward pass: text tower: %w", err)
	}
	e := p.man.EmbedDim
	t, err := adaclip.TextFeatures(tout[clip.OutTextFeatures].Float32, text.Normal, e)
	if err != nil {
		return err
	}
	raw := make([][]float32, len(p.h.Layers))
	for k, l := range p.h.Layers {
		raw[k] = out[clip.OutPatch(l)].Float32
	}
	patches, logits, err := adaclip.PatchLogits(raw, t, e)
	if err != nil {
		return err
	}
	n := st.Adam.Step
	if p.h.adaclipPerImage {
		n = 0
	}
	d, err := p.stream.At(n)
	if err != nil {
		return err
	}
	f, err := adaclip.HSF(patches, logits, e, p.h.adaclipFirst, d)
	if err != nil {
		return fmt.Errorf("%s: %w", sample.RelImage, err)
	}
	if p.fusion != nil {
		if f, err = p.fusion(st.Adam.Step, patches, f); err != nil {
			return fmt.Errorf("%s: %w", sample.RelImage, err)
		}
	}
	feeds[InHSFWeights] = runner.Tensor{Shape: []int64{1, int64(len(f.Weights))}, Float32: slices.Clone(f.Weights)}
	return nil
}
