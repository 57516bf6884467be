package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/dapobench/dapobench/internal/benchflag"
	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/internal/cliflag"
	"github.com/dapobench/dapobench/study"
)

func cmdStudyPlan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench study plan", stderr)
	data := fs.String("data", "", "folder holding the datasets, one sub-folder per dataset id (as fixtures gen writes them); default: the fixtures a fixtures plan asks for")
	out := fs.String("out", "", "study folder to write (study.json; every job's outputs go there)")
	cli.SetUsage(fs, "FILE --out DIR", "Checks a plan file (YAML) and writes its job graph, one id and number per job, to DIR/study.json.")
	file, err := cli.ParseArg(fs, args, "plan file")
	if err != nil {
		return err
	}
	if err := cli.Require(fs, "out"); err != nil {
		return err
	}
	p, err := study.ParsePlan(file)
	if err != nil {
		return err
	}
	g, err := study.MakeGraph(ctx, p, study.PlanOptions{Data: *data, Out: *out})
	if err != nil {
		return err
	}
	for i, s := range g.Stages {
		fmt.Fprintf(stdout, "stage %d %-9s %3d jobs (%d–%d)\n", i+1, s.Name, len(s.Jobs), s.Jobs[0], s.Jobs[len(s.Jobs)-1])
	}
	fmt.Fprintf(stdout, "\nwrote %s: study %s, %d jobs; run it with dapobench study run %s\n", filepath.Join(*out, study.GraphFile), g.Name, len(g.Jobs), *out)
	return nil
}

func cmdStudyRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench study run", stderr)
	jobs := cliflag.AtLeast(fs, "jobs", 1, 1, "jobs that run at once")
	job := fs.String("job", "", "run this one job (its number or id) and nothing else; its dependencies must be done")
	device := benchflag.Device(fs)
	quiet := fs.Bool("quiet", false, "no progress lines")
	cli.SetUsage(fs, "DIR", "Runs the study's jobs that are not done; finished jobs are skipped by their recorded fingerprints.")
	dir, err := cli.ParseArg(fs, args, "study folder")
	if err != nil {
		return err
	}
	var log io.Writer = stderr
	if *quiet {
		log = nil
	}
	if err := study.Run(ctx, dir, study.RunOptions{Jobs: *jobs, Job: *job, Device: *device, Log: log}); err != nil {
		return err
	}
	if *job == "" {
		fmt.Fprintf(stdout, "study finished: %s\n", filepath.Join(dir, study.ResultsFile))
	}
	return nil
}

func cmdStudyStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench study status", stderr)
	cli.SetUsage(fs, "DIR", "Shows every job's state: done, running, failed, interrupted, ready or waiting.")
	dir, err := cli.ParseArg(fs, args, "study folder")
	if err != nil {
		return err
	}
	g, err := study.ReadGraph(dir)
	if err != nil {
		return err
	}
	return study.WriteStatus(stdout, g)
}

func cmdStudyReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench study report", stderr)
	cli.SetUsage(fs, "DIR", "Writes DIR/RESULTS.md from the finished evaluations (the report job does the same at the end of a run).")
	dir, err := cli.ParseArg(fs, args, "study folder")
	if err != nil {
		return err
	}
	g, err := study.ReadGraph(dir)
	if err != nil {
		return err
	}
	if err := study.WriteReport(ctx, g); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(dir, study.ResultsFile))
	return nil
}

func cmdStudySlurm(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench study slurm", stderr)
	var o study.SlurmOptions
	fs.StringVar(&o.Partition, "partition", "", "Slurm partition")
	fs.IntVar(&o.GPUsPerJob, "gpus-per-job", 0, "GPUs of each task that runs models (--gres=gpu:N)")
	fs.StringVar(&o.Time, "time", "", "time limit of each task (sbatch --time)")
	fs.IntVar(&o.CPUsPerJob, "cpus-per-job", 0, "CPUs of each task (--cpus-per-task)")
	fs.StringVar(&o.Mem, "mem", "", "memory of each task (sbatch --mem, e.g. 32G)")
	fs.StringVar(&o.Account, "account", "", "Slurm account")
	sbatch := fs.String("sbatch", "", "further sbatch options, comma-separated (e.g. --qos=high,--constraint=a100)")
	fs.StringVar(&o.Device, "device", "auto", "device of the tasks that run models: auto, cpu, cuda or cuda:N")
	submit := fs.Bool("submit", false, "submit the jobs that are not done with sbatch, stage after stage (afterok), and print the job ids")
	cli.SetUsage(fs, "DIR", "Writes DIR/slurm/*.sbatch, one job array per stage (task i runs job i), and submit.sh.")
	dir, err := cli.ParseArg(fs, args, "study folder")
	if err != nil {
		return err
	}
	if *sbatch != "" {
		o.Extra = strings.Split(*sbatch, ",")
	}
	g, err := study.ReadGraph(dir)
	if err != nil {
		return err
	}
	arrays, err := study.WriteSlurm(g, o)
	if err != nil {
		return err
	}
	for _, a := range arrays {
		fmt.Fprintf(stdout, "wrote %s (%d tasks)\n", a.Script, len(a.Jobs))
	}
	if !*submit {
		fmt.Fprintf(stdout, "submit with %s or dapobench study slurm %s --submit\n", filepath.Join(dir, study.SlurmDir, "submit.sh"), dir)
		return nil
	}
	subs, err := study.SubmitSlurm(ctx, g, arrays, stderr)
	for _, s := range subs {
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", s.Stage, s.JobID, s.Array)
	}
	if err == nil && len(subs) == 0 {
		fmt.Fprintln(stdout, "every job is done; nothing submitted")
	}
	return err
}

func cmdStudyK8s(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench study k8s", stderr)
	var o study.K8sOptions
	fs.StringVar(&o.Image, "image", "", "container image with dapobench and onnxruntime (required)")
	fs.StringVar(&o.PVC, "pvc", "", "PersistentVolumeClaim holding the study folder, mounted at its path")
	fs.StringVar(&o.Namespace, "namespace", "", "Kubernetes namespace")
	fs.IntVar(&o.GPUsPerJob, "gpus-per-job", 0, "nvidia.com/gpu of each pod that runs models")
	fs.IntVar(&o.Parallelism, "parallelism", 0, "pods at once per stage (0: all)")
	cli.SetUsage(fs, "DIR --image IMAGE", "Writes DIR/k8s/*.yaml, one Indexed Job per stage (pod i runs the stage's job i, JOB_COMPLETION_INDEX), and apply.sh.")
	dir, err := cli.ParseArg(fs, args, "study folder")
	if err != nil {
		return err
	}
	if err := cli.Require(fs, "image"); err != nil {
		return err
	}
	g, err := study.ReadGraph(dir)
	if err != nil {
		return err
	}
	files, err := study.WriteK8s(g, o)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintf(stdout, "wrote %s\n", f)
	}
	fmt.Fprintf(stdout, "apply in order with %s\n", filepath.Join(dir, study.K8sDir, "apply.sh"))
	return nil
}
