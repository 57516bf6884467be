package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/towerbench"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/benchflag"
	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/internal/cliflag"
	"github.com/dapobench/dapobench/onnx/runner"
)

// buildFlags are the options shared by models build and models tiny.
type buildFlags struct {
	variant   string
	imageSize int
	layers    cliflag.Ints
	posResize string
	fp16      bool
	external  bool
}

func (b *buildFlags) register(fs *flag.FlagSet) {
	cliflag.StringVar(fs, &b.variant, "variant", "", "tower variant: "+strings.Join(clip.VariantNames(), ", ")+" (required)", func(s string) error { _, err := clip.ParseVariant(s); return err })
	fs.IntVar(&b.imageSize, "image-size", 0, "input image side; 0 keeps the architecture's (positional embedding resized otherwise)")
	fs.Var(&b.layers, "feature-layers", "1-indexed blocks whose patch tokens the image tower returns (default: the variant's)")
	cliflag.StringVar(fs, &b.posResize, "pos-resize", "", "positional-embedding resize: bicubic-antialias, bilinear or bicubic (default: the variant's)", func(s string) error {
		if p := clip.PosResize(s); p != clip.BicubicAntialias && p != clip.Bilinear && p != clip.Bicubic {
			return fmt.Errorf("want %s, %s or %s", clip.BicubicAntialias, clip.Bilinear, clip.Bicubic)
		}
		return nil
	})
	fs.BoolVar(&b.fp16, "fp16", false, "store weights and compute in float16 (for GPUs); inputs and outputs stay float32")
	fs.BoolVar(&b.external, "external-data", false, "store weights as ONNX external data even when small")
}

func (b *buildFlags) options() (clip.Options, error) {
	v, err := clip.ParseVariant(b.variant)
	if err != nil {
		return clip.Options{}, fmt.Errorf("%w: %v", cli.ErrUsage, err)
	}
	o := clip.Options{Variant: v, ImageSize: b.imageSize, PosResize: clip.PosResize(b.posResize), FP16: b.fp16, External: b.external}
	if b.layers != nil {
		o.FeatureLayers = b.layers
	}
	return o, nil
}

func printManifest(w io.Writer, dir string, m *clip.Manifest) {
	fmt.Fprintf(w, "wrote %s: %s %s, image %d (grid %d), feature layers %v, %s\n",
		dir, m.Arch.Name, m.Variant, m.ImageSize, m.Grid, m.FeatureLayers, m.DType)
}

func runModelsBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench models build", stderr)
	weights := fs.String("weights", "", "CLIP weights: safetensors or torch .pt/.pth, OpenAI/open_clip or Hugging Face names (required)")
	arch := cliflag.String(fs, "arch", "", "architecture preset: "+strings.Join(clip.PresetNames(), ", "), func(s string) error { _, err := clip.Preset(s); return err })
	archConfig := fs.String("arch-config", "", "architecture JSON file (instead of --arch)")
	out := fs.String("out", "", "model directory to write (required)")
	// APRIL-GAN and MultiADS rebuild ViT-L with exact GELU
	// (docs/methods.md#aprilgan-gelu); their variants pick it themselves, as
	// AdaCLIP's does.
	act := fs.String("act", "", "override the architecture's activation: quick_gelu or gelu (variants aprilgan and multiads use their factory's: exact GELU off the native size; adaclip runs exact GELU)")
	var bf buildFlags
	bf.register(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := cli.Require(fs, "weights", "variant", "out"); err != nil {
		return err
	}
	o, err := bf.options()
	if err != nil {
		return err
	}
	if (*arch == "") == (*archConfig == "") {
		return fmt.Errorf("%w: models build: give exactly one of --arch and --arch-config", cli.ErrUsage)
	}
	a, _, err := clip.ArchFrom(*arch, *archConfig)
	if err != nil {
		return err
	}
	if *act != "" {
		a.Act = clip.Act(*act)
		if err := a.Validate(); err != nil {
			return fmt.Errorf("%w: models build: --act: %v", cli.ErrUsage, err)
		}
		if f := clip.FactoryArch(o.Variant, a, o.ImageSize); f.Act != a.Act {
			return fmt.Errorf("%w: models build: --act %s: variant %s runs %s at image size %d, as its official factory does", cli.ErrUsage, a.Act, o.Variant, f.Act, o.ImageSize)
		}
	}
	fmt.Fprintf(stderr, "models build: the %s towers of %s from %s into %s\n", o.Variant, a.Name, *weights, *out)
	m, err := clip.BuildFile(ctx, *out, a, *weights, o)
	if err != nil {
		return fmt.Errorf("models build: %s: %w", *weights, err)
	}
	printManifest(stdout, *out, m)
	return nil
}

func runModelsTiny(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench models tiny", stderr)
	out := fs.String("out", "", "model directory to write (required)")
	seed := fs.Uint64("seed", 1, "seed of the random weights")
	arch := fs.String("arch", "", "seeded random weights of this preset's sizes instead of the tiny architecture (for measurements): "+strings.Join(clip.PresetNames(), ", "))
	archConfig := fs.String("arch-config", "", "seeded random weights of this architecture JSON's sizes (instead of --arch)")
	var bf buildFlags
	bf.register(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := cli.Require(fs, "variant", "out"); err != nil {
		return err
	}
	o, err := bf.options()
	if err != nil {
		return err
	}
	if *arch != "" && *archConfig != "" {
		return fmt.Errorf("%w: models tiny: give exactly one of --arch and --arch-config", cli.ErrUsage)
	}
	a, ok, err := clip.ArchFrom(*arch, *archConfig)
	if err != nil {
		return err
	} else if !ok {
		a = clip.TinyArch(o.Variant)
	}
	m, err := clip.BuildSeeded(ctx, *out, a, *seed, o)
	if err != nil {
		return fmt.Errorf("models tiny: %w", err)
	}
	printManifest(stdout, *out, m)
	return nil
}

func runModelsRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench models run", stderr)
	model := fs.String("model", "", "model directory (required)")
	out := fs.String("out", "", "folder for the .npy outputs (required)")
	prompts := fs.String("prompts", "", "safetensors with learned inputs (visual_prompts, deep_tokens); zeros when absent")
	device := benchflag.Device(fs)
	var images, texts cliflag.Strings
	fs.Var(&images, "image", "image file (repeatable)")
	fs.Var(&texts, "text", "text prompt (repeatable)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := cli.Require(fs, "model", "out"); err != nil {
		return err
	}
	if len(images) == 0 && len(texts) == 0 {
		return fmt.Errorf("%w: models run: give at least one --image or --text", cli.ErrUsage)
	}
	m, err := clip.ReadManifest(*model)
	if err != nil {
		return err
	}
	learned, err := bench.ReadTensors(*prompts)
	if err != nil {
		return fmt.Errorf("models run: --prompts: %w", err)
	}
	rt, err := runner.Open(runner.Options{Device: *device})
	if err != nil {
		return err
	}
	defer rt.Close()
	res, err := bench.RunTowers(ctx, rt, *model, m, bench.TowerInputs{Images: images, Texts: texts, Learned: learned, Warn: stderr})
	if err != nil {
		return fmt.Errorf("models run: %w", err)
	}
	if err := bench.WriteTowerOutputs(*out, res, stdout); err != nil {
		return fmt.Errorf("models run: %w", err)
	}
	return nil
}

func runModelsBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench models bench", stderr)
	model := fs.String("model", "", "model directory (required)")
	device := fs.String("device", "auto", "auto, cpu, cuda or cuda:N")
	batch := fs.Int("batch", 0, "images per run (0: 1 on the CPU, 8 on a GPU)")
	images := fs.Int("images", 0, "images timed after one warm-up batch (0: four batches)")
	threads := fs.Int("threads", 0, "onnxruntime threads (0: one per CPU)")
	reference := fs.String("reference", "", "second model directory (e.g. the float32 build of a --fp16 one) to compare outputs with on the same images")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := cli.Require(fs, "model"); err != nil {
		return err
	}
	rt, err := runner.Open(runner.Options{Device: *device, Threads: *threads})
	if err != nil {
		return err
	}
	defer rt.Close()
	r, err := towerbench.Measure(ctx, rt, *model, towerbench.Options{Batch: *batch, Images: *images, Reference: *reference, Seed: 1})
	if err != nil {
		return fmt.Errorf("models bench: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	towerbench.Print(stdout, r)
	return nil
}
