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

	"github.com/dapobench/dapobench/internal/version"
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

// exitCode is 2 for usage errors and 1 for everything else.
func exitCode(err error) int {
	if errors.Is(err, errUsage) || errors.Is(err, schemes.ErrOption) {
		return 2
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
		printUsage(stderr, cmds)
		return fmt.Errorf("%w: unknown command %q", errUsage, joinWords(args, 2))
	}
	if err := c.run(ctx, rest, stdout, stderr); !errors.Is(err, errHelp) {
		return err
	}
	return nil
}
