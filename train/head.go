package train

import (
	"fmt"
	"maps"
	"slices"

	"github.com/dapobench/dapobench/baselines/adaclip"
	"github.com/dapobench/dapobench/baselines/adaclip/kmeans"
	"github.com/dapobench/dapobench/baselines/anomalyclip"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/dapo"
	"github.com/dapobench/dapobench/loaders"
)

// Loss constants of the official code, shared by DAPO (loss.py, train.py;
// docs/methods.md#train-dapo-loss) and AnomalyCLIP (loss.py, train.py;
// docs/methods.md#train-anomalyclip-loss).
const (
	// Temperature divides every cosine logit (τ = 0.07, hard-coded).
	Temperature = dapo.Temperature
	// FocalGamma is FocalLoss's γ.
	FocalGamma = 2
	// FocalSmooth is FocalLoss's smooth: the one-hot is clamped to
	// [smooth/(C−1), 1−smooth] and added to pt before the logarithm.
	FocalSmooth = 1e-5
	// DiceSmooth is BinaryDiceLoss's smooth: 1 − (2Σxy+1)/(Σx+Σy+1).
	DiceSmooth = 1
	// LocalWeight scales the pixel terms (DAPO weight_factor = 4,
	// AnomalyCLIP lam = 4); the image cross-entropy has weight 1
	// (DAPO weight_factor_2).
	LocalWeight = 4
)

// Head says what one scheme variant learns and how its loss reads the
// data: the prompt learner, the feature layers the pixel loss sums over,
// the upsampling, and the pixel class of each training image.
type Head struct {
	// Scheme is checkpoints.DAPO or checkpoints.AnomalyCLIP.
	Scheme string
	// Variant is the variant's name as the scheme's --variant knows it.
	Variant string
	// Prompts is DAPO's prompt set (words, E, l, handcrafted context);
	// unused for AnomalyCLIP, whose two prompts are fixed.
	Prompts dapo.PromptSet
	// Layers are the 1-indexed feature layers the pixel loss sums over,
	// and Adapters DAPO's adapter index of each (its position among the
	// model's feature layers).
	Layers, Adapters []int
	// AlignCorners is the bilinear upsampling of the class maps: true for
	// DAPO (train.py compute_similarity_map) and AdaCLIP, false for
	// AnomalyCLIP (get_similarity_map; docs/methods.md#train-upsample).
	AlignCorners bool
	// Dataset is the training dataset and classOf the pixel class of an
	// anomalous sample (1..K); normal samples are class 0.
	Dataset string
	classOf func(s loaders.Sample) (int, error)
	// adaclipLearnable are AdaCLIP's trained tensors: all but the never
	// used text_prompter.static_prompts.0 (docs/methods.md#adaclip-adamw).
	adaclipLearnable []string
	// adaclipNormal and adaclipSentences count AdaCLIP's normal and all
	// sentences per class; adaclipFirst and adaclipPerImage are its k-means
	// seeding (the variant's).
	adaclipNormal, adaclipSentences int
	adaclipFirst                    kmeans.FirstCentre
	adaclipPerImage                 bool
	// classes is the number of classes of APRIL-GAN's and MultiADS'
	// handcrafted ensembles (2; MultiADS' training ensemble's groups).
	classes int
}

// Linear reports whether the head learns only linear layers on fixed,
// handcrafted class vectors (APRIL-GAN, MultiADS;
// docs/methods.md#train-aprilgan-recipe, docs/methods.md#train-multiads-recipe).
func (h *Head) Linear() bool { return checkpoints.LinearOnly(h.Scheme) }

// Classes is the number of softmax classes of the pixel maps, 1+K.
func (h *Head) Classes() int {
	if h.Linear() {
		return h.classes
	}
	if h.Scheme != checkpoints.DAPO {
		return 2
	}
	return h.Prompts.Classes()
}

// CheckDataset reports, without a model, whether a scheme's variant can
// learn its prompts on a dataset: what NewHead rejects before any model is
// opened (an unknown scheme or variant, a dataset without a training
// vocabulary). A study plan calls it so that a bad plan fails before any
// job runs.
func CheckDataset(scheme, variant, dataset string) error {
	switch scheme {
	case checkpoints.DAPO:
		if _, err := dapo.Parse(variant, dapo.Options{}); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		v, err := dapo.DefaultVocabularies()
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if v.Train[dataset] == nil || v.TrainGT[dataset] == nil {
			// docs/methods.md#train-dapo-mvtec-only
			return fmt.Errorf("train: dapo: no training vocabulary for dataset %q; the official code trains on mvtec only", dataset)
		}
	case checkpoints.AnomalyCLIP:
		if variant == "" {
			variant = "anomalyclip"
		}
		if _, err := anomalyclip.Parse(variant, anomalyclip.Options{}); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	case checkpoints.APRILGAN, checkpoints.MultiADS:
		_, err := linearHead(&Head{Scheme: scheme, Dataset: dataset}, variant, dataset)
		return err
	default:
		_, err := Defaults(scheme)
		return err
	}
	return nil
}

// NewHead resolves a scheme variant for a model and a training dataset.
// DAPO's variants are dapo.WithVariant's (the training vocabulary of
// docs/methods.md#dapo-vocab-train replaces the test-time words); AnomalyCLIP's are
// anomalyclip.Parse's.
func NewHead(scheme, variant, dataset string, m *clip.Manifest) (*Head, error) {
	if _, err := checkpoints.DimsOf(scheme, m); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	h := &Head{Scheme: scheme, Dataset: dataset}
	var layers []int
	switch scheme {
	case checkpoints.DAPO:
		o, err := dapo.Parse(variant, dapo.Options{})
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		h.Variant = o.Name
		v, err := dapo.DefaultVocabularies()
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		words, gt := v.Train[dataset], v.TrainGT[dataset]
		if words == nil || gt == nil {
			// docs/methods.md#train-dapo-mvtec-only
			return nil, fmt.Errorf("train: dapo: no training vocabulary for dataset %q; the official code trains on mvtec only", dataset)
		}
		if o.Groups == 0 {
			o.Groups = dapo.Groups
		}
		h.Prompts = dapo.PromptSet{Words: words, Groups: o.Groups, Context: dapo.ContextTokens, Handcrafted: o.Handcrafted}
		h.classOf = func(s loaders.Sample) (int, error) {
			k, ok := gt[s.DefectType]
			if !ok {
				// The table is train_gt_defect (docs/methods.md#dapo-gt-defect).
				return 0, fmt.Errorf("defect type %q has no class in the %s training vocabulary (train_gt_defect)", s.DefectType, dataset)
			}
			return k, nil
		}
		if o.NoDefectWords {
			// One abnormal prompt without a word: every defect is class 1.
			h.Prompts.Words = nil
			h.classOf = func(loaders.Sample) (int, error) { return 1, nil }
		}
		layers = o.Layers
		if len(layers) == 1 && layers[0] == -1 {
			layers = m.FeatureLayers[len(m.FeatureLayers)-1:]
		}
		h.AlignCorners = true
	case checkpoints.AnomalyCLIP:
		if variant == "" {
			variant = "anomalyclip"
		}
		o, err := anomalyclip.Parse(variant, anomalyclip.Options{})
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		h.Variant = o.Name
		layers = o.Layers
		h.classOf = func(loaders.Sample) (int, error) { return 1, nil }
		h.AlignCorners = false
	case checkpoints.AdaCLIP:
		// The variants differ at test time only; training is one recipe.
		o, err := adaclip.Parse(variant, adaclip.Options{})
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		if o.NoHSF {
			return nil, fmt.Errorf("train: %s: the official trainer always fuses with HSF", o.Name)
		}
		h.Variant = o.Name
		h.classOf = func(loaders.Sample) (int, error) { return 1, nil }
		h.AlignCorners = true
		normal, abnormal := adaclip.Sentences("object")
		h.adaclipNormal, h.adaclipSentences = len(normal), len(normal)+len(abnormal)
		h.adaclipFirst, h.adaclipPerImage = o.First, o.PerImageSeeds
	case checkpoints.APRILGAN, checkpoints.MultiADS:
		var err error
		if layers, err = linearHead(h, variant, dataset); err != nil {
			return nil, err
		}
	}
	if layers == nil {
		layers = m.FeatureLayers
	}
	if scheme == checkpoints.AdaCLIP {
		d, err := checkpoints.DimsOf(scheme, m)
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		for _, name := range slices.Sorted(maps.Keys(d.Shapes())) {
			if name != clip.AdaCLIPTextStatic(0) {
				h.adaclipLearnable = append(h.adaclipLearnable, name)
			}
		}
	}
	if len(layers) == 0 {
		return nil, fmt.Errorf("train: %s: the model returns no patch tokens (no feature layers)", h.Variant)
	}
	for _, l := range layers {
		if l == -1 && len(m.FeatureLayers) > 0 {
			l = m.FeatureLayers[len(m.FeatureLayers)-1]
		}
		i := slices.Index(m.FeatureLayers, l)
		if i < 0 {
			return nil, fmt.Errorf("train: %s: layer %d is not a feature layer of the model (%v)", h.Variant, l, m.FeatureLayers)
		}
		h.Layers = append(h.Layers, l)
		h.Adapters = append(h.Adapters, i)
	}
	return h, nil
}

// PixelClass is the class of a sample's defect pixels: 0 for a normal
// sample, else 1..K (DAPO: train_gt_defect of its defect folder;
// MultiADS: train.py's gt_defect of it; AnomalyCLIP and DAPO without
// defect words: 1). APRIL-GAN's is always 1, so that a mosaic made for a
// normal image labels its defects as the official trainer does.
func (h *Head) PixelClass(s loaders.Sample) (int, error) {
	if h.Scheme == checkpoints.APRILGAN {
		// Every defect pixel is class 1, those of a normal image's mosaic
		// too (gt > 0.5 → 1, train.py line 133).
		return 1, nil
	}
	if s.Label == 0 {
		return 0, nil
	}
	k, err := h.classOf(s)
	if err != nil {
		return 0, fmt.Errorf("train: %s: %w", s.RelImage, err)
	}
	return k, nil
}

// Learnable lists the tensors the variant trains, in checkpoint names:
// every tensor of the scheme except DAPO's context when it is handcrafted
// and the adapters of feature layers the loss does not read.
func (h *Head) Learnable() []string {
	if h.Scheme == checkpoints.AdaCLIP {
		return h.adaclipLearnable
	}
	var out []string
	if h.Linear() {
		for _, i := range h.Adapters {
			out = append(out, checkpoints.AdapterWeight(i), checkpoints.AdapterBias(i))
		}
		return out
	}
	if h.Scheme == checkpoints.AnomalyCLIP || h.Prompts.Handcrafted == "" {
		out = append(out, checkpoints.NormalCtx, checkpoints.AbnormalCtx)
	}
	out = append(out, checkpoints.TextDeep)
	if h.Scheme == checkpoints.DAPO {
		out = append(out, checkpoints.VisualPrompts)
		for _, i := range h.Adapters {
			out = append(out, checkpoints.AdapterWeight(i), checkpoints.AdapterBias(i))
		}
	}
	return out
}
