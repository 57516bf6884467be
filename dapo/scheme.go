package dapo

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Options select a DAPO variant. The zero value (plus Learned) is DAPO as
// the official code runs it.
type Options struct {
	// Name labels the variant in results ("dapo" when empty).
	Name string
	// Learned holds the learned tensors: an imported checkpoint, or the
	// seeded initial values (then every output says "untrained").
	Learned *checkpoints.Learned
	// Words overrides the dataset's binary defect vocabulary
	// (docs/methods.md#dapo-vocab-binary), e.g. from --prompts.
	Words []string
	// NoDefectWords builds one abnormal prompt "… anomaly object" without
	// a defect word.
	NoDefectWords bool
	// Groups is E, the prompt groups averaged per class (0 means 10).
	Groups int
	// Handcrafted replaces the learned context by these words.
	Handcrafted string
	// Layers restricts the anomaly map to these feature layers (1-indexed
	// blocks); nil uses every layer the model returns.
	Layers []int
	// NoMultiType skips the multi-type segmentation.
	NoMultiType bool
}

// Scheme is DAPO as a bench.Scheme.
type Scheme struct {
	opt   Options
	vocab *Vocabularies

	// text memoises class features by model and word list: the binary
	// vocabulary is per dataset and every category's multi-type list is a
	// subset of the dataset's, so the text tower (E·(1+K) prompts of 81
	// tokens, the costly part of Prepare on ViT-L) runs twice per dataset,
	// not twice per category.
	mu   sync.Mutex
	text map[string][][]float32
}

// New checks the options and returns the scheme.
func New(opt Options) (*Scheme, error) {
	if opt.Learned == nil {
		return nil, fmt.Errorf("dapo: no learned tensors (import a checkpoint or use untrained ones)")
	}
	if opt.Learned.Scheme != checkpoints.DAPO {
		return nil, fmt.Errorf("dapo: learned tensors are for %s", opt.Learned.Scheme)
	}
	if opt.Name == "" {
		opt.Name = "dapo"
	}
	if opt.Groups == 0 {
		opt.Groups = Groups
	}
	if opt.Groups < 1 || opt.Groups > Groups {
		return nil, fmt.Errorf("dapo: %d prompt groups, want 1..%d", opt.Groups, Groups)
	}
	v, err := DefaultVocabularies()
	if err != nil {
		return nil, err
	}
	return &Scheme{opt: opt, vocab: v}, nil
}

func (s *Scheme) Name() string          { return s.opt.Name }
func (s *Scheme) Variant() clip.Variant { return clip.DAPO }

// Settings describe the variant for the run manifest.
func (s *Scheme) Settings() map[string]string {
	m := map[string]string{
		"prompts":     s.opt.Learned.Label(),
		"groups":      strconv.Itoa(s.opt.Groups),
		"temperature": strconv.FormatFloat(Temperature, 'g', -1, 64),
		"map":         "sum over layers of 1 − p(normal), bilinear align_corners=True",
	}
	if s.opt.Words != nil {
		m["words"] = strings.Join(s.opt.Words, ", ")
	} else {
		m["words"] = "dataset vocabulary"
	}
	if s.opt.NoDefectWords {
		m["words"] = "none"
	}
	if s.opt.Handcrafted != "" {
		m["context"] = "handcrafted: " + s.opt.Handcrafted
	}
	if s.opt.Layers != nil {
		m["layers"] = fmt.Sprint(s.opt.Layers)
	}
	return m
}

// ImageInputs are the deep visual prompts.
func (s *Scheme) ImageInputs(m *bench.Model) (map[string]runner.Tensor, error) {
	if err := s.opt.Learned.Check(m.Manifest); err != nil {
		return nil, err
	}
	vp := s.opt.Learned.Tensors[checkpoints.VisualPrompts]
	return map[string]runner.Tensor{clip.InVisualPrompts: bench.TensorOf(vp)}, nil
}

// Extract keeps the global embedding and the patch tokens of every
// feature layer.
func (s *Scheme) Extract(ctx context.Context, m *bench.Model, out map[string]runner.Tensor, batch int) ([]bench.Features, error) {
	names := []string{clip.OutImageEmbed}
	for _, l := range m.Manifest.FeatureLayers {
		names = append(names, clip.OutPatch(l))
	}
	return bench.SplitBatch(out, names, batch)
}

// layers returns the feature layers the map sums over, with the index of
// each one's adapter (fc.0..3 follow the model's feature layers in order).
func (s *Scheme) layers(m *clip.Manifest) ([]int, []int, error) {
	use := s.opt.Layers
	if use == nil {
		use = m.FeatureLayers
	}
	if len(use) == 1 && use[0] == -1 && len(m.FeatureLayers) > 0 {
		use = m.FeatureLayers[len(m.FeatureLayers)-1:]
	}
	var adapters []int
	for _, l := range use {
		i := slices.Index(m.FeatureLayers, l)
		if i < 0 {
			return nil, nil, fmt.Errorf("dapo: layer %d is not a feature layer of the model (%v)", l, m.FeatureLayers)
		}
		adapters = append(adapters, i)
	}
	return use, adapters, nil
}

// textFeatures encodes a prompt set and reduces it to unit class vectors,
// once per model and prompt set.
func (s *Scheme) textFeatures(ctx context.Context, m *bench.Model, p PromptSet) ([][]float32, error) {
	key := m.Dir + "\x00" + strings.Join(p.Words, "\x00")
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.text[key]; ok {
		return f, nil
	}
	f, err := s.encode(ctx, m, p)
	if err != nil {
		return nil, err
	}
	if s.text == nil {
		s.text = map[string][][]float32{}
	}
	s.text[key] = f
	return f, nil
}

func (s *Scheme) encode(ctx context.Context, m *bench.Model, p PromptSet) ([][]float32, error) {
	l := s.opt.Learned.Tensors
	embeds, eot, err := p.Assemble(m.Tokenizer, m.TokenEmbedding, l[checkpoints.NormalCtx], l[checkpoints.AbnormalCtx])
	if err != nil {
		return nil, err
	}
	deep := l[checkpoints.TextDeep]
	feats, err := m.EncodeText(ctx, embeds, eot, &deep)
	if err != nil {
		return nil, err
	}
	return p.ClassFeatures(feats)
}

// Prepare builds the text features of a category: the binary classes
// (normal + the dataset's defect words) and, for multi-type segmentation,
// the category's own defect list (docs/methods.md#dapo-multitype,
// docs/methods.md#dapo-category-lists).
func (s *Scheme) Prepare(ctx context.Context, m *bench.Model, c bench.Category) (bench.Scorer, error) {
	layers, adapterIdx, err := s.layers(m.Manifest)
	if err != nil {
		return nil, err
	}
	words := s.opt.Words
	if words == nil {
		words = s.vocab.Binary[c.Dataset]
		if words == nil {
			return nil, fmt.Errorf("dapo: no defect vocabulary for dataset %q; give the words explicitly", c.Dataset)
		}
	}
	if s.opt.NoDefectWords {
		words = nil
	}
	base := PromptSet{Groups: s.opt.Groups, Context: ContextTokens, Handcrafted: s.opt.Handcrafted}
	bin := base
	bin.Words = words
	sc := &scorer{s: s, m: m, layers: layers}
	if sc.binary, err = s.textFeatures(ctx, m, bin); err != nil {
		return nil, fmt.Errorf("dapo: %s: %w", c.Name, err)
	}
	if !s.opt.NoMultiType {
		classes, idx, err := s.vocab.ObjectClasses(c.Dataset, c.Name)
		if err == nil {
			// The features of the dataset's whole multi-type list; each
			// prompt is encoded on its own, so the category's classes are
			// rows of it (index 0, the normal class, is the normal prompt).
			multi := base
			multi.Words = s.vocab.Multi[c.Dataset][1:]
			all, err := s.textFeatures(ctx, m, multi)
			if err != nil {
				return nil, fmt.Errorf("dapo: %s: %w", c.Name, err)
			}
			for _, i := range idx {
				sc.multi = append(sc.multi, all[i])
			}
			sc.classes = classes
			sc.gt = s.vocab.MultiGT[c.Dataset]
			sc.multiWords = s.vocab.Multi[c.Dataset]
			sc.dataset = c.Dataset
		}
	}
	man := m.Manifest
	learned := s.opt.Learned.Tensors
	for _, i := range adapterIdx {
		w, b := learned[checkpoints.AdapterWeight(i)], learned[checkpoints.AdapterBias(i)]
		lin, err := bench.NewLinear(ctx, m.Runtime, w.Data, b.Data, man.PatchDim, man.EmbedDim)
		if err != nil {
			sc.Close()
			return nil, err
		}
		sc.adapters = append(sc.adapters, lin)
	}
	if sc.up, err = postproc.NewBilinear(man.Grid, man.Grid, man.ImageSize, man.ImageSize, true); err != nil {
		sc.Close()
		return nil, err
	}
	return sc, nil
}

// scorer scores the images of one category.
type scorer struct {
	s        *Scheme
	m        *bench.Model
	layers   []int
	adapters []*bench.Linear
	binary   [][]float32 // [1+K][De], unit rows, normal first
	multi    [][]float32 // [C][De] for the category's classes, or nil
	classes  []string
	gt       map[string]int
	// multiWords is the dataset's multi-type list that gt indexes.
	multiWords []string
	dataset    string
	up         *postproc.Bilinear
}

func (sc *scorer) Classes() []string { return sc.classes }

// ClassOf maps a raw defect type (folder name, Real-IAD code, VisA
// description) to a class of the category's list: through the dataset's
// gt_defect table (docs/methods.md#dapo-gt-defect), else by the class word
// itself, else,
// for VisA descriptions, by keyword (VisAClass).
func (sc *scorer) ClassOf(defect string) (int, bool) {
	if sc.classes == nil {
		return 0, false
	}
	word := ""
	if i, ok := sc.gt[defect]; ok && i < len(sc.multiWords) {
		word = sc.multiWords[i]
	} else if w, ok := VisAClass(defect); ok && sc.dataset == "visa" {
		word = w
	} else {
		word = defect
	}
	for k, w := range sc.classes {
		if strings.EqualFold(w, word) {
			return k, true
		}
	}
	return 0, false
}

// Close releases the adapter sessions.
func (sc *scorer) Close() error {
	for _, a := range sc.adapters {
		a.Close()
	}
	return nil
}

func mat(rows [][]float32) postproc.Mat {
	m := postproc.Mat{Rows: len(rows), Cols: len(rows[0])}
	for _, r := range rows {
		m.Data = append(m.Data, r...)
	}
	return m
}

// Score computes the image score (softmax over normal vs the mean defect
// embedding), the anomaly map (sum over layers of the upsampled 1 − p(normal))
// and, when the category has a defect list, the class maps and image-level
// class probabilities (docs/methods.md#dapo-image-score,
// docs/methods.md#dapo-pixel-map, docs/methods.md#dapo-multitype).
func (sc *scorer) Score(ctx context.Context, f bench.Features) (*bench.Output, error) {
	man := sc.m.Manifest
	emb, ok := f.Tensor(clip.OutImageEmbed)
	if !ok {
		return nil, fmt.Errorf("dapo: features lack %s", clip.OutImageEmbed)
	}
	// Image level: the abnormal vector is the re-normalised mean of the
	// defect embeddings.
	de := len(sc.binary[0])
	abn := make([]float32, de)
	for _, t := range sc.binary[1:] {
		for i, v := range t {
			abn[i] += v
		}
	}
	img := postproc.Mat{Rows: 1, Cols: de, Data: emb.Data}
	two := postproc.Mat{Rows: 2, Cols: de, Data: append(append([]float32(nil), sc.binary[0]...), abn...)}
	p := postproc.Mat{Rows: 1, Cols: 2, Data: make([]float32, 2)}
	if err := postproc.CosineLogits(p, img, two, Temperature); err != nil {
		return nil, err
	}
	if err := postproc.Softmax(p); err != nil {
		return nil, err
	}
	out := &bench.Output{Image: p.Data[1]}

	g, size := man.Grid, man.ImageSize
	tokens := g * g
	out.Map = make([]float32, size*size)
	up := make([]float32, size*size)
	bin := mat(sc.binary)
	var multi postproc.Mat
	if sc.multi != nil {
		multi = mat(sc.multi)
		out.ClassMaps = make([][]float32, len(sc.multi))
		for k := range out.ClassMaps {
			out.ClassMaps[k] = make([]float32, size*size)
		}
		cp := postproc.Mat{Rows: 1, Cols: multi.Rows, Data: make([]float32, multi.Rows)}
		if err := postproc.CosineLogits(cp, img, multi, Temperature); err != nil {
			return nil, err
		}
		if err := postproc.Softmax(cp); err != nil {
			return nil, err
		}
		for _, v := range cp.Data {
			out.ClassScores = append(out.ClassScores, float64(v))
		}
	}
	for j, layer := range sc.layers {
		patch, ok := f.Tensor(clip.OutPatch(layer))
		if !ok {
			return nil, fmt.Errorf("dapo: features lack %s", clip.OutPatch(layer))
		}
		if len(patch.Data) != tokens*man.PatchDim {
			return nil, fmt.Errorf("dapo: %s has %d values, want %d×%d", clip.OutPatch(layer), len(patch.Data), tokens, man.PatchDim)
		}
		adapted, err := sc.adapters[j].Apply(ctx, patch.Data)
		if err != nil {
			return nil, err
		}
		x := postproc.Mat{Rows: tokens, Cols: man.EmbedDim, Data: adapted}
		// Binary map: 1 − p(normal) = Σ of the defect channels.
		probs := postproc.Mat{Rows: tokens, Cols: bin.Rows, Data: make([]float32, tokens*bin.Rows)}
		if err := postproc.CosineLogits(probs, x, bin, Temperature); err != nil {
			return nil, err
		}
		if err := postproc.Softmax(probs); err != nil {
			return nil, err
		}
		grid := make([]float32, tokens)
		for t := range tokens {
			var s float32
			for _, v := range probs.Row(t)[1:] {
				s += v
			}
			grid[t] = s
		}
		if err := sc.up.Apply(postproc.Grid{C: 1, H: size, W: size, Data: up}, postproc.Grid{C: 1, H: g, W: g, Data: grid}); err != nil {
			return nil, err
		}
		for i, v := range up {
			out.Map[i] += v
		}
		if sc.multi == nil {
			continue
		}
		c := multi.Rows
		mp := postproc.Mat{Rows: tokens, Cols: c, Data: make([]float32, tokens*c)}
		if err := postproc.CosineLogits(mp, x, multi, Temperature); err != nil {
			return nil, err
		}
		if err := postproc.Softmax(mp); err != nil {
			return nil, err
		}
		planes := postproc.Mat{Rows: c, Cols: tokens, Data: make([]float32, tokens*c)}
		if err := postproc.Transpose(planes, mp); err != nil {
			return nil, err
		}
		upc := make([]float32, c*size*size)
		if err := sc.up.Apply(postproc.Grid{C: c, H: size, W: size, Data: upc}, postproc.Grid{C: c, H: g, W: g, Data: planes.Data}); err != nil {
			return nil, err
		}
		for k := range c {
			dst := out.ClassMaps[k]
			for i, v := range upc[k*size*size : (k+1)*size*size] {
				dst[i] += v
			}
		}
	}
	return out, nil
}

// Seen reports whether a class word is in DAPO's MVTec word list (the
// training dataset's test-time vocabulary): the other types are novel
// (docs/methods.md#dapo-novel-types). The normal class counts as seen.
func (s *Scheme) Seen(word string) bool {
	if strings.EqualFold(word, "good") || strings.EqualFold(word, "normal") {
		return true
	}
	for _, w := range s.vocab.Multi["mvtec"] {
		if strings.EqualFold(w, word) {
			return true
		}
	}
	return false
}
