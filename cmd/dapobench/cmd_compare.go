package main

import (
	"context"
	"fmt"
	"io"

	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/reports/rundir"
)

func cmdCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench compare", stderr)
	seed := fs.Uint64("seed", 1, "seed of the bootstrap resamples (results are reproducible for a seed)")
	resamples := fs.Int("resamples", 2000, "bootstrap resamples")
	level := fs.Float64("level", 0.95, "confidence level of the bootstrap interval")
	cli.SetUsage(fs, "RUN_A RUN_B [--seed N] [--resamples N] [--level P]",
		"Per category and mean, B − A of every metric; for image AUROC, AP and F1-max a paired\n"+
			"bootstrap interval, and for image AUROC DeLong's test, from the runs' image scores.")
	dirs, err := cli.ParseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(dirs) != 2 {
		return fmt.Errorf("%w: compare: want two run directories, have %d", cli.ErrUsage, len(dirs))
	}
	if *resamples < 2 {
		return fmt.Errorf("%w: compare: --resamples %d: want at least 2", cli.ErrUsage, *resamples)
	}
	if !(*level > 0 && *level < 1) {
		return fmt.Errorf("%w: compare: --level %v: want a number between 0 and 1", cli.ErrUsage, *level)
	}
	a, err := rundir.Open(dirs[0])
	if err != nil {
		return err
	}
	b, err := rundir.Open(dirs[1])
	if err != nil {
		return err
	}
	c, err := rundir.Compare(ctx, a, b, rundir.CompareOptions{Seed: *seed, Resamples: *resamples, Level: *level})
	if err != nil {
		return err
	}
	for _, w := range c.Warnings {
		fmt.Fprintln(stderr, "dapobench compare: warning:", w)
	}
	return c.Markdown(stdout)
}
