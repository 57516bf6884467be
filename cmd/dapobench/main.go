// Command dapobench evaluates zero-shot anomaly detection and segmentation
// with CLIP-style models: DAPO and its baselines on MVTec-AD, VisA, MPDD,
// MAD and Real-IAD.
//
// main only wires the process to run; every subcommand is a thin layer over
// the library packages so that it can be tested in-process.
package main

import (
	"context"
	"errors"
	"io"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/internal/version"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/reports"
	"github.com/dapobench/dapobench/schemes"
)

func main() {
	program().Main(exitCode)
}

// program is dapobench: its name, version and commands (internal/cli).
func program() cli.Program {
	return cli.Program{Name: "dapobench", Version: version.String(), Commands: commands()}
}

// run executes one subcommand. It is main without the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return program().Run(ctx, args, stdout, stderr)
}

// exitCode is the one rule of every command (README "Exit status"): 2
// for bad usage (an unknown command or flag, a bad flag value, a missing
// argument, an option the dataset or scheme has no use for, an output
// folder that cannot be used), 3 when check could not check, and 1 when
// the data or the results say no.
func exitCode(err error) int {
	switch {
	case errors.Is(err, cli.ErrUsage), errors.Is(err, schemes.ErrOption), errors.Is(err, loaders.ErrOption), errors.Is(err, bench.ErrOutConflict):
		return 2
	case errors.Is(err, reports.ErrCannotCheck):
		return 3
	}
	return 1
}
