package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/results"
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
	stdout, stderr, err := runCLI(t, trainArgs(full, "--epochs", "3")...)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	t.Logf("train:\n%s%s", stderr, stdout)
	for _, want := range []string{"epoch 1/3: mean loss", "wrote " + filepath.Join(dir, "full", "dapo.epoch3.safetensors")} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, stderr)
		}
	}
	base := strings.TrimSuffix(full, ".safetensors")
	for _, f := range []string{".epoch1.safetensors", ".epoch2.safetensors", ".epoch3.safetensors", ".loss.png", ".train.json"} {
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
	var mf trainManifest
	b, err = os.ReadFile(base + ".train.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &mf); err != nil {
		t.Fatal(err)
	}
	if !mf.Finished || len(mf.Epochs) != 3 || mf.Samples != 30 || mf.Recipe.Seed != 42 || mf.Recipe.Batch != 8 || len(mf.Epochs[0].Steps) != 4 {
		t.Errorf("manifest: finished %v, %d epochs, %d samples, recipe %+v", mf.Finished, len(mf.Epochs), mf.Samples, mf.Recipe)
	}
	l, err := checkpoints.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Trained || l.Scheme != "dapo" || !strings.Contains(l.Source, "dapobench train dapo on mvtec") || l.SourceSHA256 != mf.OutputSHA256 {
		t.Errorf("learned tensors: %s", l.Label())
	}

	// Two epochs, then the third from the epoch-2 checkpoint.
	part := filepath.Join(dir, "part", "dapo.safetensors")
	if _, _, err := runCLI(t, trainArgs(part, "--epochs", "2", "--quiet")...); err != nil {
		t.Fatal(err)
	}
	resumed := filepath.Join(dir, "resumed", "dapo.safetensors")
	if _, stderr, err := runCLI(t, trainArgs(resumed, "--epochs", "3", "--resume", filepath.Join(dir, "part", "dapo.epoch2.safetensors"))...); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(stderr, "resumed from dapo.epoch2.safetensors after epoch 2") {
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
	_, _, err = runCLI(t, trainArgs(filepath.Join(dir, "bad", "x.safetensors"), "--epochs", "3", "--batch", "4",
		"--resume", filepath.Join(dir, "part", "dapo.epoch2.safetensors"))...)
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
	epoch3 := eval("visa-epoch3", "--prompts", filepath.Join(dir, "full", "dapo.epoch3.safetensors"))
	for _, cat := range trained.CategoryNames() {
		for _, metric := range results.StandardMetrics() {
			x, _ := trained.Categories[cat].Get(metric)
			y, _ := epoch3.Categories[cat].Get(metric)
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
		{[]string{"--scheme", "winclip", "--dataset", "mvtec", "--root", root, "--model", model, "--out", out}, true, "want dapo or anomalyclip"},
		{[]string{"--scheme", "anomalyclip", "--dataset", "mvtec", "--root", root, "--model", model, "--out", "p.pth"}, true, "FILE.safetensors"},
		{[]string{"--scheme", "anomalyclip", "--dataset", "mvtec", "--root", root, "--model", model, "--out", out, "--epochs", "0"}, true, "positive"},
		{[]string{"--scheme", "dapo", "--dataset", "mvtec", "--root", root, "--model", model, "--out", out, "--device", "cpu"}, false, "variant dapo"},
		{[]string{"--scheme", "anomalyclip", "--dataset", "mvtec", "--root", root, "--model", model, "--out", out, "--device", "cpu",
			"--resume", filepath.Join(root, "license.txt")}, false, "license.txt"},
		{[]string{"--scheme", "anomalyclip", "--dataset", "mvtec", "--root", filepath.Join(data, "nowhere"), "--model", model, "--out", out, "--device", "cpu"}, false, "nowhere"},
	} {
		_, _, err := runCLI(t, append([]string{"train"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, errUsage) != tc.usage {
			t.Errorf("%v: error %v, want %q (usage %v)", tc.args, err, tc.want, tc.usage)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s (%v)", out, err)
	}
}
