package train

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dapobench/dapobench/baselines/adaclip"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Recipe is a scheme's official training settings.
type Recipe struct {
	Epochs, Batch int
	LR            float64
	Seed          uint64
	// AugRate is the probability that a training image is replaced by a
	// mosaic of four (APRIL-GAN's and MultiADS' MVTecDataset;
	// docs/methods.md#train-mosaic); 0 for none.
	AugRate float64
}

// Defaults returns the official recipe of a scheme on MVTec-AD, the
// training set of the zero-shot protocol (DefaultsFor).
func Defaults(scheme string) (Recipe, error) { return DefaultsFor(scheme, loaders.MVTec) }

// DefaultsFor returns the official recipe of a scheme on a training
// dataset: DAPO 5 epochs, batch 8, lr 1e-3, seed 42 (train.py;
// docs/methods.md#train-dapo-recipe); AnomalyCLIP 15 epochs, batch 8,
// lr 1e-3, seed 111 (train.py, train.sh;
// docs/methods.md#train-anomalyclip-recipe); AdaCLIP 5 epochs, batch 1, lr
// 0.01, seed 111 (train.py; docs/methods.md#train-adaclip-recipe);
// APRIL-GAN batch 8, lr 1e-3, seed 111, on MVTec-AD 3 epochs with mosaics
// at rate 0.2, on VisA 15 epochs without (train.sh;
// docs/methods.md#train-aprilgan-recipe); MultiADS 10 epochs, batch 4,
// lr 1e-3, seed 42, mosaics at rate 0.2 (train.py's defaults;
// docs/methods.md#train-multiads-recipe).
func DefaultsFor(scheme, dataset string) (Recipe, error) {
	switch scheme {
	case checkpoints.DAPO:
		return Recipe{Epochs: 5, Batch: 8, LR: DefaultLR, Seed: 42}, nil
	case checkpoints.AnomalyCLIP:
		return Recipe{Epochs: 15, Batch: 8, LR: DefaultLR, Seed: 111}, nil
	case checkpoints.AdaCLIP:
		return Recipe{Epochs: 5, Batch: 1, LR: AdaCLIPLR, Seed: adaclip.KMeansSeed}, nil
	case checkpoints.APRILGAN:
		if dataset == loaders.VisA {
			return Recipe{Epochs: 15, Batch: 8, LR: DefaultLR, Seed: 111}, nil
		}
		return Recipe{Epochs: 3, Batch: 8, LR: DefaultLR, Seed: 111, AugRate: 0.2}, nil
	case checkpoints.MultiADS:
		return Recipe{Epochs: 10, Batch: 4, LR: DefaultLR, Seed: 42, AugRate: 0.2}, nil
	}
	return Recipe{}, fmt.Errorf("train: unknown scheme %q (want %s)", scheme, strings.Join(checkpoints.Schemes(), ", "))
}

// Config is one training run. The zero-shot protocol trains on the test
// split of one dataset (MVTec-AD for DAPO) and evaluates on the others.
type Config struct {
	Scheme  string // checkpoints.DAPO, checkpoints.AnomalyCLIP or checkpoints.AdaCLIP
	Variant string // "" is the scheme itself
	Dataset string
	Loader  loaders.Options
	// ModelDir is a model directory of the scheme's variant.
	ModelDir string
	// MaskRule reads the resized ground-truth masks; "" is the scheme's
	// own trainer's (DefaultMaskRule).
	MaskRule MaskRule
	// Init, when set, gives the initial tensors instead of the seed (a
	// fine-tune or a continuation with another recipe); Adam starts
	// afresh. The seed still draws the image order.
	Init *Init
	// Recompute trades a second forward pass for the activations a step
	// keeps; "" is RecomputeAuto. The gradients are the same numbers.
	Recompute Recompute
	// Order, when set, replaces the seeded order of each epoch: it gets
	// the training samples in the training set's order and returns the
	// indices to visit, each once. Parity tests use it to replay another
	// trainer's data order.
	Order func(epoch int, samples []loaders.Sample) ([]int, error)
	// AdaCLIPFusion, when set, sees and may replace each AdaCLIP step's
	// HSF (FusionHook); nil trains with dapobench's own clustering.
	AdaCLIPFusion FusionHook
	Recipe
}

// Trainer runs the training of one configuration. The seed draws the
// initial tensors (checkpoints.Untrained, unless Config.Init gives them)
// and the image order of each epoch, as torch.manual_seed does both in
// the official code.
type Trainer struct {
	cfg   Config
	graph *Graph
	sess  *runner.Session
	data  *trainingSet
	state *State
	// ada runs AdaCLIP's forward pass before each step (nil otherwise).
	ada *adaclipPass
}

// New reads the model and the data, builds the training step (forward and
// backward as one ONNX model) and loads it into rt.
func New(ctx context.Context, rt *runner.Runtime, cfg Config) (*Trainer, error) {
	if cfg.Epochs < 1 || cfg.Batch < 1 || !(cfg.LR > 0) || math.IsInf(cfg.LR, 0) {
		return nil, fmt.Errorf("train: epochs %d, batch %d, lr %g: want at least one epoch and image, and a positive finite learning rate", cfg.Epochs, cfg.Batch, cfg.LR)
	}
	if cfg.Scheme == checkpoints.AdaCLIP && cfg.Batch != 1 {
		// docs/methods.md#train-adaclip-recipe
		return nil, fmt.Errorf("train: adaclip trains with batch 1 (its text prompts take one image's dynamic prompts; the official train.py refuses other sizes), not %d", cfg.Batch)
	}
	man, err := clip.ReadManifest(cfg.ModelDir)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	manBytes, err := os.ReadFile(filepath.Join(cfg.ModelDir, clip.ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	h, err := NewHead(cfg.Scheme, cfg.Variant, cfg.Dataset, man)
	if err != nil {
		return nil, err
	}
	rule := cfg.MaskRule
	if rule == "" {
		rule = DefaultMaskRule(cfg.Scheme)
	}
	if _, err := ParseMaskRule(string(rule)); err != nil {
		return nil, err
	}
	var initial map[string]clip.Tensor
	if cfg.Init != nil {
		if initial, err = cfg.Init.tensors(cfg.Scheme, man, cfg.ModelDir); err != nil {
			return nil, err
		}
	}
	if cfg.AugRate < 0 || cfg.AugRate > 1 || math.IsNaN(cfg.AugRate) {
		return nil, fmt.Errorf("train: aug rate %g: want a probability in [0, 1]", cfg.AugRate)
	}
	data, err := loadTrainingSet(ctx, h, cfg.Dataset, cfg.Loader, man, rule)
	if err != nil {
		return nil, err
	}
	if cfg.AugRate > 0 {
		if !h.Linear() || cfg.Dataset != loaders.MVTec {
			return nil, fmt.Errorf("train: %s on %s: mosaic augmentation is APRIL-GAN's and MultiADS' MVTec-AD dataset's (aug rate %g)", h.Variant, cfg.Dataset, cfg.AugRate)
		}
		data.augRate, data.seed, data.folders = cfg.AugRate, cfg.Seed, newMosaicFolders(data.examples)
	}
	if h.Linear() {
		if data.texts, err = classTexts(ctx, rt, cfg.ModelDir, h, data); err != nil {
			return nil, err
		}
		data.classes, data.diceRows = h.Classes(), h.Scheme == checkpoints.APRILGAN
	}
	g, err := ReadGraph(cfg.ModelDir, man, h)
	if err != nil {
		return nil, err
	}
	rc, err := ParseRecompute(string(cfg.Recompute))
	if err != nil {
		return nil, err
	}
	step, _, err := Step(g, cfg.Batch, rc)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	model, err := graph.Marshal(step)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	table, err := man.ReadTokenEmbedding(cfg.ModelDir)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if initial == nil {
		u, err := checkpoints.Untrained(cfg.Scheme, man, table, cfg.Seed)
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		initial = u.Tensors
	}
	sess, err := rt.LoadBytesWith(ctx, "train "+h.Variant, model, cfg.ModelDir, StepLoadOptions)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	sum := sha256.Sum256(manBytes)
	set := Settings{Scheme: cfg.Scheme, Variant: h.Variant, Dataset: cfg.Dataset, Data: data.hash, Samples: len(data.examples),
		Model: hex.EncodeToString(sum[:]), Batch: cfg.Batch, LR: cfg.LR, Beta1: Beta1, Beta2: Beta2, Eps: AdamEps, Seed: cfg.Seed,
		MaskRule: rule, AugRate: cfg.AugRate}
	adam := NewAdam(cfg.LR)
	if cfg.Scheme == checkpoints.AdaCLIP {
		set.WeightDecay = AdamWDecay
		adam.WeightDecay = AdamWDecay
	}
	st := &State{Settings: set, Tensors: initial, Adam: adam}
	if cfg.Init != nil {
		from := cfg.Init.From
		st.Init = &from
	}
	t := &Trainer{cfg: cfg, graph: g, sess: sess, data: data, state: st}
	if cfg.Scheme == checkpoints.AdaCLIP {
		if t.ada, err = newAdaCLIPPass(ctx, rt, cfg.ModelDir, man, h, table, cfg.AdaCLIPFusion); err != nil {
			sess.Close()
			return nil, err
		}
	}
	return t, nil
}

// Close releases the step's sessions.
func (t *Trainer) Close() error {
	err := t.sess.Close()
	if t.ada != nil {
		err = errors.Join(err, t.ada.close())
	}
	return err
}

// Head is the trained variant.
func (t *Trainer) Head() *Head { return t.graph.Head }

// Samples is the number of training images per epoch.
func (t *Trainer) Samples() int { return len(t.data.examples) }

// State is the run's current state (shared, not a copy).
func (t *Trainer) State() *State { return t.state }

// Resume continues from a state written after an epoch. Its settings must
// equal this run's (the number of epochs aside).
//
// The scheme and the tensor shapes are checked first, for a clear
// message when the checkpoint is of another scheme or model.
func (t *Trainer) Resume(s *State) error {
	if s.Settings.Scheme != t.cfg.Scheme {
		return fmt.Errorf("train: resume: the checkpoint holds %s tensors; this run trains %s", s.Settings.Scheme, t.cfg.Scheme)
	}
	l := &checkpoints.Learned{Scheme: s.Settings.Scheme, Tensors: s.Tensors}
	if err := l.Check(t.graph.Manifest); err != nil {
		return fmt.Errorf("train: resume: the checkpoint does not fit the model %s: %w", t.cfg.ModelDir, err)
	}
	if d := t.state.Settings.diff(s.Settings); len(d) > 0 {
		return fmt.Errorf("train: resume: the checkpoint was made with other settings: %v", d)
	}
	if s.Epoch > t.cfg.Epochs {
		return fmt.Errorf("train: resume: the checkpoint is after epoch %d, beyond the %d epochs asked for", s.Epoch, t.cfg.Epochs)
	}
	t.state = s
	return nil
}

// StepInfo describes one optimizer step, for progress reports.
type StepInfo struct {
	Epoch, Epochs   int // 1-based epoch
	Batch, Batches  int // 1-based batch within the epoch
	Images          int // images in the batch
	Loss            float64
	Local, ImageCE  float64
	Seconds         float64 // wall time of the step, data preparation overlapped
	EpochImagesDone int
}

// Hooks are called as training goes; nil hooks are skipped.
type Hooks struct {
	Step func(StepInfo)
	// Epoch is called after each epoch with the state to checkpoint; an
	// error stops the run.
	Epoch func(*State) error
}

// Run trains from the current state's epoch to cfg.Epochs. On an error
// (ctx cancelled included) the trainer's tensors are those of a partial
// epoch: use only the states handed to Hooks.Epoch.
func (t *Trainer) Run(ctx context.Context, hooks Hooks) error {
	for e := t.state.Epoch; e < t.cfg.Epochs; e++ {
		if err := t.epoch(ctx, e, hooks); err != nil {
			return err
		}
		if hooks.Epoch != nil {
			if err := hooks.Epoch(t.state); err != nil {
				return err
			}
		}
	}
	return nil
}

type prepared struct {
	feeds map[string]runner.Tensor
	err   error
}

func (t *Trainer) epoch(ctx context.Context, e int, hooks Hooks) error {
	order := t.data.order(t.cfg.Seed, e)
	if t.cfg.Order != nil {
		samples := make([]loaders.Sample, len(t.data.examples))
		for i, x := range t.data.examples {
			samples[i] = x.sample
		}
		o, err := t.cfg.Order(e, samples)
		if err != nil {
			return fmt.Errorf("train: epoch %d: order: %w", e+1, err)
		}
		if len(o) != len(order) || !isPermutation(o) {
			return fmt.Errorf("train: epoch %d: the order visits %d of %d images, not each once", e+1, len(o), len(order))
		}
		order = o
	}
	bs := batches(order, t.cfg.Batch)
	start := time.Now()
	// The next batch is decoded while the current one runs.
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	ch := make(chan prepared, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ch)
		for _, b := range bs {
			f, err := t.data.feeds(pctx, e, b)
			select {
			case ch <- prepared{f, err}:
			case <-pctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	st := EpochStats{Epoch: e + 1}
	var sums [5]float64
	for i, b := range bs {
		t0 := time.Now()
		var p prepared
		select {
		case p = <-ch:
		case <-ctx.Done():
			return fmt.Errorf("train: %w", ctx.Err())
		}
		if p.err != nil {
			return p.err
		}
		params := map[string][]float32{}
		for _, name := range t.graph.Learnable {
			x := t.state.Tensors[name]
			p.feeds[name] = runner.Tensor{Shape: shape64(x.Shape), Float32: x.Data}
			params[name] = x.Data
		}
		if t.ada != nil {
			if err := t.ada.prepare(ctx, t.state, t.data, b, p.feeds); err != nil {
				return fmt.Errorf("train: epoch %d step %d: %w", e+1, i+1, err)
			}
		}
		out, err := t.sess.Run(ctx, p.feeds)
		if err != nil {
			return fmt.Errorf("train: epoch %d step %d: %w", e+1, i+1, err)
		}
		var vals [5]float64
		for k, name := range append([]string{OutLoss}, Terms()...) {
			o := out[name].Float32
			if len(o) != 1 || math.IsNaN(float64(o[0])) || math.IsInf(float64(o[0]), 0) {
				return fmt.Errorf("train: epoch %d step %d: %s = %v", e+1, i+1, name, o)
			}
			vals[k] = float64(o[0])
			sums[k] += vals[k]
		}
		grads := map[string][]float32{}
		for _, name := range t.graph.Learnable {
			grads[name] = out[GradName(name)].Float32
		}
		if err := t.state.Adam.Update(params, grads); err != nil {
			return fmt.Errorf("train: epoch %d step %d: %w", e+1, i+1, err)
		}
		st.Steps = append(st.Steps, vals[0])
		st.Images += len(b)
		if hooks.Step != nil {
			hooks.Step(StepInfo{Epoch: e + 1, Epochs: t.cfg.Epochs, Batch: i + 1, Batches: len(bs), Images: len(b),
				Loss: vals[0], Local: vals[1], ImageCE: vals[2], Seconds: time.Since(t0).Seconds(), EpochImagesDone: st.Images})
		}
	}
	n := float64(len(bs))
	st.Loss, st.Local, st.Image, st.Focal, st.Dice = sums[0]/n, sums[1]/n, sums[2]/n, sums[3]/n, sums[4]/n
	st.Seconds = time.Since(start).Seconds()
	t.state.History = append(t.state.History, st)
	t.state.Epoch = e + 1
	return nil
}

func isPermutation(o []int) bool {
	seen := make([]bool, len(o))
	for _, i := range o {
		if i < 0 || i >= len(o) || seen[i] {
			return false
		}
		seen[i] = true
	}
	return true
}

func shape64(s []int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}

// Learned returns the trained tensors as a checkpoints.Learned (a copy),
// labelled with source and the sha256 of the tensors, ready for
// `dapobench run --prompts`.
func (t *Trainer) Learned(source string) *checkpoints.Learned {
	return learnedOf(t.state, source)
}

// Learned returns the state's tensors as trained checkpoints.Learned.
func (s *State) Learned(source string) *checkpoints.Learned {
	return learnedOf(s, source)
}

func learnedOf(s *State, source string) *checkpoints.Learned {
	l := &checkpoints.Learned{Scheme: s.Settings.Scheme, Trained: true, Source: source, Tensors: map[string]clip.Tensor{}}
	h := sha256.New()
	var b [4]byte
	for _, k := range slices.Sorted(maps.Keys(s.Tensors)) {
		x := s.Tensors[k]
		l.Tensors[k] = clip.Tensor{Shape: slices.Clone(x.Shape), Data: slices.Clone(x.Data)}
		fmt.Fprintf(h, "%s %v\n", k, x.Shape)
		for _, v := range x.Data {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			h.Write(b[:])
		}
	}
	l.SourceSHA256 = hex.EncodeToString(h.Sum(nil))
	return l
}
