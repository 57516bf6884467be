package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/internal/progress"
	"github.com/dapobench/dapobench/internal/version"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/train"
)

func cmdTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("train", stderr)
	var d datasetFlags
	d.register(fs)
	scheme := fs.String("scheme", "", "scheme whose prompts to learn: dapo or anomalyclip")
	variant := fs.String("variant", "", "named variant of the scheme (dapobench run --scheme S -list-variants)")
	modelDir := fs.String("model", "", "model directory of the scheme's variant (dapobench models build or models tiny)")
	out := fs.String("out", "", "trained tensors, FILE.safetensors; epoch checkpoints FILE.epoch<N>.safetensors, FILE.loss.png, FILE.train.json beside it")
	epochs := fs.Int("epochs", 0, "epochs (default: the scheme's recipe, dapo 5, anomalyclip 15)")
	batch := fs.Int("batch", 0, "images per step (default 8)")
	lr := fs.Float64("lr", 0, "Adam learning rate (default 1e-3)")
	seed := fs.Uint64("seed", 0, "seed of the initial tensors and the image order (default: dapo 42, anomalyclip 111)")
	resume := fs.String("resume", "", "continue from an epoch checkpoint FILE.epoch<N>.safetensors, optimiser state included")
	initFile := fs.String("init", "", "start from the tensors of a learned-tensor file (models import or train output) or an epoch checkpoint, with a fresh optimiser")
	maskRule := fs.String("mask-rule", "", "how resized ground-truth masks are read: truncate (defect only at level 255, DAPO's train.py) or threshold (> 0.5, AnomalyCLIP's train.py and the evaluation); default: the scheme's own trainer's")
	device := fs.String("device", "auto", "auto, cpu, cuda or cuda:N")
	threads := fs.Int("threads", 0, "onnxruntime threads (0: one per CPU)")
	quiet := fs.Bool("quiet", false, "no progress output")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "scheme", "dataset", "root", "model", "out"); err != nil {
		return err
	}
	if *scheme != checkpoints.DAPO && *scheme != checkpoints.AnomalyCLIP {
		return fmt.Errorf("%w: train: --scheme %q: want %s or %s", errUsage, *scheme, checkpoints.DAPO, checkpoints.AnomalyCLIP)
	}
	if !strings.HasSuffix(*out, ".safetensors") {
		return fmt.Errorf("%w: train: --out %q: want a FILE.safetensors name", errUsage, *out)
	}
	if *resume != "" && *initFile != "" {
		return fmt.Errorf("%w: train: give --resume (continue a run, optimiser state included) or --init (start from tensors with a fresh optimiser), not both", errUsage)
	}
	rule := train.DefaultMaskRule(*scheme)
	if *maskRule != "" {
		r, err := train.ParseMaskRule(*maskRule)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		rule = r
	}
	recipe, err := train.Defaults(*scheme)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["epochs"] {
		recipe.Epochs = *epochs
	}
	if set["batch"] {
		recipe.Batch = *batch
	}
	if set["lr"] {
		recipe.LR = *lr
	}
	if set["seed"] {
		recipe.Seed = *seed
	}
	if recipe.Epochs < 1 || recipe.Batch < 1 || !(recipe.LR > 0) {
		return fmt.Errorf("%w: train: --epochs %d, --batch %d, --lr %g: want positive values", errUsage, recipe.Epochs, recipe.Batch, recipe.LR)
	}
	o := train.OutputsOf(*out)
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var state *train.State
	if *resume != "" {
		if state, err = train.ReadState(*resume); err != nil {
			return err
		}
	}
	var from *train.Init
	if *initFile != "" {
		if from, err = train.ReadInit(*initFile); err != nil {
			return err
		}
	}

	start := time.Now()
	rt, err := runner.Open(runner.Options{Device: *device, Threads: *threads})
	if err != nil {
		return err
	}
	defer rt.Close()
	cfg := train.Config{Scheme: *scheme, Variant: *variant, Dataset: d.id, Loader: d.options(), ModelDir: *modelDir, Recipe: recipe,
		MaskRule: rule, Init: from}
	tr, err := train.New(ctx, rt, cfg)
	if err != nil {
		return err
	}
	defer tr.Close()
	init := fmt.Sprintf("untrained (seed %d)", recipe.Seed)
	if from != nil {
		init = fmt.Sprintf("from %s (%s: %s)", filepath.Base(*initFile), from.From.Kind, from.From.Tensors)
	}
	if state != nil {
		if err := tr.Resume(state); err != nil {
			return err
		}
		init = fmt.Sprintf("resumed from %s after epoch %d", filepath.Base(*resume), state.Epoch)
	}
	h := tr.Head()
	source := fmt.Sprintf("dapobench train %s on %s: %d epochs, batch %d, lr %g, seed %d, mask rule %s",
		h.Variant, d.id, recipe.Epochs, recipe.Batch, recipe.LR, recipe.Seed, rule)
	if f := tr.State().Init; f != nil {
		source += fmt.Sprintf(", init %s", filepath.Base(f.Path))
	}
	mf := &train.Manifest{
		Schema: train.ManifestSchema, Dapobench: version.String(), Go: runtime.Version(), ORT: rt.Version(),
		Provider: rt.Provider(), Threads: rt.Threads(), ModelDir: *modelDir, Dataset: d.id, Root: d.root,
		Scheme: *scheme, Variant: h.Variant, Layers: h.Layers, Classes: h.Classes(), Learned: h.Learnable(),
		Recipe: train.RecipeJSON{Epochs: recipe.Epochs, Batch: recipe.Batch, LR: recipe.LR, Beta1: train.Beta1, Beta2: train.Beta2,
			Eps: train.AdamEps, Seed: recipe.Seed},
		MaskRule: string(rule), Samples: tr.Samples(), Init: init, InitFrom: tr.State().Init,
		Started: start.UTC().Format(time.RFC3339), Output: *out,
	}
	if !*quiet {
		fmt.Fprintf(stderr, "train %s on %s: %d images, %d epochs, batch %d, lr %g, seed %d, mask rule %s, %s (%s)\n",
			h.Variant, d.id, tr.Samples(), recipe.Epochs, recipe.Batch, recipe.LR, recipe.Seed, rule, init, rt.Provider())
	}
	var log io.Writer = stderr
	if *quiet {
		log = nil
	}
	p := progress.New(log, (recipe.Epochs-tr.State().Epoch)*tr.Samples(), "training")
	hooks := train.Hooks{
		Step: func(s train.StepInfo) {
			p.Describe(fmt.Sprintf("epoch %d/%d step %d/%d: loss %.4f (pixel %.4f, image %.4f)",
				s.Epoch, s.Epochs, s.Batch, s.Batches, s.Loss, s.Local, s.ImageCE))
			p.Add(s.Images)
		},
		Epoch: func(s *train.State) error {
			if err := s.WriteFile(o.Epoch(s.Epoch)); err != nil {
				return err
			}
			e := s.History[len(s.History)-1]
			p.Println(fmt.Sprintf("epoch %d/%d: mean loss %.4f (pixel %.4f, image %.4f), %.1fs; wrote %s",
				e.Epoch, recipe.Epochs, e.Loss, e.Local, e.Image, e.Seconds, o.Epoch(s.Epoch)))
			mf.Epochs, mf.Seconds = s.History, time.Since(start).Seconds()
			mf.Checkpoints = append(mf.Checkpoints, o.Epoch(s.Epoch))
			return train.WriteReport(o, mf, h.Variant+" on "+d.id)
		},
	}
	err = tr.Run(ctx, hooks)
	p.Finish()
	if err != nil {
		return err
	}
	l := tr.Learned(source)
	if err := l.WriteFile(o.Learned); err != nil {
		return err
	}
	mf.Epochs, mf.Seconds, mf.OutputSHA256, mf.Finished = tr.State().History, time.Since(start).Seconds(), l.SourceSHA256, true
	if err := train.WriteReport(o, mf, h.Variant+" on "+d.id); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "epoch\tloss\tpixel\timage\tseconds\n")
	for _, e := range tr.State().History {
		fmt.Fprintf(stdout, "%d\t%.4f\t%.4f\t%.4f\t%.1f\n", e.Epoch, e.Loss, e.Local, e.Image, e.Seconds)
	}
	fmt.Fprintf(stdout, "\nwrote %s (%s), %s, %s\n", o.Learned, l.Label(), o.Plot, o.Manifest)
	return nil
}
