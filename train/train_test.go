package train_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/internal/race"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/train"
)

// fixtureRoot generates the synthetic datasets and returns the folder of
// one of them.
func fixtureRoot(t testing.TB, id string) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := fixtures.Generate(context.Background(), dir, fixtures.DefaultSeed); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, id)
}

func newTrainer(t testing.TB, scheme, variant, model, root string, epochs int) *train.Trainer {
	t.Helper()
	r, err := train.Defaults(scheme)
	if err != nil {
		t.Fatal(err)
	}
	r.Epochs = epochs
	tr, err := train.New(context.Background(), rt, train.Config{Scheme: scheme, Variant: variant, Dataset: "mvtec",
		Loader: loaders.Options{Root: root}, ModelDir: model, Recipe: r})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// TestTrainingLowersLoss trains each scheme on the mvtec fixture (30
// images, 4 steps an epoch) with the official recipe and checks that the
// mean loss of the last epoch is below that of the first. The runs are
// seeded and single-threaded, so the losses are the same every time.
func TestTrainingLowersLoss(t *testing.T) {
	race.SkipNumeric(t)
	root := fixtureRoot(t, "mvtec")
	for _, tc := range []struct {
		scheme, variant string
		model           clip.Variant
		epochs          int
	}{
		{checkpoints.DAPO, "dapo", clip.DAPO, 4},
		{checkpoints.DAPO, "dapo/e1", clip.DAPO, 4},
		{checkpoints.AnomalyCLIP, "anomalyclip", clip.AnomalyCLIP, 4},
	} {
		t.Run(tc.variant, func(t *testing.T) {
			m := tinyModel(t, tc.model)
			tr := newTrainer(t, tc.scheme, tc.variant, m.dir, root, tc.epochs)
			steps := 0
			err := tr.Run(context.Background(), train.Hooks{Step: func(s train.StepInfo) {
				steps++
				if s.Epochs != tc.epochs || s.Batches != 4 {
					t.Errorf("step %+v", s)
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			h := tr.State().History
			if len(h) != tc.epochs || steps != 4*tc.epochs {
				t.Fatalf("%d epochs and %d steps recorded", len(h), steps)
			}
			for _, e := range h {
				t.Logf("epoch %d: loss %.4f (local %.4f: focal %.4f, dice %.4f; image %.4f), %d images, steps %.4f",
					e.Epoch, e.Loss, e.Local, e.Focal, e.Dice, e.Image, e.Images, e.Steps)
				if e.Images != 30 || math.Abs(e.Loss-(e.Local+e.Image)) > 1e-4*e.Loss {
					t.Errorf("epoch %d: %d images, loss %g ≠ local %g + image %g", e.Epoch, e.Images, e.Loss, e.Local, e.Image)
				}
			}
			if first, last := h[0].Loss, h[len(h)-1].Loss; !(last < first) {
				t.Errorf("mean loss went from %.4f (epoch 1) to %.4f (epoch %d)", first, last, len(h))
			}
		})
	}
}

// TestResume trains three epochs in one go, and one epoch, a checkpoint,
// then the rest from the checkpoint read back: the final tensors, Adam's
// moments and the loss history are identical.
func TestResume(t *testing.T) {
	race.SkipNumeric(t)
	root := fixtureRoot(t, "mvtec")
	m := tinyModel(t, clip.DAPO)
	full := newTrainer(t, checkpoints.DAPO, "dapo", m.dir, root, 3)
	init := slices.Clone(full.State().Tensors[checkpoints.NormalCtx].Data)
	if err := full.Run(context.Background(), train.Hooks{}); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "state.safetensors")
	first := newTrainer(t, checkpoints.DAPO, "dapo", m.dir, root, 1)
	err := first.Run(context.Background(), train.Hooks{Epoch: func(s *train.State) error { return s.WriteFile(path) }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := train.ReadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Epoch != 1 || s.Adam.Step != 4 {
		t.Fatalf("state after epoch %d, step %d", s.Epoch, s.Adam.Step)
	}
	rest := newTrainer(t, checkpoints.DAPO, "dapo", m.dir, root, 3)
	if err := rest.Resume(s); err != nil {
		t.Fatal(err)
	}
	if err := rest.Run(context.Background(), train.Hooks{}); err != nil {
		t.Fatal(err)
	}
	a, b := full.State(), rest.State()
	if a.Epoch != 3 || b.Epoch != 3 || a.Adam.Step != b.Adam.Step {
		t.Fatalf("epochs %d and %d, steps %d and %d", a.Epoch, b.Epoch, a.Adam.Step, b.Adam.Step)
	}
	for name, x := range a.Tensors {
		if !slices.Equal(x.Data, b.Tensors[name].Data) {
			t.Errorf("%s differs after resuming", name)
		}
	}
	for name, x := range a.Adam.M {
		if !slices.Equal(x, b.Adam.M[name]) || !slices.Equal(a.Adam.V[name], b.Adam.V[name]) {
			t.Errorf("Adam moments of %s differ after resuming", name)
		}
	}
	for i := range a.History {
		if !slices.Equal(a.History[i].Steps, b.History[i].Steps) {
			t.Errorf("epoch %d: step losses %v, resumed %v", i+1, a.History[i].Steps, b.History[i].Steps)
		}
	}
	// The trained tensors differ from the initial ones and load as a
	// learned checkpoint.
	l := rest.Learned("test run")
	if err := l.Check(m.man); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(init, l.Tensors[checkpoints.NormalCtx].Data) {
		t.Error("training left normal_ctx as it was")
	}
	out := filepath.Join(t.TempDir(), "learned.safetensors")
	if err := l.WriteFile(out); err != nil {
		t.Fatal(err)
	}
	back, err := checkpoints.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Trained || back.Source != "test run" || back.SourceSHA256 != l.SourceSHA256 {
		t.Errorf("read back %s", back.Label())
	}

	// A state from other settings is refused.
	other := newTrainer(t, checkpoints.DAPO, "dapo/e1", m.dir, root, 3)
	if err := other.Resume(s); err == nil {
		t.Error("resumed a dapo state into dapo/e1")
	}
	s.Epoch = 2
	if err := first.Resume(s); err == nil {
		t.Error("resumed a state beyond the epochs asked for")
	}
}

// TestCancel stops a run from its first step: Run returns the context's
// error and no epoch is recorded.
func TestCancel(t *testing.T) {
	root := fixtureRoot(t, "mvtec")
	m := tinyModel(t, clip.AnomalyCLIP)
	tr := newTrainer(t, checkpoints.AnomalyCLIP, "", m.dir, root, 2)
	ctx, cancel := context.WithCancel(context.Background())
	epochs := 0
	err := tr.Run(ctx, train.Hooks{Step: func(train.StepInfo) { cancel() }, Epoch: func(*train.State) error { epochs++; return nil }})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if epochs != 0 || tr.State().Epoch != 0 {
		t.Errorf("%d epochs reported, state after epoch %d", epochs, tr.State().Epoch)
	}
}
