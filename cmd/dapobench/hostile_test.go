package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/internal/budget/budgettest"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/results"
)

// copyFile copies a file over another.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRunResumeIsFresh changes what a finished run's categories depend
// on, one thing at a time, and reruns into the same directory: every
// category whose inputs changed is recomputed, the log says why, and the
// results are byte for byte those of a fresh run.
func TestRunResumeIsFresh(t *testing.T) {
	data, model := runFixture(t, "dapo")
	root := filepath.Join(data, "mpdd")
	tmp := t.TempDir()
	out := filepath.Join(tmp, "run")
	run := func(out string, extra ...string) (string, []byte) {
		t.Helper()
		args := append([]string{"run", "--dataset", "mpdd", "--root", root, "--model", model, "--scheme", "dapo",
			"--device", "cpu", "--out", out, "--cache", filepath.Join(tmp, "cache")}, extra...)
		_, stderr, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		b, err := os.ReadFile(filepath.Join(out, "results.json"))
		if err != nil {
			t.Fatal(err)
		}
		return stderr, b
	}
	fresh := func(name string) []byte {
		t.Helper()
		_, b := run(filepath.Join(tmp, name), "--quiet")
		return b
	}
	run(out, "--quiet")
	for _, c := range []struct {
		name   string
		change func()
		why    string // in the log of the changed category, tubes
		extra  []string
	}{
		{"mask content", func() {
			gt := filepath.Join(root, "tubes", "ground_truth", "flattening")
			copyFile(t, filepath.Join(gt, "001_mask.png"), filepath.Join(gt, "000_mask.png"))
		}, "tubes: recomputed: the content of its masks changed", nil},
		{"image content", func() {
			dir := filepath.Join(root, "tubes", "test", "good")
			copyFile(t, filepath.Join(dir, "001.png"), filepath.Join(dir, "000.png"))
		}, "tubes: recomputed: the content of its images changed", nil},
		{"dapobench version", func() {
			p := filepath.Join(out, "categories", "tubes.json")
			var r map[string]any
			b, _ := os.ReadFile(p)
			json.Unmarshal(b, &r)
			r["inputs"].(map[string]any)["dapobench"] = "v0.0.1 0123456789ab"
			b, _ = json.Marshal(r)
			os.WriteFile(p, b, 0o644)
		}, "tubes: recomputed: the dapobench version changed (v0.0.1 0123456789ab → ", nil},
		{"scores", func() { os.Remove(filepath.Join(out, "scores", "tubes.csv")) }, "tubes: recomputed: its scores cannot be read", nil},
		{"examples", func() { os.Remove(filepath.Join(out, "examples", "tubes", "top-anomalous.npy")) },
			"tubes: recomputed: examples/tubes/top-anomalous.npy is missing", nil},
		{"maps", func() {}, "tubes: recomputed: maps/tubes/test/", []string{"--save-maps"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.change()
			stderr, got := run(out, c.extra...)
			if !strings.Contains(stderr, c.why) {
				t.Errorf("log lacks %q:\n%s", c.why, stderr)
			}
			if !strings.Contains(stderr, "bracket_brown: done earlier") && c.name != "maps" {
				t.Errorf("the unchanged category was recomputed:\n%s", stderr)
			}
			if want := fresh(c.name); !bytes.Equal(got, want) {
				t.Errorf("resumed results differ from a fresh run's:\n%s\n%s", got, want)
			}
		})
	}
	// Nothing changed: every category is read back.
	stderr, _ := run(out, "--save-maps")
	if strings.Contains(stderr, "recomputed") || strings.Count(stderr, "done earlier") != 2 {
		t.Errorf("unchanged rerun:\n%s", stderr)
	}
}

// TestRunOut covers the run directory itself: the default name carries
// every setting that changes results, a directory of another
// configuration is refused naming the difference, a directory inside the
// dataset is refused, and a cache entry that is a folder is recomputed.
func TestRunOut(t *testing.T) {
	data, model := runFixture(t, "dapo")
	root := filepath.Join(data, "mpdd")
	tmp := t.TempDir()
	// The runtime library is found from the working directory: pin it
	// before leaving the repository.
	lib, err := runner.FindLibrary("")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(runner.LibraryEnv, lib)
	t.Chdir(tmp)
	base := []string{"run", "--dataset", "mpdd", "--root", root, "--model", model, "--scheme", "dapo", "--device", "cpu", "--quiet", "--cache", "cache"}
	cli := func(extra ...string) error {
		_, _, err := runCLI(t, append(append([]string{}, base...), extra...)...)
		return err
	}
	for _, c := range []struct {
		extra []string
		dir   string
	}{
		{nil, "runs/mpdd-dapo-model-model"},
		{[]string{"--variant", "dapo/no-defect-words"}, "runs/mpdd-dapo-no-defect-words-model-model"},
		{[]string{"--seed", "7"}, "runs/mpdd-dapo-model-model-seed7"},
		{[]string{"--words", "scratch,dent"}, "runs/mpdd-dapo-model-model-words-"},
		{[]string{"--aupro", "mvtec"}, "runs/mpdd-dapo-model-model-aupro-mvtec"},
		{[]string{"--category", "tubes"}, "runs/mpdd-dapo-model-model-tubes"},
	} {
		if err := cli(c.extra...); err != nil {
			t.Fatalf("%v: %v", c.extra, err)
		}
		m, _ := filepath.Glob(c.dir + "*/results.json")
		if len(m) != 1 {
			t.Errorf("%v: no results in %s*: %v", c.extra, c.dir, m)
		}
	}
	runs, _ := filepath.Glob("runs/*")
	if len(runs) != 6 {
		t.Errorf("%d run directories, want 6: %v", len(runs), runs)
	}
	main, _ := os.ReadFile("runs/mpdd-dapo-model-model/results.json")
	// An explicit --out holding another configuration is refused, and the
	// run there is left as it was.
	err = cli("--out", "runs/mpdd-dapo-model-model", "--variant", "dapo/no-defect-words")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), `scheme: "dapo", this run "dapo/no-defect-words"`) ||
		!strings.Contains(err.Error(), "setting words") {
		t.Errorf("another configuration: exit %d, %v", exitCode(err), err)
	}
	err = cli("--out", "runs/mpdd-dapo-model-model", "--seed", "7")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), `setting prompts: "untrained (seed 1)", this run "untrained (seed 7)"`) {
		t.Errorf("another seed: exit %d, %v", exitCode(err), err)
	}
	if b, _ := os.ReadFile("runs/mpdd-dapo-model-model/results.json"); !bytes.Equal(b, main) {
		t.Error("a refused run changed the results")
	}
	// Inside the dataset root.
	err = cli("--out", filepath.Join(root, "runs"))
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "inside the dataset root") {
		t.Errorf("--out inside --root: exit %d, %v", exitCode(err), err)
	}
	if _, err := os.Stat(filepath.Join(root, "runs")); err == nil {
		t.Error("the refused run wrote into the dataset")
	}
	// A cache entry that is a folder is recomputed, as a corrupt one.
	var entries []string
	os.RemoveAll("cache")
	if err := cli("--out", "again0"); err != nil {
		t.Fatal(err)
	}
	filepath.Walk("cache", func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(p, ".feat") {
			entries = append(entries, p)
		}
		return nil
	})
	os.Remove(entries[0])
	os.MkdirAll(filepath.Join(entries[0], "x"), 0o755)
	if err := cli("--out", "again"); err != nil {
		t.Fatalf("a folder in the cache: %v", err)
	}
	if m := readManifest(t, "again/manifest.json"); m.Categories[0].Computed+m.Categories[1].Computed != 1 {
		t.Errorf("after a cache entry became a folder: %+v", m.Categories)
	}
	if b, _ := os.ReadFile("again/results.json"); !bytes.Equal(b, main) {
		t.Error("results differ after recomputing a cache entry")
	}
}

// TestIncompleteRunRefused makes the last write of a rerun fail, as a full
// disk would (manifest.json cannot be replaced), and checks that the
// directory no longer reads as a finished run: report, check and compare
// refuse it.
func TestIncompleteRunRefused(t *testing.T) {
	data, model := runFixture(t, "dapo")
	tmp := t.TempDir()
	out := filepath.Join(tmp, "run")
	args := []string{"run", "--dataset", "mpdd", "--root", filepath.Join(data, "mpdd"), "--model", model, "--scheme", "dapo",
		"--device", "cpu", "--out", out, "--quiet", "--cache", ""}
	if _, _, err := runCLI(t, args...); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join(tmp, "golden.json")
	copyFile(t, filepath.Join(out, "results.json"), golden)
	other := filepath.Join(tmp, "other")
	if _, _, err := runCLI(t, append(append([]string{}, args[:len(args)-5]...), "--out", other, "--quiet", "--cache", "")...); err != nil {
		t.Fatal(err)
	}
	// manifest.json becomes a folder that cannot be removed or replaced.
	os.Remove(filepath.Join(out, "manifest.json"))
	os.MkdirAll(filepath.Join(out, "manifest.json", "blocked"), 0o755)
	if _, _, err := runCLI(t, args...); err == nil {
		t.Fatal("the run did not fail")
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"report", out, "--out", filepath.Join(tmp, "report"), "--quiet"}, 1},
		{[]string{"check", "--golden", golden, out}, 3},
		{[]string{"compare", other, out}, 1},
	} {
		_, _, err := runCLI(t, c.args...)
		if !errors.Is(err, results.ErrIncomplete) || exitCode(err) != c.code {
			t.Errorf("%v: exit %d, %v; want %d and an incomplete run", c.args[0], exitCode(err), err, c.code)
		}
	}
	// A stale results.json beside a half-written manifest (what the disk
	// filling up during manifest.json left before) is refused too.
	copyFile(t, golden, filepath.Join(out, "results.json"))
	os.RemoveAll(filepath.Join(out, "manifest.json"))
	os.WriteFile(filepath.Join(out, "manifest.json"), []byte(`{"schema": "dapobench/run-manifest/v1", "catego`), 0o644)
	for _, a := range [][]string{{"report", out, "--out", filepath.Join(tmp, "report"), "--quiet"}, {"check", "--golden", golden, out},
		{"check", "--golden", golden, filepath.Join(out, "results.json")}, {"compare", other, out}} {
		if _, _, err := runCLI(t, a...); !errors.Is(err, results.ErrIncomplete) {
			t.Errorf("%s of a half-written manifest: %v", a[0], err)
		}
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestHostileDatasets runs the commands on fixture trees broken the way an
// adversary would: decompression bombs in a plain and a deep scan and in
// a run, symbolic links, and options that do not apply.
func TestHostileDatasets(t *testing.T) {
	data, model := runFixture(t, "dapo")
	bomb := func(dataset, rel, name string) string {
		t.Helper()
		root := filepath.Join(t.TempDir(), dataset)
		if err := os.CopyFS(root, os.DirFS(filepath.Join(data, dataset))); err != nil {
			t.Fatal(err)
		}
		copyFile(t, budgettest.Bomb(t, name), filepath.Join(root, rel))
		return root
	}
	gorilla := bomb("mad-sim", "01Gorilla/ground_truth/good/0_mask.png", "rgb.png")
	bottle := bomb("mvtec", "bottle/test/good/000.png", "gray.png")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"datasets", "scan", "--dataset", "mad-sim", "--root", gorilla}, "01Gorilla/ground_truth/good/0_mask.png: image too large"},
		{[]string{"datasets", "scan", "--dataset", "mvtec", "--root", bottle, "--deep"}, "bottle/test/good/000.png: image too large"},
		{[]string{"run", "--dataset", "mad-sim", "--root", gorilla, "--model", model, "--scheme", "dapo", "--device", "cpu",
			"--out", filepath.Join(t.TempDir(), "run"), "--quiet", "--cache", ""}, "01Gorilla/ground_truth/good/0_mask.png: image too large"},
		{[]string{"models", "import", "--scheme", "dapo", "--checkpoint", filepath.Join("..", "..", "clip", "testdata", "torch", "bombs", "huge_storage.pth"),
			"--out", filepath.Join(t.TempDir(), "x.safetensors")}, "huge_storage.pth"},
		{[]string{"models", "import", "--scheme", "dapo", "--checkpoint", filepath.Join("..", "..", "clip", "testdata", "torch", "bombs", "negative_size.pth"),
			"--out", filepath.Join(t.TempDir(), "x.safetensors")}, "negative dimension"},
	} {
		_, _, err := runCLI(t, c.args...)
		if exitCode(err) != 1 || !strings.Contains(fmtErr(err), c.want) {
			t.Errorf("%s: exit %d, %v; want 1 and %q", strings.Join(c.args[:2], " "), exitCode(err), err, c.want)
		}
	}

	// A dataset gathered with ln -s scans as the tree itself.
	linked := filepath.Join(t.TempDir(), "mpdd")
	os.MkdirAll(linked, 0o755)
	for _, c := range []string{"bracket_brown", "tubes"} {
		os.Symlink(filepath.Join(data, "mpdd", c), filepath.Join(linked, c))
	}
	want, _, err := runCLI(t, "datasets", "scan", "--dataset", "mpdd", "--root", filepath.Join(data, "mpdd"), "--json")
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := runCLI(t, "datasets", "scan", "--dataset", "mpdd", "--root", linked, "--json"); err != nil || got != want {
		t.Errorf("symlinked categories: %v\n%s\nwant\n%s", err, got, want)
	}
	os.Symlink(filepath.Join(t.TempDir(), "gone"), filepath.Join(linked, "more"))
	if _, _, err := runCLI(t, "datasets", "scan", "--dataset", "mpdd", "--root", linked); exitCode(err) != 1 || !strings.Contains(fmtErr(err), "more: broken symbolic link") {
		t.Errorf("dangling link: exit %d, %v", exitCode(err), err)
	}
}

// TestExitCodes holds every command to one rule: 2 for bad usage (an
// unknown flag, a bad flag value, a missing argument, an option the
// dataset has no use for), 1 when the data say no, 3 when check could not
// check.
func TestExitCodes(t *testing.T) {
	data, model := runFixture(t, "dapo")
	root := filepath.Join(data, "mpdd")
	tmp := t.TempDir()
	run := []string{"run", "--root", root, "--model", model, "--out", filepath.Join(tmp, "r"), "--quiet", "--cache", "", "--device", "cpu"}
	scan := []string{"datasets", "scan", "--root", root}
	train := []string{"train", "--scheme", "dapo", "--dataset", "mpdd", "--root", root, "--model", model, "--out", filepath.Join(tmp, "t.safetensors")}
	eval := []string{"eval", "--dataset", "mpdd", "--root", root, "--maps", tmp, "--out", filepath.Join(tmp, "e.json")}
	with := func(base []string, extra ...string) []string { return append(append([]string{}, base...), extra...) }
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{with(run, "--dataset", "mvtec-ad", "--scheme", "dapo"), 2, "unknown dataset"},
		{with(run, "--dataset", "mpdd", "--scheme", "dapo", "--variant", "dapo/e9"), 2, "unknown variant"},
		{with(run, "--dataset", "mpdd", "--scheme", "dapo", "--device", "tpu"), 2, "tpu"},
		{with(run, "--dataset", "mpdd", "--scheme", "dapo", "--threads", "-1"), 2, "-threads"},
		{with(run, "--dataset", "mpdd", "--scheme", "dapo", "--batch", "-1"), 2, "-batch"},
		{with(run, "--dataset", "mpdd", "--scheme", "dapos"), 2, "unknown scheme"},
		{with(run, "--dataset", "mpdd", "--scheme", "dapo", "--aupro", "pro"), 2, "-aupro"},
		{with(run, "--dataset", "mpdd", "--scheme", "dapo", "--words", ",,,"), 2, "empty word"},
		{with(run, "--dataset", "mpdd", "--scheme", "dapo", "--protocol", "1cls"), 2, "protocol option does not apply"},
		{with(run, "--dataset", "mpdd", "--scheme", "dapo", "--category", "bottle"), 2, "unknown category"},
		{with(run, "--dataset", "mpdd", "--scheme", "winclip", "--words", "x"), 2, "does not apply"},
		{with(run, "--dataset", "mpdd", "--scheme", "dapo", "--bogus"), 2, "not defined"},
		{with(run, "--dataset", "mpdd"), 2, "--scheme is required"},
		{with(scan, "--dataset", "mpdd", "--views", "C1"), 2, "views option does not apply"},
		{with(scan, "--dataset", "mpdd", "--resolution", "256"), 2, "resolution option does not apply"},
		{with(scan, "--dataset", "visa"), 1, "visa"},
		{with(train, "--device", "gpu"), 2, "gpu"},
		{with(train, "--threads", "-2"), 2, "-threads"},
		{with(train, "--variant", "dapo/e9"), 2, "unknown variant"},
		{with(train, "--dataset", "nope"), 2, "unknown dataset"},
		{with(eval, "--aupro", "x"), 2, "-aupro"},
		{with(eval, "--workers", "-1"), 2, "-workers"},
		{with(eval, "--out", filepath.Join(root, "results.json")), 2, "inside the dataset root"},
		{with(train, "--out", filepath.Join(root, "tubes", "p.safetensors")), 2, "inside the dataset root"},
		{[]string{"models", "build", "--weights", "w.pth", "--arch", "ViT-H", "--variant", "plain", "--out", tmp}, 2, "ViT-H"},
		{[]string{"models", "build", "--weights", "w.pth", "--arch", "ViT-L-14-336", "--variant", "clipper", "--out", tmp}, 2, "clipper"},
		{[]string{"models", "tiny", "--variant", "dapo", "--pos-resize", "nearest", "--out", tmp}, 2, "nearest"},
		{[]string{"models", "run", "--model", model, "--text", "x", "--device", "cuda:x", "--out", tmp}, 2, "cuda:x"},
		{[]string{"check", "--golden", filepath.Join(tmp, "none.json"), filepath.Join("..", "..", "reports", "testdata", "mpdd-dapo.results.json")}, 3, "does not exist"},
		{[]string{"check", "--golden", filepath.Join("..", "..", "reports", "testdata", "mpdd-dapo.results.json"), tmp}, 3, "incomplete run directory"},
		{[]string{"study", "run", tmp, "--jobs", "0"}, 2, "-jobs"},
		{[]string{"study", "run", tmp, "--device", "tpu"}, 2, "tpu"},
		{[]string{"datasets"}, 2, "give a command"},
		{[]string{"datasets", "check"}, 2, `unknown command "datasets check"`},
		{[]string{"train"}, 2, "--scheme is required"},
	} {
		_, _, err := runCLI(t, c.args...)
		if exitCode(err) != c.code || !strings.Contains(fmtErr(err), c.want) {
			t.Errorf("%s: exit %d, %v; want %d and %q", strings.Join(c.args, " "), exitCode(err), err, c.code, c.want)
		}
	}
	// A command group lists its commands on -h.
	for _, g := range []string{"datasets", "models", "fixtures", "study"} {
		stdout, _, err := runCLI(t, g, "-h")
		if err != nil || !strings.Contains(stdout, "usage: dapobench "+g+" <command>") || !strings.Contains(stdout, "  "+g+" ") {
			t.Errorf("%s -h: %v\n%s", g, err, stdout)
		}
	}
}

// TestRunResumePosition: AdaCLIP's scores depend on an image's place in
// the run (bench.PositionScorer), so a category first run alone and then
// as part of the whole dataset is recomputed, saying why, and the result is
// a fresh run's; for DAPO, whose scores do not, it is read back.
func TestRunResumePosition(t *testing.T) {
	data := genFixtures(t)
	tmp := t.TempDir()
	root := filepath.Join(data, "mpdd")
	for _, c := range []struct {
		scheme, why string
	}{
		{"adaclip", "tubes: recomputed: its place in the run changed (first sample 0 → 7)"},
		{"dapo", "tubes: done earlier"},
	} {
		model := filepath.Join(tmp, "models", c.scheme)
		if _, _, err := runCLI(t, "models", "tiny", "--out", model, "--variant", c.scheme); err != nil {
			t.Fatal(err)
		}
		run := func(out string, extra ...string) (string, []byte) {
			t.Helper()
			args := append([]string{"run", "--dataset", "mpdd", "--root", root, "--model", model, "--scheme", c.scheme,
				"--device", "cpu", "--cache", filepath.Join(tmp, "cache"), "--out", out}, extra...)
			_, stderr, err := runCLI(t, args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			b, _ := os.ReadFile(filepath.Join(out, "results.json"))
			return stderr, b
		}
		out := filepath.Join(tmp, c.scheme)
		run(out, "--category", "tubes", "--quiet")
		stderr, got := run(out)
		if !strings.Contains(stderr, c.why) {
			t.Errorf("%s: log lacks %q:\n%s", c.scheme, c.why, stderr)
		}
		if _, want := run(filepath.Join(tmp, c.scheme+"-fresh"), "--quiet"); !bytes.Equal(got, want) {
			t.Errorf("%s: resumed results differ from a fresh run's", c.scheme)
		}
	}
}
