package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dapobench/dapobench/fixtures"
)

// cmdDemo is the main job on the embedded default: it generates the
// fixtures and scans every dataset.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	out := fs.String("out", "runs/demo", "output directory")
	seed := fs.Uint64("seed", fixtures.DefaultSeed, "fixture seed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	data := filepath.Join(*out, "data")
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "== generating fixtures in %s\n", data)
	if err := cmdFixturesGen(ctx, []string{"--out", data, "--seed", fmt.Sprint(*seed)}, stdout, stderr); err != nil {
		return err
	}
	for _, id := range fixtures.IDs {
		fmt.Fprintf(stdout, "\n== dapobench datasets scan --dataset %s --root %s\n", id, filepath.Join(data, id))
		if err := cmdDatasetsScan(ctx, []string{"--dataset", id, "--root", filepath.Join(data, id)}, stdout, stderr); err != nil {
			return err
		}
	}
	return nil
}
