package train_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/train"
)

func ExampleDefaults() {
	for _, s := range []string{checkpoints.DAPO, checkpoints.AnomalyCLIP} {
		r, err := train.Defaults(s)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %d epochs, batch %d, lr %g, seed %d\n", s, r.Epochs, r.Batch, r.LR, r.Seed)
	}
	// Output:
	// dapo: 5 epochs, batch 8, lr 0.001, seed 42
	// anomalyclip: 15 epochs, batch 8, lr 0.001, seed 111
}

// Train AnomalyCLIP's prompts for one epoch on the synthetic MVTec-AD
// fixture with a tiny seeded model, and keep the result as a learned
// checkpoint that `dapobench run --prompts` reads.
func ExampleTrainer() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "train-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if _, err := fixtures.Generate(ctx, filepath.Join(dir, "data"), fixtures.DefaultSeed); err != nil {
		log.Fatal(err)
	}
	model := filepath.Join(dir, "model")
	if _, err := clip.BuildTiny(ctx, model, 1, clip.Options{Variant: clip.AnomalyCLIP}); err != nil {
		log.Fatal(err)
	}
	rt, err := runner.Open(runner.Options{Device: "cpu"})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()

	recipe, err := train.Defaults(checkpoints.AnomalyCLIP)
	if err != nil {
		log.Fatal(err)
	}
	recipe.Epochs = 1
	tr, err := train.New(ctx, rt, train.Config{Scheme: checkpoints.AnomalyCLIP, Dataset: loaders.MVTec,
		Loader: loaders.Options{Root: filepath.Join(dir, "data", "mvtec")}, ModelDir: model, Recipe: recipe})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	steps := 0
	if err := tr.Run(ctx, train.Hooks{Step: func(train.StepInfo) { steps++ }}); err != nil {
		log.Fatal(err)
	}
	l := tr.Learned("example run")
	if err := l.WriteFile(filepath.Join(dir, "prompts.safetensors")); err != nil {
		log.Fatal(err)
	}
	fmt.Println(tr.Samples(), "images,", steps, "steps")
	fmt.Println("learned:", tr.Head().Learnable())
	fmt.Println("trained:", l.Trained)
	// Output:
	// 30 images, 4 steps
	// learned: [normal_ctx abnormal_ctx text_deep]
	// trained: true
}
