package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/internal/benchflag"
	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/schemes"
	"github.com/dapobench/dapobench/train"
)

func cmdTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench train", stderr)
	var d benchflag.Dataset
	d.Register(fs)
	scheme := fs.String("scheme", "", "scheme whose tensors to learn: "+strings.Join(checkpoints.Schemes(), ", "))
	variant := fs.String("variant", "", "named variant of the scheme (dapobench run --scheme S -list-variants)")
	modelDir := fs.String("model", "", "model directory of the scheme's variant (dapobench models build or models tiny)")
	out := fs.String("out", "", "trained tensors, FILE.safetensors; epoch checkpoints FILE.epoch<N>.safetensors, FILE.loss.png, FILE.train.json beside it")
	epochs := fs.Int("epochs", 0, "epochs (default: the scheme's recipe, dapo 5, anomalyclip 15, adaclip 5, aprilgan 3 on mvtec and 15 on visa, multiads 10)")
	batch := fs.Int("batch", 0, "images per step (default 8; adaclip 1, multiads 4)")
	lr := fs.Float64("lr", 0, "Adam learning rate (default 1e-3; adaclip AdamW 0.01)")
	seed := fs.Uint64("seed", 0, "seed of the initial tensors, the image order and the mosaics (default: dapo and multiads 42, anomalyclip, adaclip and aprilgan 111)")
	augRate := fs.Float64("aug-rate", 0, "probability of a four-image mosaic per training image (aprilgan and multiads on mvtec; default: the recipe's 0.2)")
	resume := fs.String("resume", "", "continue from an epoch checkpoint FILE.epoch<N>.safetensors, optimiser state included")
	initFile := fs.String("init", "", "start from the tensors of a learned-tensor file (models import or train output) or an epoch checkpoint, with a fresh optimiser")
	maskRule := fs.String("mask-rule", "", "how resized ground-truth masks are read: truncate (defect only at level 255, DAPO's train.py) or threshold (> 0.5, AnomalyCLIP's train.py and the evaluation); default: the scheme's own trainer's")
	recompute := fs.String("recompute", "auto", "recompute activations in the backward pass instead of keeping them: auto (when a step would keep more than 4 GiB), on or off; the gradients are the same")
	device := benchflag.Device(fs)
	threads := benchflag.Threads(fs)
	quiet := fs.Bool("quiet", false, "no progress output")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := cli.Require(fs, "scheme", "dataset", "root", "model", "out"); err != nil {
		return err
	}
	if !slices.Contains(checkpoints.Schemes(), *scheme) {
		return fmt.Errorf("%w: train: --scheme %q: want one of %s", cli.ErrUsage, *scheme, strings.Join(checkpoints.Schemes(), ", "))
	}
	if spec, err := schemes.Lookup(*scheme); err != nil {
		return err
	} else if err := spec.CheckVariant(*variant); err != nil {
		return err
	}
	if !strings.HasSuffix(*out, ".safetensors") {
		return fmt.Errorf("%w: train: --out %q: want a FILE.safetensors name", cli.ErrUsage, *out)
	}
	if err := loaders.CheckOutside(d.Root, *out); err != nil {
		return err
	}
	if *resume != "" && *initFile != "" {
		return fmt.Errorf("%w: train: give --resume (continue a run, optimiser state included) or --init (start from tensors with a fresh optimiser), not both", cli.ErrUsage)
	}
	rule := train.DefaultMaskRule(*scheme)
	if *maskRule != "" {
		r, err := train.ParseMaskRule(*maskRule)
		if err != nil {
			return fmt.Errorf("%w: %v", cli.ErrUsage, err)
		}
		rule = r
	}
	rc, err := train.ParseRecompute(*recompute)
	if err != nil {
		return fmt.Errorf("%w: %v", cli.ErrUsage, err)
	}
	recipe, err := train.DefaultsFor(*scheme, d.ID)
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
	if set["aug-rate"] {
		recipe.AugRate = *augRate
	}
	if recipe.Epochs < 1 || recipe.Batch < 1 || !(recipe.LR > 0) {
		return fmt.Errorf("%w: train: --epochs %d, --batch %d, --lr %g: want positive values", cli.ErrUsage, recipe.Epochs, recipe.Batch, recipe.LR)
	}
	rt, err := runner.Open(runner.Options{Device: *device, Threads: *threads})
	if err != nil {
		return err
	}
	defer rt.Close()
	var log io.Writer = stderr
	if *quiet {
		log = nil
	}
	cfg := train.Config{Scheme: *scheme, Variant: *variant, Dataset: d.ID, Loader: d.Options(), ModelDir: *modelDir, Recipe: recipe, MaskRule: rule, Recompute: rc}
	res, err := train.RunJob(ctx, rt, train.Job{Config: cfg, Out: *out, Init: *initFile, Resume: *resume, Log: log})
	if err != nil {
		return err
	}
	o, l := res.Outputs, res.Learned
	fmt.Fprintf(stdout, "epoch\tloss\tpixel\timage\tseconds\n")
	for _, e := range res.Manifest.Epochs {
		fmt.Fprintf(stdout, "%d\t%.4f\t%.4f\t%.4f\t%.1f\n", e.Epoch, e.Loss, e.Local, e.Image, e.Seconds)
	}
	fmt.Fprintf(stdout, "\nwrote %s (%s), %s, %s\n", o.Learned, l.Label(), o.Plot, o.Manifest)
	return nil
}
