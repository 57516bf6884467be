// Package bench is the evaluation pipeline: it reads a benchmark, runs a
// model's image tower once per image (through a content-keyed feature
// cache), lets a prompt scheme turn the features into image scores,
// anomaly maps and defect-type probabilities, and computes the metrics per
// category.
//
// The flow (docs/README.md#pipeline): loaders → preprocess → image tower (cached) →
// scheme → metrics → results.json. Schemes live in their own packages
// (dapo, baselines/...) and implement Scheme.
package bench

import (
	"context"
	"strings"

	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Features are the cached image-tower outputs of one image, by name
// (image_embed, patch_<layer>, window embeddings, …), without the batch
// dimension.
type Features = featcache.Entry

// Category is what a scheme needs to know about the category it scores.
type Category struct {
	Dataset    string // dataset id
	Name       string // on-disk folder name (01Gorilla)
	PromptName string // name used in prompts (Gorilla)
	// DefectTypes are the raw defect types of the category's anomalous
	// test samples, sorted.
	DefectTypes []string
	// Cache is the run's feature cache (nil: none). A scheme whose
	// scorer derives more per-image features at scoring time (AdaCLIP's
	// image-dependent text features, docs/methods.md#adaclip-text-cache)
	// may keep them there, under keys of its own that never collide with
	// the image-tower entries.
	Cache *featcache.Cache
}

// Output is a scheme's verdict on one image.
type Output struct {
	// Image is the image-level anomaly score.
	Image float32
	// Map is the anomaly map at the evaluation resolution, Size×Size,
	// row-major.
	Map []float32
	// ClassMaps holds per-pixel defect-type scores [len(Classes)][Size²] for
	// schemes with multi-type segmentation; nil otherwise.
	ClassMaps [][]float32
	// ClassScores are image-level defect-type scores, one per class.
	ClassScores []float64
}

// Scorer scores the images of one category. Score must be safe for
// concurrent use.
type Scorer interface {
	Score(ctx context.Context, f Features) (*Output, error)
	// Classes are the multi-type classes (normal first), nil when the
	// scheme has no multi-type output.
	Classes() []string
	// ClassOf maps a sample's raw defect type to its index in Classes;
	// false when the type has no class (the sample is then left out of
	// the multi-type metrics, and counted).
	ClassOf(defectType string) (int, bool)
}

// ScoreFinisher is implemented by a Scorer whose image scores depend on
// every image of the category: MultiADS normalises its scores to [0, 1]
// over the category (docs/methods.md#multiads-scoring). Run takes each
// Output.Image as the raw score, and once the category's last image is
// scored calls FinishScores with the raw scores in sample order; the
// scores it returns are the ones the metrics, the score files and the
// examples get. It must keep their order (a non-decreasing map), since the
// examples are chosen by the raw scores; maps are not affected.
type ScoreFinisher interface {
	FinishScores(raw []float64) ([]float64, error)
}

// PositionScorer is a Scorer whose output for an image depends on where
// the image comes in the run, as AdaCLIP's k-means seeds depend on how many
// images the official process clustered before it
// (docs/methods.md#adaclip-kmeans-seeding). Run calls ScoreAt instead of
// Score, with n the sample's index among all test samples of the run in
// run order (categories in order, samples in loader order), whatever
// order, parallelism or resumption the images are scored in.
type PositionScorer interface {
	Scorer
	ScoreAt(ctx context.Context, n int, f Features) (*Output, error)
}

// Scheme is a prompt scheme (DAPO, WinCLIP, AnomalyCLIP, or a variant of
// one): how text features are built and how image features become scores.
type Scheme interface {
	// Name identifies the scheme and its variant in results and tables,
	// e.g. "dapo" or "dapo/no-defect-words".
	Name() string
	// Variant is the model variant whose graphs the scheme runs.
	Variant() clip.Variant
	// Settings are the facts a reader of the results needs (checkpoint or
	// "untrained", vocabulary, temperature, layers …); they go into the run
	// manifest and results.json.
	Settings() map[string]string
	// ImageInputs are extra inputs of the image tower besides the pixels
	// (DAPO's visual prompts); they are part of the feature-cache key.
	ImageInputs(m *Model) (map[string]runner.Tensor, error)
	// Extract turns the image tower's outputs for a batch into per-image
	// features; WinCLIP runs its window graph here.
	Extract(ctx context.Context, m *Model, out map[string]runner.Tensor, batch int) ([]Features, error)
	// Prepare builds the text side of one category.
	Prepare(ctx context.Context, m *Model, c Category) (Scorer, error)
}

// Variant names one configuration of a scheme: the scheme itself or an
// ablation of it. Every scheme package lists its variants with
// Variants() []Variant, the scheme itself first, and turns a name into
// options with Parse(name string, base Options) (Options, error), which
// applies the variant to base (its learned tensors, vocabulary …) and names
// the options after it; "" is the scheme itself.
type Variant struct {
	Name string
	// Doc says in a line what differs from the scheme itself.
	Doc string
}

// VariantTable is a scheme's variants as configuration, the scheme itself
// first: each names a variant and changes the scheme's options O. Scheme
// packages build Variants and Parse on it.
type VariantTable[O any] []struct {
	Variant
	Apply func(*O)
}

// List returns the variants' names and docs, in order.
func (t VariantTable[O]) List() []Variant {
	out := make([]Variant, len(t))
	for i, v := range t {
		out[i] = v.Variant
	}
	return out
}

// Apply applies the variant called name to base and returns the options
// with the variant's name; "" names the first variant, the scheme itself.
// ok is false when no variant has that name.
func (t VariantTable[O]) Apply(name string, base O) (o O, full string, ok bool) {
	if name == "" && len(t) > 0 {
		name = t[0].Name
	}
	for _, v := range t {
		if v.Name == name {
			v.Apply(&base)
			return base, name, true
		}
	}
	return base, name, false
}

// Names lists the variants' names, comma-separated, for error messages.
func (t VariantTable[O]) Names() string {
	names := make([]string, len(t))
	for i, v := range t {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
}
