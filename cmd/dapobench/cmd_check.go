package main

import (
	"context"
	"fmt"
	"io"

	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/reports"
	"github.com/dapobench/dapobench/reports/rundir"
)

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := cli.NewFlagSet("dapobench check", stderr)
	golden := flags.String("golden", "", "golden results (a results.json) to check against")
	tol := flags.Float64("tol", reports.DefaultTolerance, "largest absolute difference accepted for a metric (fractions in [0, 1])")
	update := flags.Bool("update", false, "rewrite the golden file with the run's results instead of checking")
	cli.SetUsage(flags, "--golden FILE RUNDIR [--tol X] [--update]",
		"Exit status 0 when every metric of RUNDIR/results.json is within --tol of FILE, else 1 with\n"+
			"a table of what moved. A metric that became null or non-null, or a category, defect type,\n"+
			"count or setting that changed, also fails. RUNDIR may also be a results.json file. Exit\n"+
			"status 3 when the check could not be made (unreadable golden file, incomplete run), 2 on bad usage.")
	pos, err := cli.ParseArgs(flags, args)
	if err != nil {
		return err
	}
	if err := cli.Require(flags, "golden"); err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: check: want one run directory, have %d", cli.ErrUsage, len(pos))
	}
	if !(*tol >= 0) {
		return fmt.Errorf("%w: check: --tol %v: want a number ≥ 0", cli.ErrUsage, *tol)
	}
	run, err := rundir.Open(pos[0])
	if err != nil {
		return fmt.Errorf("%w: %w", reports.ErrCannotCheck, err)
	}
	path, now := run.Path, run.Results
	changes, err := reports.CheckGolden(*golden, now, *tol, *update)
	if err != nil {
		return err
	}
	if *update {
		if len(changes) > 0 {
			if err := reports.WriteChanges(stdout, changes); err != nil {
				return err
			}
		}
		if err := reports.WriteGolden(*golden, now); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "updated %s from %s (%d %s)\n", *golden, path, len(changes), pluralWord(len(changes), "change", "changes"))
		return nil
	}
	if len(changes) == 0 {
		fmt.Fprintf(stdout, "ok: %s matches %s within %g (%d categories)\n", path, *golden, *tol, len(now.Categories))
		return nil
	}
	if err := reports.WriteChanges(stdout, changes); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "dapobench check: %s differs from %s: %d %s beyond tolerance %g (rerun with --update if intended)\n",
		path, *golden, len(changes), pluralWord(len(changes), "difference", "differences"), *tol)
	return cli.ErrSilent
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
