package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dapobench/dapobench/reports"
	"github.com/dapobench/dapobench/reports/rundir"
	"github.com/dapobench/dapobench/results"
)

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("check", stderr)
	golden := flags.String("golden", "", "golden results (a results.json) to check against")
	tol := flags.Float64("tol", reports.DefaultTolerance, "largest absolute difference accepted for a metric (fractions in [0, 1])")
	update := flags.Bool("update", false, "rewrite the golden file with the run's results instead of checking")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: dapobench check --golden FILE RUNDIR [--tol X] [--update]")
		fmt.Fprintln(stderr, "\nExit status 0 when every metric of RUNDIR/results.json is within --tol of FILE, else 1 with")
		fmt.Fprintln(stderr, "a table of what moved. A metric that became null or non-null, or a category, defect type,")
		fmt.Fprintln(stderr, "count or setting that changed, also fails. RUNDIR may also be a results.json file. Exit")
		fmt.Fprintln(stderr, "status 3 when the check could not be made (unreadable golden file, incomplete run), 2 on bad usage.")
		flags.PrintDefaults()
	}
	pos, err := parseArgs(flags, args)
	if err != nil {
		return err
	}
	if err := requireFlags(flags, "golden"); err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: check: want one run directory, have %d", errUsage, len(pos))
	}
	if !(*tol >= 0) {
		return fmt.Errorf("%w: check: --tol %v: want a number ≥ 0", errUsage, *tol)
	}
	run, err := rundir.Open(pos[0])
	if err != nil {
		return fmt.Errorf("%w: %w", errCannotCheck, err)
	}
	path, now := run.Path, run.Results
	old, err := results.Read(*golden)
	switch {
	case errors.Is(err, fs.ErrNotExist) && *update:
		old = nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: check: golden file %s does not exist; create it with --update", errCannotCheck, *golden)
	case err != nil:
		return fmt.Errorf("%w: %w", errCannotCheck, err)
	}
	var changes []reports.Change
	if old != nil {
		if changes, err = reports.Drift(old, now, *tol); err != nil {
			return fmt.Errorf("%w: %w", errCannotCheck, err)
		}
	}
	if *update {
		if len(changes) > 0 {
			if err := reports.WriteChanges(stdout, changes); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(filepath.Dir(*golden), 0o755); err != nil {
			return fmt.Errorf("check: %w", err)
		}
		if err := results.Write(*golden, now); err != nil {
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
	return errSilent
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
