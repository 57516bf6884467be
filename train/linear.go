package train

import (
	"context"
	"fmt"

	"github.com/dapobench/dapobench/baselines/aprilgan"
	"github.com/dapobench/dapobench/baselines/multiads"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/grad"
	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Inputs of APRIL-GAN's and MultiADS' training graphs besides pixels, mask
// and pixel class.
const (
	// InText is every image's class vectors, those of its category:
	// float32 [batch, C, De], unit rows, normal first.
	InText = "class_text"
	// InDiceRows is 1 when an APRIL-GAN batch holds one image, else 0:
	// train.py's gt.squeeze() then also drops the batch axis, and its dice
	// loss takes the 518 rows of the map as 518 samples
	// (docs/methods.md#train-aprilgan-loss). float32 [1].
	InDiceRows = "dice_rows"
)

// Constants of APRIL-GAN's and MultiADS' train.py
// (docs/methods.md#train-aprilgan-loss, docs/methods.md#train-multiads-loss).
const (
	// aprilganScale multiplies the normalised tokens before the matmul
	// with the class vectors (`100.0 * patch_tokens @ text_features`).
	aprilganScale = 100
	// multiadsTemperature divides the cosine logits (`(p @ T) / 0.01`).
	multiadsTemperature = 0.01
	// multiadsDiceTarget multiplies the dice targets of MultiADS' loss.py
	// BinaryDiceLoss (`targets.view(N, -1) * 5.0`), in the union term too.
	multiadsDiceTarget = 5
	// multiadsHalf halves each layer's focal + dice (train.py line 202).
	multiadsHalf = 2
)

// linearHead resolves an APRIL-GAN or MultiADS variant for training on a
// dataset and returns the layers its loss reads (nil: every feature
// layer).
func linearHead(h *Head, variant, dataset string) ([]int, error) {
	h.AlignCorners = true
	switch h.Scheme {
	case checkpoints.APRILGAN:
		o, err := aprilgan.Parse(variant, aprilgan.Options{})
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		h.Variant = o.Name
		if dataset != loaders.MVTec && dataset != loaders.VisA {
			// train.py: MVTecDataset for mvtec, VisaDataset otherwise
			// (docs/methods.md#train-aprilgan-recipe).
			return nil, fmt.Errorf("train: aprilgan: the official train.py reads MVTec-AD or VisA, not %q", dataset)
		}
		h.classes = 2
		h.classOf = func(loaders.Sample) (int, error) { return 1, nil }
		return o.Layers, nil
	case checkpoints.MultiADS:
		o, err := multiads.Parse(variant, multiads.Options{})
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		h.Variant = o.Name
		t, err := multiads.ReadTables()
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		n, gt, err := t.TrainClasses(dataset)
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		h.classes = n
		h.classOf = func(s loaders.Sample) (int, error) {
			k, ok := gt[s.DefectType]
			if !ok || k < 0 || k >= n {
				return 0, fmt.Errorf("defect type %q has no class in MultiADS' gt_defect of %s", s.DefectType, dataset)
			}
			return k, nil
		}
		return nil, nil
	}
	return nil, fmt.Errorf("train: %s is not a linear-layer scheme", h.Scheme)
}

// classTexts encodes, for every category of the training set, the class
// vectors the official trainer computes once before the first epoch
// (encode_text_with_prompt_ensemble over get_cls_names()), as rows
// [C·De].
func classTexts(ctx context.Context, rt *runner.Runtime, dir string, h *Head, data *trainingSet) (map[string][]float32, error) {
	m, err := bench.OpenModel(ctx, rt, dir)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer m.Close()
	out := map[string][]float32{}
	for _, e := range data.examples {
		s := e.sample
		if _, ok := out[s.Category]; ok {
			continue
		}
		var t postproc.Mat
		switch h.Scheme {
		case checkpoints.APRILGAN:
			t, err = aprilgan.ClassVectors(ctx, m, s.CategoryName)
		default:
			t, err = multiads.TrainClassVectors(ctx, m, h.Dataset, s.CategoryName)
		}
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		if t.Rows != h.Classes() || t.Cols != m.Manifest.EmbedDim {
			return nil, fmt.Errorf("train: %s: %d×%d class vectors, want %d×%d", s.Category, t.Rows, t.Cols, h.Classes(), m.Manifest.EmbedDim)
		}
		out[s.Category] = t.Data
	}
	return out, nil
}

// buildLinearGraph is the training graph of APRIL-GAN and MultiADS: the
// frozen image tower, the linear layers and the loss; the class vectors
// are an input.
func buildLinearGraph(m *clip.Manifest, h *Head, image *pb.ModelProto) (*Graph, error) {
	if want := clip.Variant(h.Scheme); m.Variant != want {
		return nil, fmt.Errorf("scheme %s needs a %s model, not %s", h.Scheme, want, m.Variant)
	}
	merged, err := Merge("train-"+h.Scheme, Part{Model: image, Prefix: "image/", Bind: map[string]string{clip.InPixels: InPixels}})
	if err != nil {
		return nil, err
	}
	fwd, err := linearLoss(merged, m, h)
	if err != nil {
		return nil, err
	}
	return &Graph{Head: h, Manifest: m, Forward: fwd, Learnable: h.Learnable()}, nil
}

// linearLoss appends the linear layers and the official loss to the image
// tower (APRIL-GAN train.py lines 119-137; MultiADS train.py lines
// 182-205): per feature layer, p = fc(tokens[:, 1:]) / ‖·‖, logits against
// the class vectors, upsampled bilinearly (align_corners=True) on the
// logits, softmax over the classes, then
//
//	APRIL-GAN  Σ_l Focal(S_l, gt) + Dice(S_l[:,1], gt)
//	MultiADS   (1/L) Σ_l (Focal(S_l, type) + Dice(Σ_{c≥1} S_l[:,c], 5·gt)) / 2
func linearLoss(merged *pb.ModelProto, m *clip.Manifest, h *Head) (*pb.ModelProto, error) {
	b, err := grad.Extend(merged)
	if err != nil {
		return nil, err
	}
	batch := graph.Sym("batch")
	s, gr, de, dv := m.ImageSize, m.Grid, m.Arch.EmbedDim, m.Arch.VisionWidth
	c := h.Classes()
	c64, g2 := int64(c), int64(gr*gr)
	april := h.Scheme == checkpoints.APRILGAN
	mask := b.Input(InMask, graph.Float32, batch, graph.N(s), graph.N(s))
	class := b.Input(InClass, graph.Int64, batch)
	text := b.Input(InText, graph.Float32, batch, graph.N(c), graph.N(de))
	var rows string
	if april {
		rows = b.Input(InDiceRows, graph.Float32, graph.N(1))
	}
	tT := b.Transpose(text, 0, 2, 1) // [B, De, C], test.py's text_features
	up, err := newUpsampler(b, gr, s, h.AlignCorners)
	if err != nil {
		return nil, err
	}
	m4 := b.Unsqueeze(mask, 1) // [B, 1, S, S]
	idx := b.Expand(b.Reshape(class, -1, 1, 1, 1), b.Ints(false, 1, 1, int64(s), int64(s)))
	norm := func(x string) string { return b.Div(x, b.Sqrt(b.ReduceSum(b.Mul(x, x), true, 2))) }
	var focals, dices, terms []string
	for j, layer := range h.Layers {
		i := h.Adapters[j]
		w := b.Input(checkpoints.AdapterWeight(i), graph.Float32, graph.N(de), graph.N(dv))
		bias := b.Input(checkpoints.AdapterBias(i), graph.Float32, graph.N(de))
		p := b.Slice("image/"+clip.OutPatch(layer), 1, 1, 1+g2)   // CLS dropped, model.py
		x := norm(b.Add(b.MatMul(p, b.Transpose(w, 1, 0)), bias)) // [B, G², De]
		var logits string
		if april {
			logits = b.MatMul(b.Mul(x, b.Scalar(x, aprilganScale)), tT)
		} else {
			logits = b.Div(b.MatMul(x, tT), b.Scalar(x, multiadsTemperature))
		}
		grid := b.Reshape(b.Transpose(logits, 0, 2, 1), 0, c64, int64(gr), int64(gr))
		probs := b.Softmax(up.apply(b, grid), 1) // [B, C, S, S]
		focal := focalLoss(b, probs, m4, idx, c)
		var dice string
		if april {
			x := b.Slice(probs, 1, 1, 2)
			dice = b.Add(b.Mul(rows, diceLoss(b, x, m4, 3)), b.Mul(b.Sub(b.Scalar(rows, 1), rows), diceLoss(b, x, m4, 1, 2, 3)))
		} else {
			x := b.ReduceSum(b.Slice(probs, 1, 1, c64), true, 1)
			dice = diceLoss(b, x, b.Mul(m4, b.Scalar(m4, multiadsDiceTarget)), 1, 2, 3)
		}
		focals, dices = append(focals, focal), append(dices, dice)
		if april {
			terms = append(terms, focal, dice)
		} else {
			terms = append(terms, b.Div(b.Add(focal, dice), b.Scalar(focal, multiadsHalf)))
		}
	}
	// The official sums run layer by layer, in this order.
	loss := terms[0]
	for _, t := range terms[1:] {
		loss = b.Add(loss, t)
	}
	if !april {
		loss = b.Div(loss, b.Scalar(loss, float64(len(h.Layers))))
	}
	zero := b.Mul(loss, b.Scalar(loss, 0)) // no image-level term
	for _, o := range []struct{ v, name string }{
		{loss, OutLoss}, {loss, OutLocal}, {zero, OutImage}, {sum(b, focals), OutFocal}, {sum(b, dices), OutDice},
	} {
		b.Output(b.Reshape(o.v, 1), o.name)
	}
	return b.Model()
}

// focalLoss is loss.py's FocalLoss (γ = 2, smooth 1e-5, no α) of class
// probabilities probs [B, C, S, S] against the target class of every
// pixel, idx [B, 1, S, S] where m4 is 1 and class 0 elsewhere:
// pt = Σ_c clamp(onehot)_c·S_c + ε, mean of −(1−pt)²·log pt over all
// pixels (docs/methods.md#train-focal-loss).
func focalLoss(b *grad.Builder, probs, m4, idx string, c int) string {
	s0 := b.Slice(probs, 1, 0, 1)
	sk := b.GatherElements(probs, idx, 1)
	st := b.Add(s0, b.Mul(m4, b.Sub(sk, s0)))
	all := b.ReduceSum(probs, true, 1)
	eps := FocalSmooth
	off := eps / float64(c-1)
	pt := b.Add(b.Add(b.Mul(st, b.Scalar(st, 1-eps)), b.Mul(b.Sub(all, st), b.Scalar(st, off))), b.Scalar(st, eps))
	return b.ReduceMean(b.Mul(b.Pow(b.Sub(b.Scalar(pt, 1), pt), FocalGamma), b.Neg(b.Log(pt))), false)
}

// diceLoss is loss.py's BinaryDiceLoss of x against targets y (same
// shape), the sums taken over axes: 1 − mean of (2Σxy+1)/(Σx+Σy+1)
// (docs/methods.md#train-dice-loss).
func diceLoss(b *grad.Builder, x, y string, axes ...int64) string {
	inter := b.ReduceSum(b.Mul(x, y), false, axes...)
	den := b.Add(b.Add(b.ReduceSum(x, false, axes...), b.ReduceSum(y, false, axes...)), b.Scalar(x, DiceSmooth))
	coef := b.Div(b.Add(b.Mul(inter, b.Scalar(x, 2)), b.Scalar(x, DiceSmooth)), den)
	return b.Sub(b.Scalar(x, 1), b.ReduceMean(coef, false))
}
