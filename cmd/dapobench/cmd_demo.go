package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/studies"
	"github.com/dapobench/dapobench/study"
)

// cmdDemo is the main job on the embedded default: the fixture study
// (studies/fixtures.yaml), DAPO's zero-shot protocol on the synthetic
// fixtures with tiny seeded models (studies.RunFixtures). The models are
// tiny: the numbers are a regression signal, not a benchmark.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench demo", stderr)
	out := fs.String("out", "runs/demo", "output directory (the study folder)")
	seed := fs.Uint64("seed", fixtures.DefaultSeed, "fixture and model seed")
	quiet := fs.Bool("quiet", false, "no progress output")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	start := time.Now()
	var log io.Writer = stdout
	if *quiet {
		log = nil
	}
	g, err := studies.RunFixtures(ctx, *out, *seed, stdout, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n== report: %s (%d jobs)\n", filepath.Join(*out, study.ResultsFile), len(g.Jobs))
	fmt.Fprintf(stdout, "demo finished in %.1fs\n", time.Since(start).Seconds())
	return nil
}
