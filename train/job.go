package train

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/internal/progress"
	"github.com/dapobench/dapobench/internal/version"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Job is one training run with its files: what `dapobench train` and a
// study's training jobs run.
type Job struct {
	Config Config
	// Out is the learned-tensor file to write (FILE.safetensors); the
	// epoch checkpoints, loss plot and manifest are named after it
	// (Outputs).
	Out string
	// Init starts from the tensors of a learned-tensor file or epoch
	// checkpoint with a fresh optimiser; Resume continues from an epoch
	// checkpoint, optimiser state included. At most one is set.
	Init, Resume string
	// Log receives the start line, progress and epoch lines; nil is
	// silent.
	Log io.Writer
}

// JobResult is a finished training run.
type JobResult struct {
	Outputs  Outputs
	Learned  *checkpoints.Learned
	Manifest *Manifest
}

// RunJob trains, writing an epoch checkpoint, the manifest and the loss
// plot after every epoch and the learned tensors at the end.
func RunJob(ctx context.Context, rt *runner.Runtime, j Job) (*JobResult, error) {
	if j.Init != "" && j.Resume != "" {
		return nil, fmt.Errorf("train: --init and --resume exclude each other")
	}
	cfg := j.Config
	var state *State
	var err error
	if j.Resume != "" {
		if state, err = ReadState(j.Resume); err != nil {
			return nil, err
		}
	}
	if j.Init != "" {
		if cfg.Init, err = ReadInit(j.Init); err != nil {
			return nil, err
		}
	}
	o := OutputsOf(j.Out)
	if err := os.MkdirAll(filepath.Dir(j.Out), 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	start := time.Now()
	tr, err := New(ctx, rt, cfg)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	recipe, rule := cfg.Recipe, cfg.MaskRule
	if rule == "" {
		rule = DefaultMaskRule(cfg.Scheme)
	}
	init := fmt.Sprintf("untrained (seed %d)", recipe.Seed)
	if cfg.Init != nil {
		init = fmt.Sprintf("from %s (%s: %s)", filepath.Base(j.Init), cfg.Init.From.Kind, cfg.Init.From.Tensors)
	}
	if state != nil {
		if err := tr.Resume(state); err != nil {
			return nil, err
		}
		init = fmt.Sprintf("resumed from %s after epoch %d", filepath.Base(j.Resume), state.Epoch)
	}
	h := tr.Head()
	source := fmt.Sprintf("dapobench train %s on %s: %d epochs, batch %d, lr %g, seed %d, mask rule %s",
		h.Variant, cfg.Dataset, recipe.Epochs, recipe.Batch, recipe.LR, recipe.Seed, rule)
	if f := tr.State().Init; f != nil {
		source += fmt.Sprintf(", init %s", filepath.Base(f.Path))
	}
	mf := &Manifest{
		Schema: ManifestSchema, Dapobench: version.String(), Go: runtime.Version(), ORT: rt.Version(),
		Provider: rt.Provider(), Threads: rt.Threads(), ModelDir: cfg.ModelDir, Dataset: cfg.Dataset, Root: cfg.Loader.Root,
		Scheme: cfg.Scheme, Variant: h.Variant, Layers: h.Layers, Classes: h.Classes(), Learned: h.Learnable(),
		Recipe: RecipeJSON{Epochs: recipe.Epochs, Batch: recipe.Batch, LR: recipe.LR, Beta1: Beta1, Beta2: Beta2,
			Eps: AdamEps, WeightDecay: tr.State().Settings.WeightDecay, Seed: recipe.Seed, AugRate: recipe.AugRate},
		MaskRule: string(rule), Samples: tr.Samples(), Init: init, InitFrom: tr.State().Init,
		Started: start.UTC().Format(time.RFC3339), Output: j.Out,
	}
	if j.Log != nil {
		fmt.Fprintf(j.Log, "train %s on %s: %d images, %d epochs, batch %d, lr %g, seed %d, mask rule %s, %s (%s)\n",
			h.Variant, cfg.Dataset, tr.Samples(), recipe.Epochs, recipe.Batch, recipe.LR, recipe.Seed, rule, init, rt.Provider())
	}
	title := h.Variant + " on " + cfg.Dataset
	p := progress.New(j.Log, (recipe.Epochs-tr.State().Epoch)*tr.Samples(), "training")
	hooks := Hooks{
		Step: func(s StepInfo) {
			p.Describe(fmt.Sprintf("epoch %d/%d step %d/%d: loss %.4f (pixel %.4f, image %.4f)",
				s.Epoch, s.Epochs, s.Batch, s.Batches, s.Loss, s.Local, s.ImageCE))
			p.Add(s.Images)
		},
		Epoch: func(s *State) error {
			if err := s.WriteFile(o.Epoch(s.Epoch)); err != nil {
				return err
			}
			e := s.History[len(s.History)-1]
			p.Println(fmt.Sprintf("epoch %d/%d: mean loss %.4f (pixel %.4f, image %.4f), %.1fs; wrote %s",
				e.Epoch, recipe.Epochs, e.Loss, e.Local, e.Image, e.Seconds, o.Epoch(s.Epoch)))
			mf.Epochs, mf.Seconds = s.History, time.Since(start).Seconds()
			mf.Checkpoints = append(mf.Checkpoints, o.Epoch(s.Epoch))
			return WriteReport(o, mf, title)
		},
	}
	err = tr.Run(ctx, hooks)
	p.Finish()
	if err != nil {
		return nil, err
	}
	l := tr.Learned(source)
	if err := l.WriteFile(o.Learned); err != nil {
		return nil, err
	}
	mf.Epochs, mf.Seconds, mf.OutputSHA256, mf.Finished = tr.State().History, time.Since(start).Seconds(), l.SourceSHA256, true
	if err := WriteReport(o, mf, title); err != nil {
		return nil, err
	}
	return &JobResult{Outputs: o, Learned: l, Manifest: mf}, nil
}
