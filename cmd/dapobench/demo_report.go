package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
)

// demoReport writes the demo's RESULTS.md with its figures.
func demoReport(ctx context.Context, out string, runs []string, stdout, stderr io.Writer) error {
	args := append(append([]string{}, runs...), "--out", out, "--quiet",
		"--title", "dapobench demo: untrained tiny models on the synthetic fixtures (a regression signal, not a benchmark)")
	if err := cmdReport(ctx, args, io.Discard, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n== report: %s\n", filepath.Join(out, "RESULTS.md"))
	return nil
}
