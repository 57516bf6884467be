package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/reports/resultsmd"
	"github.com/dapobench/dapobench/reports/rundir"
)

func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench report", stderr)
	out := fs.String("out", "", "folder for RESULTS.md and its figures/ (created if needed)")
	title := fs.String("title", "", "first heading of RESULTS.md (default \"Results\")")
	quiet := fs.Bool("quiet", false, "no progress lines")
	cli.SetUsage(fs, "RUNDIR... --out DIR",
		"Writes DIR/RESULTS.md: per dataset, the tables of every run side by side and the figures.\n"+
			"A RUNDIR may also be a results file (dapobench eval --out FILE): tables only.")
	dirs, err := cli.ParseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := cli.Require(fs, "out"); err != nil {
		return err
	}
	if len(dirs) == 0 {
		return fmt.Errorf("%w: report: give at least one run directory", cli.ErrUsage)
	}
	runs := make([]*rundir.Run, len(dirs))
	for i, d := range dirs {
		if runs[i], err = rundir.Open(d); err != nil {
			return err
		}
	}
	opt := resultsmd.Options{Title: *title}
	if !*quiet {
		opt.Progress = stderr
	}
	if err := resultsmd.Write(ctx, *out, runs, opt); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(*out, resultsmd.FileName))
	return nil
}
