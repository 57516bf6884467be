package study

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// planMini plans testdata/mini.yaml into a fresh folder; data "" writes
// the fixtures there.
func planMini(t *testing.T, dir, data string) *Graph {
	t.Helper()
	p, err := ParsePlan("testdata/mini.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := MakeGraph(context.Background(), p, PlanOptions{Data: data, Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// studyOutputs are a study's RESULTS.md and every results.json by path.
func studyOutputs(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Name() == "results.json" || rel == ResultsFile {
			b, err := os.ReadFile(p)
			out[rel] = b
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameOutputs(t *testing.T, what string, want, got map[string][]byte) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%s: %d files, want %d", what, len(got), len(want))
	}
	for k, w := range want {
		if !bytes.Equal(w, got[k]) {
			t.Errorf("%s: %s differs", what, k)
		}
	}
}

// TestGraph checks the job graph of the mini study: ids, stages in
// dependency order, parts and merges, and that planning again gives the
// same study.json byte for byte.
func TestGraph(t *testing.T) {
	dir := t.TempDir()
	g := planMini(t, dir, "")
	var ids []string
	for _, j := range g.Jobs {
		ids = append(ids, g.Stages[j.Stage].Name+" "+j.ID)
		for _, d := range j.Deps {
			if g.Jobs[d].Stage >= j.Stage {
				t.Errorf("%s (stage %d) depends on %s (stage %d)", j.ID, j.Stage, g.Jobs[d].ID, g.Jobs[d].Stage)
			}
		}
	}
	want := []string{
		"models model/anomalyclip", "models model/winclip",
		"train train/mvtec/anomalyclip/s111",
		"evaluate eval/anomalyclip/mpdd/s111", "evaluate part/anomalyclip/real-iad/s111/audiojack", "evaluate part/anomalyclip/real-iad/s111/toy_brick",
		"evaluate eval/winclip/mpdd", "evaluate part/winclip/real-iad/audiojack", "evaluate part/winclip/real-iad/toy_brick",
		"merge eval/anomalyclip/real-iad/s111", "merge eval/winclip/real-iad",
		"report report",
	}
	if !slices.Equal(ids, want) {
		t.Errorf("jobs:\n%s\nwant:\n%s", strings.Join(ids, "\n"), strings.Join(want, "\n"))
	}
	merge, _ := g.Job("eval/anomalyclip/real-iad/s111")
	if merge.Kind != KindMerge || !slices.Equal(merge.Eval.Parts, []string{"audiojack", "toy_brick"}) || len(merge.Deps) != 4 {
		t.Errorf("merge job %+v, deps %v", merge.Eval, merge.Deps)
	}
	ev, _ := g.Job("eval/anomalyclip/mpdd/s111")
	if tr, _ := g.Job("train/mvtec/anomalyclip/s111"); !slices.Contains(ev.Deps, tr.N) || ev.Eval.Prompts != tr.Train.Out {
		t.Errorf("AnomalyCLIP on mpdd: deps %v, prompts %s; want the training %d and its %s", ev.Deps, ev.Eval.Prompts, tr.N, tr.Train.Out)
	}
	if j, err := g.Job("3"); err != nil || j != ev {
		t.Errorf("job 3: %v %v", j, err)
	}
	first, err := os.ReadFile(filepath.Join(dir, GraphFile))
	if err != nil {
		t.Fatal(err)
	}
	planMini(t, dir, "")
	again, _ := os.ReadFile(filepath.Join(dir, GraphFile))
	if !bytes.Equal(first, again) {
		t.Error("planning the same plan again changed study.json")
	}
	other := filepath.Join(t.TempDir(), "other")
	p, _ := ParsePlan("testdata/mini.yaml")
	p.Name = "other"
	if _, err := MakeGraph(context.Background(), p, PlanOptions{Out: dir}); err == nil || !strings.Contains(err.Error(), `holds study "mini"`) {
		t.Errorf("planning another study into the folder: %v", err)
	}
	if _, err := MakeGraph(context.Background(), p, PlanOptions{Out: other, Data: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "dataset folders not found: mvtec") {
		t.Errorf("planning without the datasets: %v", err)
	}
}

// TestRun runs the mini study with two jobs at once and with one, and
// checks that the results are byte-identical; then that nothing runs
// again, that a killed training and a lost merge resume to the same
// bytes, and that a changed plan reruns what it changed.
func TestRun(t *testing.T) {
	ctx := context.Background()
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	planMini(t, a, "")
	var log bytes.Buffer
	if err := Run(ctx, a, RunOptions{Jobs: 2, Device: "cpu", Log: &log}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	g := planMini(t, b, filepath.Join(a, "data"))
	if err := Run(ctx, b, RunOptions{Jobs: 1, Device: "cpu"}); err != nil {
		t.Fatal(err)
	}
	want := studyOutputs(t, a)
	if len(want) != 5 {
		t.Errorf("%d outputs, want RESULTS.md and 4 results.json", len(want))
	}
	sameOutputs(t, "--jobs 1 against --jobs 2", want, studyOutputs(t, b))

	// Done jobs are not run again.
	log.Reset()
	if err := Run(ctx, b, RunOptions{Jobs: 2, Device: "cpu", Log: &log}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "12 done earlier, 0 to run") {
		t.Errorf("second run: %s", log.String())
	}

	// A training killed after its first epoch resumes from the checkpoint.
	tr, _ := g.Job("train/mvtec/anomalyclip/s111")
	out := g.Path(tr.Train.Out)
	prompts, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{out, filepath.Join(g.jobDir(tr), doneFile)} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	log.Reset()
	if err := Run(ctx, b, RunOptions{Job: "train/mvtec/anomalyclip/s111", Device: "cpu", Log: &log}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "resumed from prompts.epoch2.safetensors after epoch 2") {
		t.Errorf("the training did not resume:\n%s", log.String())
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(again, prompts) {
		t.Error("the resumed training learned other tensors")
	}

	// A merge whose results were lost reads its parts' records again.
	mj, _ := g.Job("eval/anomalyclip/real-iad/s111")
	for _, f := range []string{filepath.Join(g.Path(mj.Eval.Out), "results.json"), filepath.Join(g.jobDir(mj), doneFile)} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	log.Reset()
	if err := Run(ctx, b, RunOptions{Job: mj.ID, Device: "cpu", Log: &log}); err != nil {
		t.Fatal(err)
	}
	if strings.Count(log.String(), "done earlier, read from") != 2 {
		t.Errorf("the merge recomputed a category:\n%s", log.String())
	}
	if err := Run(ctx, b, RunOptions{Jobs: 1, Device: "cpu"}); err != nil {
		t.Fatal(err)
	}
	sameOutputs(t, "after resuming", want, studyOutputs(t, b))

	// A job whose dependency is not done refuses to start.
	part, _ := g.Job("part/anomalyclip/real-iad/s111/audiojack")
	for _, j := range []*Job{part, mj} {
		if err := os.Remove(filepath.Join(g.jobDir(j), doneFile)); err != nil {
			t.Fatal(err)
		}
	}
	if err := Run(ctx, b, RunOptions{Job: mj.ID, Device: "cpu"}); err == nil || !strings.Contains(err.Error(), "needs part/anomalyclip/real-iad/s111/audiojack, which is not done") {
		t.Errorf("merge before its part: %v", err)
	}

	// Another recipe: the training and everything after it run again.
	plan, _ := os.ReadFile("testdata/mini.yaml")
	changed := filepath.Join(t.TempDir(), "mini.yaml")
	if err := os.WriteFile(changed, bytes.Replace(plan, []byte("epochs: 3"), []byte("epochs: 2"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := ParsePlan(changed)
	if err != nil {
		t.Fatal(err)
	}
	if g, err = MakeGraph(ctx, p, PlanOptions{Data: filepath.Join(a, "data"), Out: b}); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, s := range Status(g) {
		states[s.Job.ID] = s.State
		if s.Job.ID == "train/mvtec/anomalyclip/s111" && !s.Stale {
			t.Error("the retrained job is not marked as changed")
		}
	}
	for id, want := range map[string]string{"model/anomalyclip": StateDone, "eval/winclip/mpdd": StateDone, "train/mvtec/anomalyclip/s111": StateReady,
		"eval/anomalyclip/mpdd/s111": StateWaiting, "part/anomalyclip/real-iad/s111/audiojack": StateWaiting} {
		if states[id] != want {
			t.Errorf("%s: %s, want %s", id, states[id], want)
		}
	}
	var st bytes.Buffer
	if err := WriteStatus(&st, g); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.String(), "ready (plan changed)") || !strings.Contains(st.String(), "study mini: 12 jobs: ") {
		t.Errorf("status:\n%s", st.String())
	}
}
