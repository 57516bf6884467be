package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/internal/benchflag"
	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/internal/cliflag"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/metrics/mapio"
	"github.com/dapobench/dapobench/reports"
	"github.com/dapobench/dapobench/results"
)

func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench eval", stderr)
	var d benchflag.Dataset
	d.Register(fs)
	maps := fs.String("maps", "", "anomaly maps mirroring the dataset's image paths: MAPS/<image path without extension>"+
		" with extension "+strings.Join(mapio.Extensions, ", ")+" (float32 TIFF as the MVTec AD script reads, .npy, 8/16-bit PNG)")
	aupro := benchflag.AUPRO(fs)
	scoresFile := fs.String("scores", "", "CSV of path,score image scores (path as in the dataset); default: the maximum of each map")
	out := fs.String("out", "results.json", "results file to write")
	scheme := fs.String("scheme", "external", "method name recorded in results.json")
	workers := cliflag.AtLeast(fs, "workers", 0, 0, "categories evaluated at once (0: one per CPU)")
	quiet := fs.Bool("quiet", false, "no progress lines")
	resizeGT := fs.Bool("resize-gt", false, "resize each ground-truth mask to its (square) map's size, bilinear then > 0.5, as the CLIP pipelines evaluate at 518 px, instead of requiring maps at the ground-truth size (reads dapobench run --save-maps output)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := cli.Require(fs, "dataset", "root", "maps"); err != nil {
		return err
	}
	av, err := metrics.ParseAUPROVariant(*aupro)
	if err != nil {
		return fmt.Errorf("%w: %v", cli.ErrUsage, err)
	}
	if err := loaders.CheckOutside(d.Root, *out); err != nil {
		return err
	}
	if st, err := os.Stat(*maps); err != nil || !st.IsDir() {
		return fmt.Errorf("eval: maps directory %s: not a directory", *maps)
	}
	cfg := bench.EvalConfig{Dataset: d.ID, Loader: d.Options(), Maps: *maps, AUPRO: av, Scheme: *scheme,
		Workers: *workers, AllCategories: d.Category == "", ResizeGT: *resizeGT}
	if !*quiet {
		cfg.Progress = stderr
	}
	if *scoresFile != "" {
		if cfg.Scores, err = mapio.ReadScoresFile(*scoresFile); err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		cfg.ScoresName = *scoresFile
	}
	res, err := bench.Evaluate(ctx, cfg)
	if err != nil {
		return err
	}
	if err := results.Write(*out, res); err != nil {
		return err
	}
	reports.Summary(stdout, res)
	fmt.Fprintf(stdout, "\nwrote %s (AU-PRO %s)\n", *out, av)
	return nil
}
