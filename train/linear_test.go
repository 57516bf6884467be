package train_test

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/internal/race"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/train"
)

// TestLinearSchemes trains APRIL-GAN's and MultiADS' linear layers for an
// epoch on the MVTec-AD fixture with tiny models, mosaics included, with
// batches that leave a last batch of one image (APRIL-GAN's row-wise dice),
// and checks the recipes and what is learned.
func TestLinearSchemes(t *testing.T) {
	race.SkipNumeric(t)
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := fixtures.Generate(ctx, filepath.Join(dir, "data"), fixtures.DefaultSeed); err != nil {
		t.Fatal(err)
	}
	rt, err := runner.Open(runner.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for _, c := range []struct {
		scheme  string
		classes int
		recipe  train.Recipe
	}{
		{checkpoints.APRILGAN, 2, train.Recipe{Epochs: 3, Batch: 8, LR: 1e-3, Seed: 111, AugRate: 0.2}},
		{checkpoints.MultiADS, 21, train.Recipe{Epochs: 10, Batch: 4, LR: 1e-3, Seed: 42, AugRate: 0.2}},
	} {
		r, err := train.DefaultsFor(c.scheme, loaders.MVTec)
		if err != nil || r != c.recipe {
			t.Errorf("%s recipe %+v, want %+v (%v)", c.scheme, r, c.recipe, err)
		}
		model := filepath.Join(dir, c.scheme)
		if _, err := clip.BuildTiny(ctx, model, 1, clip.Options{Variant: clip.Variant(c.scheme)}); err != nil {
			t.Fatal(err)
		}
		r.Epochs, r.Batch, r.AugRate = 1, 29, 0.5 // 30 images: a batch of 29, then one of 1
		tr, err := train.New(ctx, rt, train.Config{Scheme: c.scheme, Dataset: loaders.MVTec,
			Loader: loaders.Options{Root: filepath.Join(dir, "data", "mvtec")}, ModelDir: model, Recipe: r})
		if err != nil {
			t.Fatal(err)
		}
		var losses []float64
		var sizes []int
		err = tr.Run(ctx, train.Hooks{Step: func(s train.StepInfo) {
			losses, sizes = append(losses, s.Loss), append(sizes, s.Images)
			if s.ImageCE != 0 {
				t.Errorf("%s: an image-level loss %v", c.scheme, s.ImageCE)
			}
		}})
		tr.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(sizes) != 2 || sizes[1] != 1 {
			t.Fatalf("%s: batches of %v", c.scheme, sizes)
		}
		for _, l := range losses {
			if !(l > 0) || math.IsInf(l, 0) {
				t.Errorf("%s: loss %v", c.scheme, l)
			}
		}
		if tr.Head().Classes() != c.classes {
			t.Errorf("%s: %d classes, want %d", c.scheme, tr.Head().Classes(), c.classes)
		}
		if n := len(tr.Head().Learnable()); n != 8 {
			t.Errorf("%s learns %d tensors: %v", c.scheme, n, tr.Head().Learnable())
		}
		if st := tr.State(); st.Settings.AugRate != 0.5 {
			t.Errorf("%s: settings record aug rate %v", c.scheme, st.Settings.AugRate)
		}
	}
	// Where the official trainers cannot go.
	for _, c := range []struct {
		scheme, dataset, want string
		aug                   float64
	}{
		{checkpoints.MultiADS, loaders.VisA, "cannot train", 0},
		{checkpoints.APRILGAN, "mpdd", "MVTec-AD or VisA", 0},
		{checkpoints.APRILGAN, loaders.VisA, "mosaic", 0.2},
	} {
		root := filepath.Join(dir, "data", c.dataset)
		_, err := train.New(ctx, rt, train.Config{Scheme: c.scheme, Dataset: c.dataset, Loader: loaders.Options{Root: root},
			ModelDir: filepath.Join(dir, c.scheme), Recipe: train.Recipe{Epochs: 1, Batch: 2, LR: 1e-3, AugRate: c.aug}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s on %s (aug %v): %v, want an error about %q", c.scheme, c.dataset, c.aug, err, c.want)
		}
	}
}
