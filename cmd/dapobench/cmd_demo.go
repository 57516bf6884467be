package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/studies"
	"github.com/dapobench/dapobench/study"
)

// demoSchemes are the schemes whose fixture results are golden
// (TestFixtureGolden), with the model variant each needs.
var demoSchemes = []struct{ scheme, variant string }{
	{"dapo", "dapo"},
	{"winclip", "winclip"},
	{"anomalyclip", "anomalyclip"},
	{"adaclip", "adaclip"},
	{"aprilgan", "aprilgan"},
	{"multiads", "multiads"},
}

// cmdDemo is the main job on the embedded default: the fixture study
// (studies/fixtures.yaml), DAPO's zero-shot protocol on the synthetic
// fixtures with tiny seeded models. It writes the fixtures, builds the
// models, trains the prompts, evaluates every method on every dataset and
// writes RESULTS.md in the paper's layout. The models are tiny: the
// numbers are a regression signal, not a benchmark.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench demo", stderr)
	out := fs.String("out", "runs/demo", "output directory (the study folder)")
	seed := fs.Uint64("seed", fixtures.DefaultSeed, "fixture and model seed")
	quiet := fs.Bool("quiet", false, "no progress output")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	start := time.Now()
	// A demo always computes afresh: the study's fingerprints cover its
	// plan, not the code that runs it.
	for _, sub := range []string{"data", "models", "train", "runs", "jobs", "cache", "plans", study.GraphFile, study.ResultsFile} {
		if err := os.RemoveAll(filepath.Join(*out, sub)); err != nil {
			return err
		}
	}
	dir, err := studies.Write(filepath.Join(*out, "plans"))
	if err != nil {
		return err
	}
	p, err := study.ParsePlan(filepath.Join(dir, studies.Fixtures))
	if err != nil {
		return err
	}
	p.Fixtures = seed
	for i := range p.Models {
		p.Models[i].Seed = *seed
	}
	fmt.Fprintf(stdout, "== the fixture study (%s): synthetic fixtures, tiny seeded models, in %s\n", studies.Fixtures, *out)
	g, err := study.MakeGraph(ctx, p, study.PlanOptions{Out: *out})
	if err != nil {
		return err
	}
	device, err := resolveDevice("auto")
	if err != nil {
		return err
	}
	var log io.Writer = stdout
	if *quiet {
		log = nil
	}
	jobs := runtime.GOMAXPROCS(0)
	if err := study.Run(ctx, *out, study.RunOptions{Jobs: jobs, Device: device, Log: log}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n== report: %s (%d jobs)\n", filepath.Join(*out, study.ResultsFile), len(g.Jobs))
	fmt.Fprintf(stdout, "demo finished in %.1fs\n", time.Since(start).Seconds())
	return nil
}

// resolveDevice opens the runtime once and returns the device the runs
// should ask for: cuda when CUDA started, else cpu (after the one warning
// auto prints).
func resolveDevice(device string) (string, error) {
	rt, err := runner.Open(runner.Options{Device: device})
	if err != nil {
		return "", err
	}
	defer rt.Close()
	if rt.Provider() == runner.ProviderCUDA {
		return rt.Device().String(), nil
	}
	return "cpu", nil
}
