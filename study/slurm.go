package study

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dapobench/dapobench/internal/atomicfile"
)

// SlurmDir holds the sbatch scripts, their logs and the submissions.
const SlurmDir = "slurm"

// MaxArrayIndex is the largest array index Slurm accepts by default
// (MaxArraySize = 1001, docs/cluster.md#slurm-arrays); larger studies
// get arrays whose index is offset from the job number.
const MaxArrayIndex = 1000

// SlurmOptions are the resources each array task asks for.
type SlurmOptions struct {
	Partition  string
	GPUsPerJob int    // --gres=gpu:N for stages that run models (not merge, report)
	Time       string // --time
	CPUsPerJob int    // --cpus-per-task
	Mem        string // --mem
	Account    string
	// Extra are further sbatch options, one per #SBATCH line.
	Extra []string
	// Binary is the dapobench the tasks run (default: this executable).
	Binary string
	// Device is what the tasks of GPU stages pass to study run (default
	// auto); merge and report tasks run on the CPU.
	Device string
}

// Array is one sbatch script: the jobs of one stage (or a slice of a
// stage with more than MaxArrayIndex+1 jobs).
type Array struct {
	Stage  string
	Script string // absolute path
	Jobs   []int  // job numbers
	Offset int    // array index = job number − Offset
}

// WriteSlurm writes one sbatch script per stage into DIR/slurm, each a
// job array whose task i runs `dapobench study run DIR --job i`, and
// submit.sh, which submits them chained with afterok.
func WriteSlurm(g *Graph, o SlurmOptions) ([]Array, error) {
	dir, err := filepath.Abs(g.dir)
	if err != nil {
		return nil, fmt.Errorf("study: %w", err)
	}
	bin := o.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("study: the dapobench executable: %w", err)
		}
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return nil, fmt.Errorf("study: %w", err)
	}
	device := o.Device
	if device == "" {
		device = "auto"
	}
	sdir := filepath.Join(dir, SlurmDir)
	// The output folder must exist before a task starts, or the task
	// fails without a log (docs/cluster.md#slurm-logs).
	if err := os.MkdirAll(filepath.Join(sdir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("study: %w", err)
	}
	var arrays []Array
	for i, st := range g.Stages {
		for _, chunk := range chunks(st.Jobs) {
			a := Array{Stage: st.Name, Jobs: chunk.jobs, Offset: chunk.offset}
			name := fmt.Sprintf("%d-%s", i+1, st.Name)
			if len(chunks(st.Jobs)) > 1 {
				name += fmt.Sprintf("-%d", chunk.jobs[0])
			}
			a.Script = filepath.Join(sdir, name+".sbatch")
			models := false
			for _, n := range chunk.jobs {
				if k := g.Jobs[n].Kind; k == KindModel || k == KindTrain || k == KindEval {
					models = true
				}
			}
			var b strings.Builder
			b.WriteString("#!/bin/bash\n")
			fmt.Fprintf(&b, "# dapobench study %s, stage %d of %d (%s): jobs %s\n", g.Name, i+1, len(g.Stages), st.Name, ranges(chunk.jobs, 0))
			fmt.Fprintf(&b, "# Written by dapobench study slurm; submit with submit.sh or dapobench study slurm --submit.\n")
			opt := func(f string, args ...any) { fmt.Fprintf(&b, "#SBATCH "+f+"\n", args...) }
			opt("--job-name=dapobench-%s-%s", g.Name, st.Name)
			opt("--array=%s", ranges(chunk.jobs, chunk.offset))
			opt("--output=%s", filepath.Join(sdir, "logs", "%x-%A_%a.out"))
			opt("--kill-on-invalid-dep=yes")
			if o.Partition != "" {
				opt("--partition=%s", o.Partition)
			}
			if o.Account != "" {
				opt("--account=%s", o.Account)
			}
			if o.Time != "" {
				opt("--time=%s", o.Time)
			}
			if o.CPUsPerJob > 0 {
				opt("--cpus-per-task=%d", o.CPUsPerJob)
			}
			if o.Mem != "" {
				opt("--mem=%s", o.Mem)
			}
			dev := "cpu"
			if models {
				dev = device
				if o.GPUsPerJob > 0 {
					opt("--gres=gpu:%d", o.GPUsPerJob)
				}
			}
			for _, x := range o.Extra {
				opt("%s", x)
			}
			job := `"$SLURM_ARRAY_TASK_ID"`
			if chunk.offset > 0 {
				job = fmt.Sprintf(`"$((SLURM_ARRAY_TASK_ID + %d))"`, chunk.offset)
			}
			fmt.Fprintf(&b, "exec %s study run %s --job %s --device %s\n", shellQuote(bin), shellQuote(dir), job, dev)
			if err := atomicfile.WriteFile(a.Script, []byte(b.String())); err != nil {
				return nil, fmt.Errorf("study: %w", err)
			}
			if err := os.Chmod(a.Script, 0o755); err != nil {
				return nil, fmt.Errorf("study: %w", err)
			}
			arrays = append(arrays, a)
		}
	}
	var s strings.Builder
	s.WriteString("#!/bin/bash\n# Submits the study's stages as job arrays, each after the previous ones succeed.\n")
	s.WriteString("# dapobench study slurm DIR --submit does the same for the jobs not done yet.\nset -euo pipefail\n")
	var prev []string
	for i, a := range arrays {
		dep := ""
		if len(prev) > 0 {
			dep = " --dependency=afterok:" + strings.Join(prev, ":")
		}
		fmt.Fprintf(&s, "j%d=$(sbatch --parsable%s %s | cut -d';' -f1)\necho \"%s: job array $j%d\"\n", i, dep, shellQuote(a.Script), a.Stage, i)
		prev = append(prev, fmt.Sprintf("$j%d", i))
	}
	if err := atomicfile.WriteFile(filepath.Join(sdir, "submit.sh"), []byte(s.String())); err != nil {
		return nil, fmt.Errorf("study: %w", err)
	}
	if err := os.Chmod(filepath.Join(sdir, "submit.sh"), 0o755); err != nil {
		return nil, fmt.Errorf("study: %w", err)
	}
	return arrays, nil
}

type chunk struct {
	jobs   []int
	offset int
}

// chunks splits a stage's jobs into arrays whose indices stay within
// MaxArrayIndex: one array indexed by job number when they fit, else
// slices indexed from their first job.
func chunks(jobs []int) []chunk {
	if len(jobs) == 0 || jobs[len(jobs)-1] <= MaxArrayIndex {
		return []chunk{{jobs, 0}}
	}
	var out []chunk
	for start := 0; start < len(jobs); {
		end := start
		for end < len(jobs) && jobs[end]-jobs[start] <= MaxArrayIndex {
			end++
		}
		out = append(out, chunk{jobs[start:end], jobs[start]})
		start = end
	}
	return out
}

// ranges writes job numbers minus offset as a Slurm array list: 0-3,7,9-10.
func ranges(ns []int, offset int) string {
	var parts []string
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] == ns[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(ns[i]-offset))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", ns[i]-offset, ns[j]-offset))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+=:,@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Submission is one job array submitted.
type Submission struct {
	Stage string
	JobID string // Slurm's id of the array
	Array string // the indices submitted
}

// SubmittedFile lists every submission (stage, job id, array), one per
// line, appended to by each --submit.
const SubmittedFile = "submitted.tsv"

// SubmitSlurm submits the arrays' jobs that are not done, each array
// after every array submitted before it in this go (afterok, with
// --kill-on-invalid-dep so that a failed stage cancels the next instead of
// leaving it pending forever). Stages already done are skipped, so a
// study whose task died is finished by submitting again.
func SubmitSlurm(ctx context.Context, g *Graph, arrays []Array, log io.Writer) ([]Submission, error) {
	if _, err := exec.LookPath("sbatch"); err != nil {
		return nil, fmt.Errorf("study: submitting needs Slurm's sbatch on PATH: %w", err)
	}
	if conf := os.Getenv("SLURM_CONF"); conf != "" {
		// Slurm's commands retry a missing configuration file for a minute.
		if _, err := os.Stat(conf); err != nil {
			return nil, fmt.Errorf("study: SLURM_CONF=%s: %w", conf, err)
		}
	}
	if err := checkQueue(ctx, g); err != nil {
		return nil, err
	}
	var subs []Submission
	var prev []string
	for _, a := range arrays {
		var todo []int
		for _, n := range a.Jobs {
			if !g.Done(g.Jobs[n]) {
				todo = append(todo, n)
			}
		}
		if len(todo) == 0 {
			fmt.Fprintf(log, "%s: done, not submitted\n", a.Stage)
			continue
		}
		args := []string{"--parsable"}
		if len(prev) > 0 {
			args = append(args, "--dependency=afterok:"+strings.Join(prev, ":"))
		}
		arr := ranges(todo, a.Offset)
		args = append(args, "--array="+arr, a.Script)
		cmd := exec.CommandContext(ctx, "sbatch", args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return subs, fmt.Errorf("study: sbatch %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";")
		if _, err := strconv.Atoi(id); err != nil {
			return subs, fmt.Errorf("study: sbatch printed %q, not a job id", out)
		}
		s := Submission{Stage: a.Stage, JobID: id, Array: arr}
		subs = append(subs, s)
		prev = append(prev, id)
		if err := appendSubmitted(g, s); err != nil {
			return subs, err
		}
		fmt.Fprintf(log, "%s: job array %s (tasks %s)\n", a.Stage, id, arr)
	}
	return subs, nil
}

func appendSubmitted(g *Graph, s Submission) error {
	p := filepath.Join(g.dir, SlurmDir, SubmittedFile)
	old, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("study: %w", err)
	}
	line := fmt.Sprintf("%s\t%s\t%s\n", s.Stage, s.JobID, s.Array)
	if err := atomicfile.WriteFile(p, append(old, line...)); err != nil {
		return fmt.Errorf("study: %w", err)
	}
	return nil
}

// Submitted reads the submissions made so far.
func Submitted(g *Graph) ([]Submission, error) {
	b, err := os.ReadFile(filepath.Join(g.dir, SlurmDir, SubmittedFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("study: %w", err)
	}
	var out []Submission
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 3 {
			out = append(out, Submission{f[0], f[1], f[2]})
		}
	}
	return out, nil
}

// checkQueue refuses to submit while an earlier submission of the study
// is still queued or running: its tasks would run the same jobs as the
// new ones.
func checkQueue(ctx context.Context, g *Graph) error {
	subs, err := Submitted(g)
	if err != nil || len(subs) == 0 {
		return err
	}
	var ids []string
	for _, s := range subs {
		ids = append(ids, s.JobID)
	}
	out, err := exec.CommandContext(ctx, "squeue", "-h", "-j", strings.Join(ids, ","), "-o", "%i %T").CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "Invalid job id") {
			return nil // every earlier submission has left the queue
		}
		return fmt.Errorf("study: squeue: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if q := strings.TrimSpace(string(out)); q != "" {
		lines := strings.Split(q, "\n")
		return fmt.Errorf("study: %d task(s) of an earlier submission are still queued or running (%s); wait for them or scancel them, then submit again",
			len(lines), strings.Join(shorten(lines, 4), "; "))
	}
	return nil
}
