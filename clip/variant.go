package clip

import (
	"fmt"
	"slices"
	"strings"
)

// Variant selects how the towers run (docs/methods.md#clip-variants).
type Variant string

// The variants.
const (
	// Plain is standard CLIP (APRIL-GAN, MultiADS, handcrafted prompts):
	// image_embed = ln_post(CLS)·proj, raw block outputs as patch tokens,
	// causal text tower.
	Plain Variant = "plain"
	// AnomalyCLIP adds DPAM V-V attention in the last blocks and deep text
	// tokens that overwrite positions 1..4 (docs/methods.md#anomalyclip-deep-text).
	AnomalyCLIP Variant = "anomalyclip"
	// DAPO adds deep visual prompts and deep text prompts, inserted at the
	// first block and blended before each later one, and runs the text tower
	// without a causal mask (docs/methods.md#dapo-text-no-mask,
	// docs/methods.md#dapo-deep-text-prompts, docs/methods.md#dapo-visual-prompts).
	DAPO Variant = "dapo"
	// WinCLIP splits the image tower so that windows of patch tokens can be
	// encoded (docs/methods.md#clip-winclip-graphs).
	WinCLIP Variant = "winclip"
	// AdaCLIP runs a plain pass for its dynamic prompts and a prompted
	// pass with static+dynamic visual prompts; its text tower overwrites
	// positions 1..5 with image-dependent prompts (docs/methods.md#adaclip-towers).
	AdaCLIP Variant = "adaclip"
	// APRILGAN and MultiADS are the plain towers (raw block outputs with
	// the class token at layers 6/12/18/24) as their shared open_clip
	// factory builds them: with exact GELU when the image size differs
	// from the architecture's (FactoryArch; docs/methods.md#aprilgan-gelu).
	// They are variants of their own so that each scheme names its model.
	APRILGAN Variant = "aprilgan"
	MultiADS Variant = "multiads"
)

// Variants lists every variant.
func Variants() []Variant {
	return []Variant{Plain, AnomalyCLIP, DAPO, WinCLIP, AdaCLIP, APRILGAN, MultiADS}
}

// VariantNames lists the name of every variant, in the order of Variants.
func VariantNames() []string {
	names := make([]string, 0, len(Variants()))
	for _, v := range Variants() {
		names = append(names, string(v))
	}
	return names
}

// ParseVariant checks a variant name.
func ParseVariant(s string) (Variant, error) {
	v := Variant(s)
	if !slices.Contains(Variants(), v) {
		return "", fmt.Errorf("clip: unknown variant %q (want one of %s)", s, strings.Join(VariantNames(), ", "))
	}
	return v, nil
}

// FactoryArch is the architecture a variant's official code actually
// runs. APRIL-GAN's and MultiADS' open_clip factory, asked for an image
// size other than the config's, rebuilds the model from its JSON config,
// which has no quick_gelu key, so both towers run exact GELU
// (docs/methods.md#aprilgan-gelu); at the config's own size it returns the
// OpenAI model with QuickGELU. imageSize 0 means the architecture's own.
// Other variants run a as given.
func FactoryArch(v Variant, a Arch, imageSize int) Arch {
	if (v == APRILGAN || v == MultiADS) && imageSize != 0 && imageSize != a.ImageSize {
		a.Act = GELU
	}
	return a
}

// TruncatesText reports whether the variant's text tower takes token
// embeddings [N, L, width] with any L ≤ the context length instead of
// exactly the context length: APRIL-GAN and MultiADS encode thousands of
// handcrafted prompts per category, and cutting them after the last
// end-of-text token (TruncateText) makes the text tower several times
// faster with the same features, since the causal mask keeps every
// position from reading later ones.
func TruncatesText(v Variant) bool { return v == APRILGAN || v == MultiADS }

// TruncateText cuts text-tower inputs [N, C, width] (clip.TextInputs)
// after the last end-of-text index for a variant that TruncatesText;
// other variants get embeds unchanged.
func TruncateText(v Variant, embeds Tensor, eot []int64) Tensor {
	if !TruncatesText(v) || len(embeds.Shape) != 3 {
		return embeds
	}
	n, c, w := embeds.Shape[0], embeds.Shape[1], embeds.Shape[2]
	l := 1
	for _, e := range eot {
		l = max(l, int(e)+1)
	}
	if l >= c {
		return embeds
	}
	out := NewTensor(n, l, w)
	for i := range n {
		copy(out.Data[i*l*w:(i+1)*l*w], embeds.Data[i*c*w:i*c*w+l*w])
	}
	return out
}

// Prompt and DPAM constants of the official code.
const (
	// DeepTokens is the number of deep prompt tokens per layer, in both
	// towers: DAPO's hard-coded learnable_token_length / prefix_token_cnt
	// (docs/methods.md#dapo-hyperparameters) and AnomalyCLIP's t_n_ctx
	// (docs/methods.md#anomalyclip-deep-text).
	DeepTokens = 4
	// DeepBlend is DAPO's hard-coded alpha: before block i ≥ 1 the deep
	// tokens become DeepBlend·h + (1−DeepBlend)·P[i]
	// (docs/methods.md#dapo-deep-text-prompts, docs/methods.md#dapo-visual-prompts).
	DeepBlend = 0.01
	// anomalyCLIPTextDepth is AnomalyCLIP's prompt depth 9, giving 8 deep
	// text tensors used before blocks 1..8 (docs/methods.md#anomalyclip-deep-text).
	anomalyCLIPTextDepth = 9
	// dpamOf24 is the number of ViT-L's 24 blocks whose attention
	// AnomalyCLIP replaces (DPAM_layer=20 → the last 19;
	// docs/methods.md#anomalyclip-dpam).
	dpamOf24 = 19
)

// Options are the build choices of a model directory.
type Options struct {
	Variant Variant
	// ImageSize is the input side S; 0 means the architecture's own.
	ImageSize int
	// FeatureLayers are the 1-indexed blocks whose tokens the image tower
	// returns; nil means the variant's default (see DefaultFeatureLayers).
	FeatureLayers []int
	// PosResize overrides the variant's positional-embedding resize.
	PosResize PosResize
	// FP16 stores weights and computes in float16; inputs and outputs stay
	// float32.
	FP16 bool
	// External forces ONNX external data for the initializers; towers
	// over 64 MiB of weights use it regardless (see externalThreshold).
	External bool
}

// DefaultFeatureLayers are the layers each method reads: 6, 12, 18, 24 of
// ViT-L for DAPO and APRIL-GAN (docs/methods.md#dapo-layers,
// docs/methods.md#aprilgan-scoring), only 24 for AnomalyCLIP
// (docs/methods.md#anomalyclip-layers,
// https://github.com/zqhang/AnomalyCLIP/issues/82), none for WinCLIP. For other
// depths L the same fractions are used: L/4, L/2, 3L/4, L.
func DefaultFeatureLayers(v Variant, layers int) []int {
	switch v {
	case AnomalyCLIP:
		return []int{layers}
	case WinCLIP:
		return nil
	}
	return []int{layers / 4, layers / 2, 3 * layers / 4, layers}
}

// DPAMLayers is how many final vision blocks use AnomalyCLIP's V-V path:
// 19 of 24 for ViT-L, the same fraction (rounded down) for other depths.
func DPAMLayers(layers int) int { return layers * dpamOf24 / 24 }

// TextDeepDepth is the number of deep text prompt tensors of a variant:
// one per text block for DAPO (text_depth 12), depth−1 = 8 for AnomalyCLIP
// (at most one per block after the first), AdaCLIP's prompting depth 4
// (of which the first is never used), none otherwise.
func TextDeepDepth(v Variant, textLayers int) int {
	switch v {
	case DAPO:
		return textLayers
	case AnomalyCLIP:
		return min(anomalyCLIPTextDepth-1, textLayers-1)
	case AdaCLIP:
		return AdaCLIPDepth(textLayers)
	}
	return 0
}

// VisualDeepDepth is the number of deep visual prompt tensors: one per
// vision block for DAPO (depth 24), AdaCLIP's prompting depth 4, none
// otherwise.
func VisualDeepDepth(v Variant, visionLayers int) int {
	switch v {
	case DAPO:
		return visionLayers
	case AdaCLIP:
		return AdaCLIPDepth(visionLayers)
	}
	return 0
}

// DefaultPosResize is the resize each method's own code applies.
func DefaultPosResize(v Variant) PosResize {
	switch v {
	case AnomalyCLIP:
		return Bilinear
	case AdaCLIP:
		return Bicubic
	}
	return BicubicAntialias
}
