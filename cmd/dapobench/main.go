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
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/internal/version"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/schemes"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(os.Stderr, "dapobench:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode is the one rule of every command (README "Exit status"): 2
// for bad usage (an unknown command or flag, a bad flag value, a missing
// argument, an option the dataset or scheme has no use for, an output
// folder that cannot be used), 3 when check could not check, and 1 when
// the data or the results say no.
func exitCode(err error) int {
	switch {
	case errors.Is(err, errUsage), errors.Is(err, schemes.ErrOption), errors.Is(err, loaders.ErrOption), errors.Is(err, bench.ErrOutConflict):
		return 2
	case errors.Is(err, errCannotCheck):
		return 3
	}
	return 1
}

// run executes one subcommand. It is main without the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout, cmds)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "dapobench", version.String())
		return nil
	}
	c, rest, ok := lookup(cmds, args)
	if !ok {
		// A command group ("datasets", "models") lists its commands.
		if group := inGroup(cmds, args[0]); group != nil {
			if len(args) > 1 && (args[1] == "-h" || args[1] == "--help" || args[1] == "help") {
				printUsage(stdout, group)
				return nil
			}
			printUsage(stderr, group)
			if len(args) == 1 {
				return fmt.Errorf("%w: %s: give a command", errUsage, args[0])
			}
		} else {
			printUsage(stderr, cmds)
		}
		return fmt.Errorf("%w: unknown command %q", errUsage, joinWords(args, 2))
	}
	if err := c.run(ctx, rest, stdout, stderr); !errors.Is(err, errHelp) {
		return err
	}
	return nil
}
