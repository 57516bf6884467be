package study_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dapobench/dapobench/study"
)

// TestSlurm runs the fixture study on a real single-node Slurm cluster
// started on localhost (scripts/slurm/cluster.sh) and checks that its
// RESULTS.md and every results.json are byte-identical to the same study
// run locally with two jobs at once and with one; then it kills one array
// task in the middle of its training, resubmits, and checks the results
// again. `make test-slurm` runs it (as root, with slurm-wlm and munge
// installed); plain `go test` skips it.
func TestSlurm(t *testing.T) {
	if os.Getenv("DAPOBENCH_SLURM_TEST") == "" {
		t.Skip("needs a Slurm cluster: make test-slurm starts one on localhost and runs this test")
	}
	bin := os.Getenv("DAPOBENCH_BIN")
	if bin == "" {
		t.Fatal("DAPOBENCH_BIN: the dapobench executable the array tasks run (make test-slurm sets it)")
	}
	cluster, err := filepath.Abs("../scripts/slurm/cluster.sh")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := filepath.Abs("../studies/fixtures.yaml")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	cdir := filepath.Join(root, "cluster")
	// Registered after TempDir, so it runs before the folder is removed;
	// stop is safe after a failed start and stops the daemons by pid.
	t.Cleanup(func() {
		out, err := exec.Command("bash", cluster, "stop", cdir).CombinedOutput()
		if err != nil {
			t.Errorf("stopping the cluster: %v\n%s", err, out)
		}
	})
	start := time.Now()
	cmd := exec.Command("bash", cluster, "start", cdir)
	cmd.Env = append(os.Environ(), "SLURM_TEST_CPUS=4")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if _, err := cmd.Output(); err != nil {
		t.Fatalf("starting the cluster: %v\n%s", err, stderr.String())
	}
	t.Setenv("SLURM_CONF", filepath.Join(cdir, "slurm.conf"))
	t.Logf("cluster up in %.1fs", time.Since(start).Seconds())

	data := filepath.Join(root, "data")
	dapobench(t, bin, "fixtures", "gen", "--out", data)
	planned := func(name string) string {
		dir := filepath.Join(root, name)
		dapobench(t, bin, "study", "plan", plan, "--data", data, "--out", dir)
		return dir
	}

	// The references: two jobs at once, and one at a time.
	local2, local1 := planned("local2"), planned("local1")
	timed(t, "local run, --jobs 2", func() { dapobench(t, bin, "study", "run", local2, "--jobs", "2", "--device", "cpu", "--quiet") })
	timed(t, "local run, --jobs 1", func() { dapobench(t, bin, "study", "run", local1, "--jobs", "1", "--device", "cpu", "--quiet") })
	want := outputs(t, local2)
	same(t, "--jobs 1", want, outputs(t, local1))

	// The study as Slurm job arrays.
	sl := planned("slurm")
	timed(t, "Slurm run", func() {
		ids, _ := submit(t, bin, sl)
		if len(ids) < 4 {
			t.Fatalf("submitted %d arrays, want models, train, evaluate, merge and report", len(ids))
		}
		wait(t, ids)
		for _, line := range squeue(t, "-t", "all", "-j", strings.Join(ids, ","), "-o", "%i|%T") {
			if !strings.HasSuffix(line, "|COMPLETED") {
				t.Errorf("task %s (logs in %s)", line, filepath.Join(sl, study.SlurmDir, "logs"))
			}
		}
	})
	same(t, "Slurm", want, outputs(t, sl))

	// One training task killed in the middle, then submitted again.
	kl := planned("kill")
	g, err := study.ReadGraph(kl)
	if err != nil {
		t.Fatal(err)
	}
	victim, err := g.Job("train/mvtec/dapo/s42")
	if err != nil {
		t.Fatal(err)
	}
	timed(t, "Slurm run with a task killed and resubmitted", func() {
		ids, stages := submit(t, bin, kl)
		train := stages["train"]
		// Kill it once its first epoch checkpoint is written, so that the
		// resubmitted task resumes from it.
		checkpoint := filepath.Join(kl, "train", "mvtec", "dapo", "s42", "prompts.epoch1.safetensors")
		deadline := time.Now().Add(3 * time.Minute)
		for {
			if _, err := os.Stat(checkpoint); err == nil {
				break
			}
			if g.Done(victim) {
				t.Fatalf("%s finished before it could be killed", victim.ID)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s wrote no epoch checkpoint in 3 minutes", victim.ID)
			}
			time.Sleep(50 * time.Millisecond)
		}
		task := fmt.Sprintf("%s_%d", train, victim.N)
		if out, err := exec.Command("scancel", "--signal=KILL", task).CombinedOutput(); err != nil {
			t.Fatalf("scancel %s: %v\n%s", task, err, out)
		}
		wait(t, ids)
		if g.Done(victim) {
			t.Fatalf("%s finished although its task was killed", victim.ID)
		}
		for _, s := range study.Status(g) {
			if s.Job == victim && s.State != study.StateInterrupted {
				t.Errorf("status of the killed job: %s %s, want %s", s.State, s.Detail, study.StateInterrupted)
			}
		}
		again, _ := submit(t, bin, kl)
		if len(again) == 0 || len(again) >= len(ids)+1 {
			t.Fatalf("resubmitted %d arrays", len(again))
		}
		wait(t, again)
	})
	same(t, "Slurm with a killed task", want, outputs(t, kl))
	log, err := os.ReadFile(filepath.Join(kl, study.JobsDir, "train", "mvtec", "dapo", "s42", "log.txt"))
	if err != nil || !strings.Contains(string(log), "resumed from prompts.epoch") {
		t.Errorf("the resubmitted training did not resume from its epoch checkpoint (%v):\n%s", err, log)
	}
}

func timed(t *testing.T, what string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	t.Logf("%s: %.1fs", what, time.Since(start).Seconds())
}

func dapobench(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dapobench %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// submit runs study slurm --submit and returns the array job ids, and
// them by stage.
func submit(t *testing.T, bin, dir string) ([]string, map[string]string) {
	t.Helper()
	out := dapobench(t, bin, "study", "slurm", dir, "--submit")
	var ids []string
	stages := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, "\t"); len(f) == 3 {
			ids = append(ids, f[1])
			stages[f[0]] = f[1]
		}
	}
	return ids, stages
}

func squeue(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("squeue", append([]string{"-h"}, args...)...).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "Invalid job id") {
			return nil
		}
		t.Fatalf("squeue %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// wait polls squeue until none of the arrays' tasks is queued or running.
func wait(t *testing.T, ids []string) {
	t.Helper()
	deadline := time.Now().Add(8 * time.Minute)
	for {
		lines := squeue(t, "-j", strings.Join(ids, ","), "-o", "%i|%T|%r")
		stuck := len(lines) > 0
		for _, l := range lines {
			stuck = stuck && strings.HasSuffix(l, "|PENDING|DependencyNeverSatisfied")
		}
		if len(lines) == 0 {
			return
		}
		if stuck {
			t.Fatalf("tasks wait for a dependency that failed (submitted without --kill-on-invalid-dep?): %v", lines)
		}
		if time.Now().After(deadline) {
			t.Fatalf("tasks still queued after 8 minutes: %v", lines)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// outputs reads a study's RESULTS.md and every results.json, by path
// relative to the study folder.
func outputs(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Name() == "results.json" || rel == study.ResultsFile {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = b
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out[study.ResultsFile]; !ok {
		t.Fatalf("%s has no %s", dir, study.ResultsFile)
	}
	return out
}

func same(t *testing.T, what string, want, got map[string][]byte) {
	t.Helper()
	var names []string
	for k := range want {
		names = append(names, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s is not in the reference run", what, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: %s is missing", what, k)
		} else if !bytes.Equal(g, want[k]) {
			t.Errorf("%s: %s differs from the reference run", what, k)
		}
	}
	t.Logf("%s: %d files byte-identical to the reference", what, len(names))
}
