package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/internal/cli"
)

func cmdFixturesGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench fixtures gen", stderr)
	out := fs.String("out", "", "output directory (datasets are written to OUT/<id>/)")
	seed := fs.Uint64("seed", fixtures.DefaultSeed, "random seed")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := cli.Require(fs, "out"); err != nil {
		return err
	}
	start := time.Now()
	m, err := fixtures.Generate(ctx, *out, *seed)
	if err != nil {
		return err
	}
	n := 0
	for _, id := range fixtures.IDs {
		fmt.Fprintf(stdout, "%-9s %3d samples  %s/%s\n", id, len(m.Datasets[id].Samples), *out, id)
		n += len(m.Datasets[id].Samples)
	}
	fmt.Fprintf(stdout, "%d samples in %.2fs (seed %d)\n", n, time.Since(start).Seconds(), *seed)
	return nil
}
