// Package trainparity replays the official training runs of APRIL-GAN
// and MultiADS that reference.py recorded with dapobench train, for the
// training parity tests (apart from package parity, which the schemes'
// own tests import and which therefore cannot import package train).
package trainparity

import (
	"context"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dapobench/dapobench/baselines/internal/parity"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/train"
)

// Step is one step of a reference's training run.
type Step struct {
	ImgPath  []string `json:"img_path"`
	Loss     float64  `json:"loss"`
	PerLayer []struct {
		Focal float64 `json:"focal"`
		Dice  float64 `json:"dice"`
	} `json:"per_layer"`
}

// Training is the training part of a reference.json.
type Training struct {
	Seed       uint64  `json:"seed"`
	Batch      int     `json:"batch"`
	LR         float64 `json:"lr"`
	Init       string  `json:"init"`
	Checkpoint string  `json:"checkpoint"`
	Steps      []Step  `json:"steps"`
	AugRate    float64 `json:"aug_rate"`
}

// Order replays the reference's data order: the images of its steps, in
// order, as indices of the training samples.
func (tr *Training) Order(_ int, samples []loaders.Sample) ([]int, error) {
	var out []int
	for _, st := range tr.Steps {
		for _, p := range st.ImgPath {
			i := slices.IndexFunc(samples, func(s loaders.Sample) bool { return s.RelImage == p })
			if i < 0 {
				return nil, fmt.Errorf("the reference trains on %s, which is not a training sample", p)
			}
			out = append(out, i)
		}
	}
	return out, nil
}

// TrainRun is dapobench train replaying a reference run.
type TrainRun struct {
	Losses      []float64 // per step
	Focal, Dice float64   // means over the steps of the sums over layers
	Tensors     map[string]clip.Tensor
}

// Train trains scheme on the dataset's selection for one epoch from the
// official initial tensors (testdata/<Init>, the official checkpoint
// format, imported), in the reference's data order and batch size.
func Train(t testing.TB, tr *Training, scheme, dataset, testdata, modelDir string, d *parity.Data) *TrainRun {
	t.Helper()
	ctx := context.Background()
	man, err := clip.ReadManifest(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := checkpoints.Import(filepath.Join(testdata, tr.Init), scheme, man)
	if err != nil {
		t.Fatal(err)
	}
	initFile := filepath.Join(t.TempDir(), "init.safetensors")
	if err := l.WriteFile(initFile); err != nil {
		t.Fatal(err)
	}
	init, err := train.ReadInit(initFile)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := runner.Open(runner.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	trainer, err := train.New(ctx, rt, train.Config{Scheme: scheme, Dataset: dataset, Loader: d.Loader(dataset), ModelDir: modelDir,
		Init: init, Order: tr.Order, Recipe: train.Recipe{Epochs: 1, Batch: tr.Batch, LR: tr.LR, Seed: tr.Seed}})
	if err != nil {
		t.Fatal(err)
	}
	defer trainer.Close()
	run := &TrainRun{}
	if err := trainer.Run(ctx, train.Hooks{Step: func(s train.StepInfo) { run.Losses = append(run.Losses, s.Loss) }}); err != nil {
		t.Fatal(err)
	}
	st := trainer.State()
	if len(st.History) != 1 || st.Adam.Step != len(tr.Steps) {
		t.Fatalf("%d epochs, %d steps; the reference made %d steps", len(st.History), st.Adam.Step, len(tr.Steps))
	}
	run.Focal, run.Dice, run.Tensors = st.History[0].Focal, st.History[0].Dice, st.Tensors
	return run
}

// CheckTraining compares a run with the reference: every step's loss, the
// mean focal and dice sums, each relative to the official value within
// tol, and the tensors after the last step (reference tensors
// train/step<k>/<name>) within tol of each tensor's largest element.
func CheckTraining(t testing.TB, tr *Training, run *TrainRun, ref *parity.Reference, tol float64) {
	t.Helper()
	rel := func(a, b float64) float64 { return math.Abs(a-b) / math.Abs(b) }
	if len(run.Losses) != len(tr.Steps) {
		t.Fatalf("%d steps, the reference %d", len(run.Losses), len(tr.Steps))
	}
	var focal, dice float64
	for k, st := range tr.Steps {
		d := rel(run.Losses[k], st.Loss)
		t.Logf("step %d: loss %.8g, official %.8g (relative %.2g)", k+1, run.Losses[k], st.Loss, d)
		if d > tol {
			t.Errorf("step %d: loss %.8g, official %.8g (relative %.2g)", k+1, run.Losses[k], st.Loss, d)
		}
		for _, l := range st.PerLayer {
			focal += l.Focal
			dice += l.Dice
		}
	}
	n := float64(len(tr.Steps))
	focal, dice = focal/n, dice/n
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"focal", run.Focal, focal}, {"dice", run.Dice, dice}} {
		d := rel(c.got, c.want)
		t.Logf("mean %s over the steps (summed over layers): %.8g, official %.8g (relative %.2g)", c.name, c.got, c.want, d)
		if d > tol {
			t.Errorf("mean %s: %.8g, official %.8g (relative %.2g)", c.name, c.got, c.want, d)
		}
	}
	worst := 0.0
	last := len(tr.Steps)
	for _, name := range slices.Sorted(maps.Keys(run.Tensors)) {
		want := ref.Tensor(t, fmt.Sprintf("train/step%d/%s", last, name))
		scale := 0.0
		for _, v := range want.Data {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		d := parity.MaxAbsDiff(run.Tensors[name].Data, want.Data) / scale
		worst = math.Max(worst, d)
		if d > tol {
			t.Errorf("%s after %d Adam steps: differs by %.3g of its largest element", name, last, d)
		}
	}
	t.Logf("%d tensors after %d Adam steps within %.2g of their largest element", len(run.Tensors), last, worst)
}
