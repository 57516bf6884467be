package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/dapobench/dapobench/fixtures"
)

func cmdFixturesGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("fixtures gen", stderr)
	out := fs.String("out", "", "output directory (datasets are written to OUT/<id>/)")
	seed := fs.Uint64("seed", fixtures.DefaultSeed, "random seed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "out"); err != nil {
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
