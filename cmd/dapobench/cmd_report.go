package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/dapobench/dapobench/reports/resultsmd"
	"github.com/dapobench/dapobench/reports/rundir"
)

func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", stderr)
	out := fs.String("out", "", "folder for RESULTS.md and its figures/ (created if needed)")
	title := fs.String("title", "", "first heading of RESULTS.md (default \"Results\")")
	quiet := fs.Bool("quiet", false, "no progress lines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: dapobench report RUNDIR... --out DIR")
		fmt.Fprintln(stderr, "\nWrites DIR/RESULTS.md: per dataset, the tables of every run side by side and the figures.")
		fmt.Fprintln(stderr, "A RUNDIR may also be a results file (dapobench eval --out FILE): tables only.")
		fs.PrintDefaults()
	}
	dirs, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := requireFlags(fs, "out"); err != nil {
		return err
	}
	if len(dirs) == 0 {
		return fmt.Errorf("%w: report: give at least one run directory", errUsage)
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

// parseArgs parses flags placed anywhere among the positional arguments
// ("report RUN_A RUN_B --out DIR"); flag.Parse alone stops at the first
// positional one. It returns the positional arguments in order.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
