package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/results"
	"github.com/dapobench/dapobench/train"
)

// TestTrain trains DAPO's prompts on the mvtec fixture with a tiny model,
// resumes a shorter run to the same end, and evaluates the visa fixture
// with the trained prompts and with the untrained ones they started from.
func TestTrain(t *testing.T) {
	data, model := runFixture(t, "dapo")
	dir := t.TempDir()
	trainArgs := func(out string, extra ...string) []string {
		return append([]string{"train", "--scheme", "dapo", "--dataset", "mvtec", "--root", filepath.Join(data, "mvtec"),
			"--model", model, "--device", "cpu", "--threads", "1", "--out", out}, extra...)
	}
	full := filepath.Join(dir, "full", "dapo.safetensors")
	stdout, stderr, err := runCLI(t, trainArgs(full, "--epochs", "2")...)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	t.Logf("train:\n%s%s", stderr, stdout)
	for _, want := range []string{"epoch 1/2: mean loss", "wrote " + filepath.Join(dir, "full", "dapo.epoch2.safetensors")} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, stderr)
		}
	}
	base := strings.TrimSuffix(full, ".safetensors")
	for _, f := range []string{".epoch1.safetensors", ".epoch2.safetensors", ".loss.png", ".train.json"} {
		if _, err := os.Stat(base + f); err != nil {
			t.Error(err)
		}
	}
	b, err := os.ReadFile(base + ".loss.png")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Errorf("loss plot: %v", err)
	}
	var mf train.Manifest
	b, err = os.ReadFile(base + ".train.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &mf); err != nil {
		t.Fatal(err)
	}
	if !mf.Finished || len(mf.Epochs) != 2 || mf.Samples != 30 || mf.Recipe.Seed != 42 || mf.Recipe.Batch != 8 || len(mf.Epochs[0].Steps) != 4 {
		t.Errorf("manifest: finished %v, %d epochs, %d samples, recipe %+v", mf.Finished, len(mf.Epochs), mf.Samples, mf.Recipe)
	}
	l, err := checkpoints.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Trained || l.Scheme != "dapo" || !strings.Contains(l.Source, "dapobench train dapo on mvtec") || l.SourceSHA256 != mf.OutputSHA256 {
		t.Errorf("learned tensors: %s", l.Label())
	}

	// The second epoch again, resumed from the run's own epoch-1
	// checkpoint (package train tests resuming in depth).
	resumed := filepath.Join(dir, "resumed", "dapo.safetensors")
	if _, stderr, err := runCLI(t, trainArgs(resumed, "--epochs", "2", "--resume", filepath.Join(dir, "full", "dapo.epoch1.safetensors"))...); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(stderr, "resumed from dapo.epoch1.safetensors after epoch 1") {
		t.Errorf("progress:\n%s", stderr)
	}
	a, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	r, err := os.ReadFile(resumed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, r) {
		t.Error("resumed run ended with other tensors than the uninterrupted one")
	}
	// Other settings do not resume.
	_, _, err = runCLI(t, trainArgs(filepath.Join(dir, "bad", "x.safetensors"), "--epochs", "2", "--batch", "4",
		"--resume", filepath.Join(dir, "full", "dapo.epoch1.safetensors"))...)
	if err == nil || !strings.Contains(err.Error(), "batch") {
		t.Errorf("resume with another batch size: %v", err)
	}

	// The trained prompts against the untrained ones they started from
	// (seed 42), on the visa fixture.
	eval := func(name string, extra ...string) *results.Results {
		out := filepath.Join(dir, name)
		stdout, _, err := runCLI(t, append([]string{"run", "--scheme", "dapo", "--dataset", "visa", "--root", filepath.Join(data, "visa"),
			"--model", model, "--device", "cpu", "--cache", "", "--quiet", "--out", out}, extra...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s:\n%s", name, stdout)
		res, err := results.Read(filepath.Join(out, "results.json"))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	trained := eval("visa-trained", "--prompts", full)
	untrained := eval("visa-untrained", "--seed", "42")
	// The last epoch checkpoint holds the same tensors as the final file.
	lastEpoch := eval("visa-epoch2", "--prompts", filepath.Join(dir, "full", "dapo.epoch2.safetensors"))
	for _, cat := range trained.CategoryNames() {
		for _, metric := range results.StandardMetrics() {
			x, _ := trained.Categories[cat].Get(metric)
			y, _ := lastEpoch.Categories[cat].Get(metric)
			if x != y {
				t.Errorf("%s %s: %v from the final file, %v from the epoch checkpoint", cat, metric, x, y)
			}
		}
	}
	differ := false
	for _, cat := range trained.CategoryNames() {
		for _, metric := range results.StandardMetrics() {
			x, okx := trained.Categories[cat].Get(metric)
			y, oky := untrained.Categories[cat].Get(metric)
			if okx != oky || x != y {
				differ = true
			}
		}
	}
	if !differ {
		t.Error("trained and untrained prompts give the same visa results")
	}
}

func TestTrainUsage(t *testing.T) {
	data, model := runFixture(t, "anomalyclip")
	out := filepath.Join(t.TempDir(), "p.safetensors")
	root := filepath.Join(data, "mvtec")
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"--dataset", "mvtec", "--root", root, "--model", model, "--out", out}, true, "--scheme is required"},
		{[]string{"--scheme", "winclip", "--dataset", "mvtec", "--root", root, "--model", model, "--out", out}, true, "want one of dapo, anomalyclip, adaclip, aprilgan, multiads"},
		{[]string{"--scheme", "anomalyclip", "--dataset", "mvtec", "--root", root, "--model", model, "--out", "p.pth"}, true, "FILE.safetensors"},
		{[]string{"--scheme", "anomalyclip", "--dataset", "mvtec", "--root", root, "--model", model, "--out", out, "--epochs", "0"}, true, "positive"},
		{[]string{"--scheme", "dapo", "--dataset", "mvtec", "--root", root, "--model", model, "--out", out, "--device", "cpu"}, false, "variant dapo"},
		{[]string{"--scheme", "anomalyclip", "--dataset", "mvtec", "--root", root, "--model", model, "--out", out, "--device", "cpu",
			"--resume", filepath.Join(root, "license.txt")}, false, "license.txt"},
		{[]string{"--scheme", "anomalyclip", "--dataset", "mvtec", "--root", filepath.Join(data, "nowhere"), "--model", model, "--out", out, "--device", "cpu"}, false, "nowhere"},
	} {
		_, _, err := runCLI(t, append([]string{"train"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, cli.ErrUsage) != tc.usage {
			t.Errorf("%v: error %v, want %q (usage %v)", tc.args, err, tc.want, tc.usage)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s (%v)", out, err)
	}
}

// TestTrainInit starts training from an official-format checkpoint
// imported with models import, continues from that run's epoch
// checkpoint with --init, and checks that --resume and --init refuse each
// other's files, and files that do not fit, with the reason.
func TestTrainInit(t *testing.T) {
	data, model := runFixture(t, "dapo")
	dir := t.TempDir()
	root := filepath.Join(data, "mvtec")
	trainArgs := func(out string, extra ...string) []string {
		return append([]string{"train", "--scheme", "dapo", "--dataset", "mvtec", "--root", root,
			"--model", model, "--device", "cpu", "--threads", "1", "--quiet", "--out", out}, extra...)
	}
	imported := filepath.Join(dir, "imported.safetensors")
	pth := filepath.Join("..", "..", "checkpoints", "testdata", "dapo_train.pth")
	if _, stderr, err := runCLI(t, "models", "import", "--scheme", "dapo", "--checkpoint", pth, "--model", model, "--out", imported); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	init, err := checkpoints.ReadFile(imported)
	if err != nil {
		t.Fatal(err)
	}

	// From the imported checkpoint, masks thresholded.
	first := filepath.Join(dir, "first", "dapo.safetensors")
	if _, stderr, err := runCLI(t, trainArgs(first, "--epochs", "1", "--init", imported, "--mask-rule", "threshold")...); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	mf := readTrainManifest(t, strings.TrimSuffix(first, ".safetensors")+".train.json")
	if mf.MaskRule != "threshold" || mf.InitFrom == nil || mf.InitFrom.Kind != "learned" || mf.InitFrom.Path != imported ||
		mf.InitFrom.SHA256 != sha256Of(t, imported) || !strings.HasPrefix(mf.InitFrom.Tensors, "trained (dapo_train.pth, sha256 ") ||
		!strings.HasPrefix(mf.Init, "from imported.safetensors (learned: trained (dapo_train.pth") {
		t.Errorf("manifest: mask rule %q, init %q from %+v", mf.MaskRule, mf.Init, mf.InitFrom)
	}
	out, err := checkpoints.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Source, "mask rule threshold, init imported.safetensors") {
		t.Errorf("output source %q", out.Source)
	}
	// Four Adam steps from the imported tensors move each element by about
	// lr a step, and never more than 4·lr·(1−β1)/√(1−β2) ≈ 0.063; the
	// seeded tensors the run would otherwise start from are farther away.
	table := func(name string) []float32 { return out.Tensors[name].Data }
	maxDiff := func(a, b []float32) float64 {
		m := 0.0
		for i := range a {
			m = max(m, math.Abs(float64(a[i]-b[i])))
		}
		return m
	}
	for _, name := range init.Names() {
		d := maxDiff(table(name), init.Tensors[name].Data)
		t.Logf("%s moved by up to %.3g from the imported tensors", name, d)
		if d > 0.064 || d == 0 {
			t.Errorf("%s moved by %g from the imported tensors", name, d)
		}
	}
	man, err := clip.ReadManifest(model)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := man.ReadTokenEmbedding(model)
	if err != nil {
		t.Fatal(err)
	}
	seeded, err := checkpoints.Untrained("dapo", man, tokens, 42)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(table(checkpoints.NormalCtx), seeded.Tensors[checkpoints.NormalCtx].Data); d < 0.1 {
		t.Errorf("normal_ctx is within %g of the seeded tensors", d)
	}

	// --init from its epoch checkpoint, with the default (official) rule.
	ckpt := filepath.Join(dir, "first", "dapo.epoch1.safetensors")
	second := filepath.Join(dir, "second", "dapo.safetensors")
	if _, stderr, err := runCLI(t, trainArgs(second, "--epochs", "1", "--init", ckpt)...); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	mf = readTrainManifest(t, strings.TrimSuffix(second, ".safetensors")+".train.json")
	if mf.MaskRule != "truncate" || mf.InitFrom == nil || mf.InitFrom.Kind != "epoch-checkpoint" ||
		!strings.Contains(mf.InitFrom.Tensors, "after epoch 1") || mf.InitFrom.TensorsSHA256 != out.SourceSHA256 {
		t.Errorf("manifest: mask rule %q, init from %+v", mf.MaskRule, mf.InitFrom)
	}

	other := filepath.Join(dir, "anomalyclip.safetensors")
	l, err := checkpoints.Untrained("anomalyclip", nil, clip.Tensor{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WriteFile(other); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad", "x.safetensors")
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"--init", imported, "--resume", ckpt}, true, "not both"},
		{[]string{"--mask-rule", "round"}, true, `mask rule "round": want truncate or threshold`},
		{[]string{"--resume", imported}, false, "imported.safetensors: a learned-tensor file (models import or train output), not an epoch checkpoint: it has no optimiser state to resume; start a run from its tensors with --init"},
		{[]string{"--resume", ckpt, "--epochs", "2"}, false, "mask_rule threshold (now truncate)"},
		{[]string{"--init", pth}, false, "a torch checkpoint, not a learned-tensor file: convert it first with dapobench models import"},
		{[]string{"--init", other}, false, "holds anomalyclip tensors; this run trains dapo"},
		{[]string{"--init", filepath.Join(root, "license.txt")}, false, "license.txt: not a learned-tensor file or an epoch checkpoint"},
	} {
		_, _, err := runCLI(t, trainArgs(bad, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, cli.ErrUsage) != tc.usage {
			t.Errorf("%v: error %v, want %q (usage %v)", tc.args, err, tc.want, tc.usage)
		}
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a refused run left %s (%v)", bad, err)
	}
}

func readTrainManifest(t *testing.T, path string) train.Manifest {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var mf train.Manifest
	if err := json.Unmarshal(b, &mf); err != nil {
		t.Fatal(err)
	}
	return mf
}

func sha256Of(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
