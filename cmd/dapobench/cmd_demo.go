package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/onnx/runner"
)

// demoSchemes are the schemes the demo runs, with the model variant each
// needs.
var demoSchemes = []struct{ scheme, variant string }{
	{"dapo", "dapo"},
	{"winclip", "winclip"},
	{"anomalyclip", "anomalyclip"},
	{"aprilgan", "aprilgan"},
	{"multiads", "multiads"},
}

// cmdDemo is the main job on the embedded default: it generates the
// synthetic fixtures, builds the tiny seeded models, runs every scheme of
// demoSchemes on all six fixture datasets and writes a report. The models
// are untrained and tiny: the numbers are a regression signal, not a
// benchmark.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	out := fs.String("out", "runs/demo", "output directory")
	seed := fs.Uint64("seed", fixtures.DefaultSeed, "fixture and model seed")
	quiet := fs.Bool("quiet", false, "no progress output")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	start := time.Now()
	data := filepath.Join(*out, "data")
	for _, sub := range []string{"data", "models", "runs", "cache"} {
		if err := os.RemoveAll(filepath.Join(*out, sub)); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "== synthetic fixtures in %s\n", data)
	if err := cmdFixturesGen(ctx, []string{"--out", data, "--seed", fmt.Sprint(*seed)}, stdout, stderr); err != nil {
		return err
	}
	for _, s := range demoSchemes {
		dir := filepath.Join(*out, "models", s.variant)
		if err := runModelsTiny(ctx, []string{"--out", dir, "--variant", s.variant, "--seed", fmt.Sprint(*seed)}, io.Discard, stderr); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "== tiny seeded models (untrained) in %s\n", filepath.Join(*out, "models"))
	// Resolve the device once, so that a CPU-only machine hears about it
	// once rather than on every run.
	device, err := resolveDevice("auto")
	if err != nil {
		return err
	}
	var runs []string
	for _, id := range fixtures.IDs {
		for _, s := range demoSchemes {
			run := filepath.Join(*out, "runs", id+"-"+s.scheme)
			fmt.Fprintf(stdout, "\n== dapobench run --dataset %s --scheme %s\n", id, s.scheme)
			args := []string{"--dataset", id, "--root", filepath.Join(data, id), "--model", filepath.Join(*out, "models", s.variant),
				"--scheme", s.scheme, "--device", device, "--out", run, "--cache", filepath.Join(*out, "cache")}
			if *quiet {
				args = append(args, "--quiet")
			}
			if err := cmdRun(ctx, args, stdout, stderr); err != nil {
				return err
			}
			runs = append(runs, run)
		}
	}
	if err := demoReport(ctx, *out, runs, stdout, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\ndemo finished in %.1fs\n", time.Since(start).Seconds())
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
