package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/results"
)

// runFixture generates the fixtures and a tiny model of variant and
// returns their folders.
func runFixture(t *testing.T, variant string) (data, model string) {
	t.Helper()
	dir := t.TempDir()
	data, model = filepath.Join(dir, "data"), filepath.Join(dir, "model")
	if _, _, err := runCLI(t, "fixtures", "gen", "--out", data); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "models", "tiny", "--out", model, "--variant", variant); err != nil {
		t.Fatal(err)
	}
	return data, model
}

func readManifest(t *testing.T, p string) bench.Manifest {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m bench.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRunDeterministic runs DAPO on a fixture dataset three times: the
// results.json bytes must not depend on the feature cache, the thread
// count, or a resumed run.
func TestRunDeterministic(t *testing.T) {
	data, model := runFixture(t, "dapo")
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	run := func(out string, extra ...string) []byte {
		args := append([]string{"run", "--dataset", "mpdd", "--root", filepath.Join(data, "mpdd"), "--model", model,
			"--scheme", "dapo", "--device", "cpu", "--out", out, "--quiet"}, extra...)
		stdout, _, err := runCLI(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout, "bracket_brown") || !strings.Contains(stdout, "untrained (seed 1)") {
			t.Errorf("output:\n%s", stdout)
		}
		b, err := os.ReadFile(filepath.Join(out, "results.json"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := run(filepath.Join(tmp, "a"), "--cache", cache, "--threads", "1")
	if m := readManifest(t, filepath.Join(tmp, "a", "manifest.json")); m.Categories[0].Computed == 0 || m.Categories[0].Cached != 0 {
		t.Errorf("first run: %+v", m.Categories)
	}
	b := run(filepath.Join(tmp, "b"), "--cache", cache, "--threads", "2")
	if m := readManifest(t, filepath.Join(tmp, "b", "manifest.json")); m.Categories[0].Computed != 0 {
		t.Errorf("second run recomputed features: %+v", m.Categories)
	}
	c := run(filepath.Join(tmp, "c"), "--cache", "", "--threads", "2")
	if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
		t.Errorf("results differ between runs:\n%s\n%s", a, c)
	}
	// Resume: a completed category is read back, a deleted one recomputed.
	os.Remove(filepath.Join(tmp, "c", "categories", "tubes.json"))
	d := run(filepath.Join(tmp, "c"), "--cache", "")
	if !bytes.Equal(a, d) {
		t.Error("resumed run differs")
	}
	r, err := results.Unmarshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Categories) != 2 || r.Mean == nil || r.Settings["prompts"] != "untrained (seed 1)" {
		t.Errorf("results: %+v", r)
	}
	for _, name := range []string{"bracket_brown", "tubes"} {
		for _, k := range results.StandardMetrics() {
			if _, ok := r.Categories[name].Get(k); !ok && r.Categories[name].Undefined[k] == "" {
				t.Errorf("%s: %s missing", name, k)
			}
		}
	}
	if len(r.DefectTypes) == 0 {
		t.Error("no defect-type table")
	}
	for ty, e := range r.DefectTypes {
		if v := e.Notes["vocabulary"]; v != "seen" && v != "novel" {
			t.Errorf("defect type %s: vocabulary %q", ty, v)
		}
	}
}

func TestRunCorruptCacheEntry(t *testing.T) {
	data, model := runFixture(t, "dapo")
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	args := func(out string) []string {
		return []string{"run", "--dataset", "mad-real", "--root", filepath.Join(data, "mad-real"), "--model", model,
			"--scheme", "dapo", "--device", "cpu", "--out", out, "--quiet", "--cache", cache, "--category", "Bird"}
	}
	if _, _, err := runCLI(t, args(filepath.Join(tmp, "a"))...); err != nil {
		t.Fatal(err)
	}
	// Damage one image-feature entry: it must be recomputed, never used.
	var entries []string
	filepath.Walk(cache, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() && p == filepath.Join(cache, "text") {
			return filepath.SkipDir // the text features
		}
		if err == nil && !fi.IsDir() {
			entries = append(entries, p)
		}
		return nil
	})
	if len(entries) == 0 {
		t.Fatal("empty cache")
	}
	b, _ := os.ReadFile(entries[0])
	b[len(b)/2] ^= 0xFF
	os.WriteFile(entries[0], b, 0o644)
	if _, _, err := runCLI(t, args(filepath.Join(tmp, "b"))...); err != nil {
		t.Fatal(err)
	}
	m := readManifest(t, filepath.Join(tmp, "b", "manifest.json"))
	if m.Categories[0].Computed != 1 {
		t.Errorf("after corrupting one entry: %+v", m.Categories)
	}
	ra, _ := os.ReadFile(filepath.Join(tmp, "a", "results.json"))
	rb, _ := os.ReadFile(filepath.Join(tmp, "b", "results.json"))
	if !bytes.Equal(ra, rb) {
		t.Error("results differ after recomputing a corrupt entry")
	}
}

func TestRunBadInput(t *testing.T) {
	data, model := runFixture(t, "dapo")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--scheme", "nope"}, "unknown scheme"},
		{[]string{"--scheme", "dapo", "--variant", "dapo/e3"}, "unknown variant"},
		{[]string{"--scheme", "dapo", "--aupro", "pro"}, "AUPRO"},
		{[]string{"--scheme", "dapo", "--prompts", filepath.Join(data, "nothing.safetensors")}, "nothing.safetensors"},
	} {
		args := append([]string{"run", "--dataset", "mpdd", "--root", filepath.Join(data, "mpdd"), "--model", model, "--device", "cpu",
			"--out", t.TempDir(), "--quiet", "--cache", ""}, c.args...)
		if _, _, err := runCLI(t, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}

// TestRunMapsThroughEval checks two independent paths against each other:
// the maps and image scores a run saves, evaluated by `dapobench eval
// --resize-gt`, give exactly the run's own results.
func TestRunMapsThroughEval(t *testing.T) {
	data, model := runFixture(t, "dapo")
	tmp := t.TempDir()
	run := filepath.Join(tmp, "run")
	root := filepath.Join(data, "mad-real")
	if _, _, err := runCLI(t, "run", "--dataset", "mad-real", "--root", root, "--model", model,
		"--scheme", "dapo", "--device", "cpu", "--out", run, "--quiet", "--cache", "", "--save-maps", "--aupro", "mvtec"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "eval.json")
	if _, _, err := runCLI(t, "eval", "--dataset", "mad-real", "--root", root, "--maps", filepath.Join(run, "maps"),
		"--scores", filepath.Join(run, "maps", "scores.csv"), "--resize-gt", "--aupro", "mvtec", "--out", out, "--quiet"); err != nil {
		t.Fatal(err)
	}
	a, err := results.Read(filepath.Join(run, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := results.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	// The run's class maps reproduce its multi-type metrics too: the
	// per-category macro metrics and type accuracy, and every defect type's
	// row with its seen/novel note.
	keys := append(results.StandardMetrics(), results.TypePixelAUROC, results.TypePixelAP, results.TypePixelF1, results.TypeAccuracy)
	for _, cat := range a.CategoryNames() {
		for _, k := range keys {
			x, okx := a.Categories[cat].Get(k)
			y, oky := b.Categories[cat].Get(k)
			if okx != oky || x != y {
				t.Errorf("%s %s: run %v (%v), eval %v (%v)", cat, k, x, okx, y, oky)
			}
		}
		if x, y := a.Categories[cat].Counts[results.NExcluded], b.Categories[cat].Counts[results.NExcluded]; x != y {
			t.Errorf("%s excluded: run %d, eval %d", cat, x, y)
		}
	}
	if len(a.DefectTypes) == 0 {
		t.Fatal("the DAPO run has no defect-type results")
	}
	if len(a.DefectTypes) != len(b.DefectTypes) {
		t.Errorf("%d defect types from the run, %d from eval", len(a.DefectTypes), len(b.DefectTypes))
	}
	for name, e := range a.DefectTypes {
		f := b.DefectTypes[name]
		if f == nil {
			t.Errorf("defect type %s: missing from eval", name)
			continue
		}
		ja, _ := json.Marshal(e)
		jb, _ := json.Marshal(f)
		if string(ja) != string(jb) {
			t.Errorf("defect type %s:\nrun  %s\neval %s", name, ja, jb)
		}
	}
	// Without the class maps, eval computes the binary metrics alone.
	if err := os.RemoveAll(filepath.Join(run, "maps", "classes")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "eval", "--dataset", "mad-real", "--root", root, "--maps", filepath.Join(run, "maps"),
		"--scores", filepath.Join(run, "maps", "scores.csv"), "--resize-gt", "--aupro", "mvtec", "--out", out, "--quiet"); err != nil {
		t.Fatal(err)
	}
	if c, err := results.Read(out); err != nil || len(c.DefectTypes) != 0 {
		t.Errorf("eval without class maps: %d defect types, %v", len(c.DefectTypes), err)
	}
	// Without --resize-gt the sizes differ, and eval says so.
	if _, _, err := runCLI(t, "eval", "--dataset", "mad-real", "--root", root, "--maps", filepath.Join(run, "maps"),
		"--out", filepath.Join(tmp, "x.json"), "--quiet"); err == nil || !strings.Contains(err.Error(), "--resize-gt") {
		t.Errorf("size mismatch: %v", err)
	}
}
