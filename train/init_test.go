package train_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/race"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/train"
)

// newTrainerFrom is newTrainer with an Init and a mask rule.
func newTrainerFrom(t testing.TB, model, root string, epochs int, in *train.Init, rule train.MaskRule) (*train.Trainer, error) {
	t.Helper()
	r, err := train.Defaults(checkpoints.DAPO)
	if err != nil {
		t.Fatal(err)
	}
	r.Epochs = epochs
	tr, err := train.New(context.Background(), rt, train.Config{Scheme: checkpoints.DAPO, Variant: "dapo", Dataset: "mvtec",
		Loader: loaders.Options{Root: root}, ModelDir: model, Recipe: r, Init: in, MaskRule: rule})
	if err == nil {
		t.Cleanup(func() { tr.Close() })
	}
	return tr, err
}

// TestInit starts runs from files: the seeded tensors written to a file
// give the run the seed gives, bit for bit; an epoch checkpoint gives its
// tensors and no optimiser state; files of another scheme or model, torch
// checkpoints and other files are refused with the reason.
func TestInit(t *testing.T) {
	race.SkipNumeric(t)
	root := fixtureRoot(t, "mvtec")
	m := tinyModel(t, clip.DAPO)
	dir := t.TempDir()
	table, err := m.man.ReadTokenEmbedding(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	seeded, err := checkpoints.Untrained(checkpoints.DAPO, m.man, table, 42)
	if err != nil {
		t.Fatal(err)
	}
	seededPath := filepath.Join(dir, "seed42.safetensors")
	if err := seeded.WriteFile(seededPath); err != nil {
		t.Fatal(err)
	}
	in, err := train.ReadInit(seededPath)
	if err != nil {
		t.Fatal(err)
	}
	if in.From.Kind != train.InitLearned || in.From.Scheme != checkpoints.DAPO || in.From.Tensors != "untrained (seed 42)" || len(in.From.SHA256) != 64 {
		t.Errorf("provenance %+v", in.From)
	}

	// From the file and from the seed: the same run.
	plain, err := newTrainerFrom(t, m.dir, root, 1, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := newTrainerFrom(t, m.dir, root, 1, in, "")
	if err != nil {
		t.Fatal(err)
	}
	if plain.State().Init != nil || fromFile.State().Init == nil || *fromFile.State().Init != in.From {
		t.Errorf("init recorded: %+v and %+v", plain.State().Init, fromFile.State().Init)
	}
	ckpt := filepath.Join(dir, "epoch1.safetensors")
	for _, tr := range []*train.Trainer{plain, fromFile} {
		if err := tr.Run(context.Background(), train.Hooks{Epoch: func(s *train.State) error { return s.WriteFile(ckpt) }}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := plain.Learned("x"), fromFile.Learned("x")
	if a.SourceSHA256 != b.SourceSHA256 {
		t.Error("training from the seeded tensors' file differs from training from the seed")
	}
	if in.From.TensorsSHA256 == a.SourceSHA256 {
		t.Error("the run did not change the tensors")
	}

	// An epoch checkpoint (the last one written: fromFile's) gives its
	// tensors; Adam and the epochs start afresh, the init is recorded.
	in2, err := train.ReadInit(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if in2.From.Kind != train.InitEpochCheckpoint || in2.From.TensorsSHA256 != b.SourceSHA256 ||
		!strings.Contains(in2.From.Tensors, "dapo on mvtec after epoch 1") || !strings.Contains(in2.From.Tensors, "mask rule truncate") {
		t.Errorf("provenance %+v", in2.From)
	}
	cont, err := newTrainerFrom(t, m.dir, root, 1, in2, train.MaskThreshold)
	if err != nil {
		t.Fatal(err)
	}
	s := cont.State()
	if s.Epoch != 0 || s.Adam.Step != 0 || len(s.Adam.M) != 0 || len(s.History) != 0 || s.Settings.MaskRule != train.MaskThreshold {
		t.Errorf("continued run: epoch %d, Adam step %d with %d moments, %d epochs of history, mask rule %s",
			s.Epoch, s.Adam.Step, len(s.Adam.M), len(s.History), s.Settings.MaskRule)
	}
	for k, x := range fromFile.State().Tensors {
		if !slices.Equal(x.Data, s.Tensors[k].Data) {
			t.Errorf("%s is not the checkpoint's", k)
		}
	}
	// The trainer owns a copy: training does not write into the Init.
	if &s.Tensors[checkpoints.NormalCtx].Data[0] == &in2.Learned.Tensors[checkpoints.NormalCtx].Data[0] {
		t.Error("the trainer shares the init's tensors")
	}

	// Files that do not fit.
	other, err := checkpoints.Untrained(checkpoints.AnomalyCLIP, nil, clip.Tensor{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	otherPath := filepath.Join(dir, "anomalyclip.safetensors")
	if err := other.WriteFile(otherPath); err != nil {
		t.Fatal(err)
	}
	shallow := &checkpoints.Learned{Scheme: checkpoints.DAPO, Seed: 1, Tensors: map[string]clip.Tensor{}}
	for k, x := range seeded.Tensors {
		shallow.Tensors[k] = x
	}
	vp := seeded.Tensors[checkpoints.VisualPrompts]
	shallow.Tensors[checkpoints.VisualPrompts] = clip.Tensor{Shape: []int{vp.Shape[0] - 1, vp.Shape[1], vp.Shape[2]}, Data: vp.Data[:len(vp.Data)/vp.Shape[0]*(vp.Shape[0]-1)]}
	shallowPath := filepath.Join(dir, "shallow.safetensors")
	if err := shallow.WriteFile(shallowPath); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.safetensors")
	if err := os.WriteFile(junk, []byte("not a tensor file"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{otherPath, "holds anomalyclip tensors; this run trains dapo"},
		{shallowPath, "does not fit the model " + m.dir},
		{shallowPath, "visual_prompts"},
	} {
		in, err := train.ReadInit(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := newTrainerFrom(t, m.dir, root, 1, in, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", filepath.Base(tc.path), err, tc.want)
		}
	}
	for _, tc := range []struct{ path, want string }{
		{"../checkpoints/testdata/dapo_train.pth", "a torch checkpoint, not a learned-tensor file: convert it first with dapobench models import"},
		{"testdata/official_init.pth", "models import"},
		{junk, "junk.safetensors: not a learned-tensor file or an epoch checkpoint"},
		{filepath.Join(dir, "absent.safetensors"), "absent.safetensors"},
	} {
		if _, err := train.ReadInit(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", filepath.Base(tc.path), err, tc.want)
		}
	}
	if _, err := newTrainerFrom(t, m.dir, root, 1, nil, "round"); err == nil || !strings.Contains(err.Error(), `mask rule "round"`) {
		t.Errorf("mask rule round: %v", err)
	}

	// Resuming refuses an epoch checkpoint of another scheme, and one
	// whose mask reading differs.
	st, err := train.ReadState(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if err := cont.Resume(st); err == nil || !strings.Contains(err.Error(), "mask_rule truncate (now threshold)") {
		t.Errorf("resume across mask rules: %v", err)
	}
	am := tinyModel(t, clip.AnomalyCLIP)
	atr := newTrainer(t, checkpoints.AnomalyCLIP, "", am.dir, root, 1)
	if err := atr.Resume(st); err == nil || !strings.Contains(err.Error(), "the checkpoint holds dapo tensors; this run trains anomalyclip") {
		t.Errorf("resume across schemes: %v", err)
	}
}
