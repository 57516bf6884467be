package study

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestRanges(t *testing.T) {
	for _, c := range []struct {
		ns     []int
		offset int
		want   string
	}{
		{[]int{0, 1, 2, 3}, 0, "0-3"},
		{[]int{2, 5, 7, 8, 9}, 0, "2,5,7-9"},
		{[]int{1500, 1501, 1503}, 1500, "0-1,3"},
	} {
		if got := ranges(c.ns, c.offset); got != c.want {
			t.Errorf("ranges(%v, %d) = %q, want %q", c.ns, c.offset, got, c.want)
		}
	}
	small := []int{10, 11, 12}
	if cs := chunks(small); len(cs) != 1 || cs[0].offset != 0 {
		t.Errorf("chunks of a small stage: %+v", cs)
	}
	var big []int
	for n := 900; n < 3100; n++ {
		big = append(big, n)
	}
	cs := chunks(big)
	total := 0
	for _, c := range cs {
		total += len(c.jobs)
		if c.offset != c.jobs[0] || c.jobs[len(c.jobs)-1]-c.offset > MaxArrayIndex {
			t.Errorf("chunk from %d: offset %d, last index %d", c.jobs[0], c.offset, c.jobs[len(c.jobs)-1]-c.offset)
		}
	}
	if total != len(big) || len(cs) != 3 {
		t.Errorf("%d chunks of %d jobs", len(cs), total)
	}
}

// TestWriteSlurm checks the sbatch scripts of the mini study: one array
// per stage whose task index is the job number, GPUs only where models
// run, the log folder in place, and submit.sh chaining the stages.
func TestWriteSlurm(t *testing.T) {
	dir := t.TempDir()
	g := planMini(t, dir, "")
	arrays, err := WriteSlurm(g, SlurmOptions{Partition: "gpu", GPUsPerJob: 1, Time: "2:00:00", Binary: "/opt/dapobench/bin/dapobench",
		Extra: []string{"--qos=high"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(arrays) != len(g.Stages) {
		t.Fatalf("%d arrays for %d stages", len(arrays), len(g.Stages))
	}
	abs, _ := filepath.Abs(dir)
	if st, err := os.Stat(filepath.Join(abs, SlurmDir, "logs")); err != nil || !st.IsDir() {
		t.Error("no log folder: tasks would fail without a log")
	}
	eval, _ := os.ReadFile(arrays[2].Script)
	for _, want := range []string{"#!/bin/bash\n", "#SBATCH --array=3-8\n", "#SBATCH --kill-on-invalid-dep=yes\n", "#SBATCH --partition=gpu\n",
		"#SBATCH --time=2:00:00\n", "#SBATCH --gres=gpu:1\n", "#SBATCH --qos=high\n",
		"#SBATCH --output=" + filepath.Join(abs, SlurmDir, "logs", "%x-%A_%a.out") + "\n",
		"exec /opt/dapobench/bin/dapobench study run " + abs + " --job \"$SLURM_ARRAY_TASK_ID\" --device auto\n"} {
		if !strings.Contains(string(eval), want) {
			t.Errorf("evaluate script lacks %q:\n%s", want, eval)
		}
	}
	report, _ := os.ReadFile(arrays[len(arrays)-1].Script)
	if strings.Contains(string(report), "gres") || !strings.Contains(string(report), "--device cpu") {
		t.Errorf("the report stage asks for a GPU:\n%s", report)
	}
	submit, _ := os.ReadFile(filepath.Join(abs, SlurmDir, "submit.sh"))
	if !strings.Contains(string(submit), "j1=$(sbatch --parsable --dependency=afterok:$j0 ") || !strings.Contains(string(submit), "cut -d';' -f1") {
		t.Errorf("submit.sh:\n%s", submit)
	}
}

// TestWriteK8s checks that the Kubernetes manifests are Indexed Jobs whose
// pods map JOB_COMPLETION_INDEX to the stage's job numbers.
func TestWriteK8s(t *testing.T) {
	dir := t.TempDir()
	g := planMini(t, dir, "")
	files, err := WriteK8s(g, K8sOptions{Image: "registry.example/dapobench:1", PVC: "studies", GPUsPerJob: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(g.Stages) {
		t.Fatalf("%d manifests for %d stages", len(files), len(g.Stages))
	}
	b, err := os.ReadFile(files[2])
	if err != nil {
		t.Fatal(err)
	}
	var j k8sJob
	if err := yaml.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	c := j.Spec.Template.Spec.Containers[0]
	abs, _ := filepath.Abs(dir)
	if j.Spec.CompletionMode != "Indexed" || j.Spec.Completions != 6 || c.Resources.Limits["nvidia.com/gpu"] != "1" ||
		!slices.Contains(c.Command, "exec dapobench study run "+abs+" --job \"$((JOB_COMPLETION_INDEX + 3))\" --device auto") ||
		c.VolumeMounts[0].MountPath != abs || j.Spec.Template.Spec.Volumes[0].PVC.ClaimName != "studies" {
		t.Errorf("manifest:\n%s", b)
	}
	apply, _ := os.ReadFile(filepath.Join(abs, K8sDir, "apply.sh"))
	if !strings.Contains(string(apply), "kubectl wait --for=condition=complete --timeout=-1s job/dapobench-mini-3-evaluate") {
		t.Errorf("apply.sh:\n%s", apply)
	}
}
