// Package cli is the subcommand machinery of a command-line program: a
// registry of one- and two-word commands, their usage listing, and flag
// parsing that reports bad usage as an error instead of exiting, so that
// every command runs in-process in tests and the program alone decides
// the exit status.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
)

var (
	// ErrUsage marks bad command-line usage.
	ErrUsage = errors.New("usage")
	// ErrHelp is returned when the user asked for -h; Program.Run treats
	// it as success.
	ErrHelp = errors.New("help requested")
	// ErrSilent marks an error whose message the command already printed.
	ErrSilent = errors.New("failed")
)

// Command is one subcommand. Its name has one or two words ("eval",
// "datasets scan"); Run parses its own flags.
type Command struct {
	Name    string
	Summary string
	Run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// Program is a command-line program made of subcommands.
type Program struct {
	Name     string    // the program's name in usage texts
	Version  string    // what "version" prints after Name
	Commands []Command // in the order the usage text lists them
}

// Run executes one subcommand. It is main without the process: it prints
// usage texts, but the caller prints the error and picks the exit status.
func (p Program) Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		p.printUsage(stdout, p.Commands)
		if len(args) == 0 {
			return ErrUsage
		}
		return nil
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, p.Name, p.Version)
		return nil
	}
	c, rest, ok := Lookup(p.Commands, args)
	if !ok {
		// A command group ("datasets", "models") lists its commands.
		if group := InGroup(p.Commands, args[0]); group != nil {
			if len(args) > 1 && isHelp(args[1]) {
				p.printUsage(stdout, group)
				return nil
			}
			p.printUsage(stderr, group)
			if len(args) == 1 {
				return fmt.Errorf("%w: %s: give a command", ErrUsage, args[0])
			}
		} else {
			p.printUsage(stderr, p.Commands)
		}
		return fmt.Errorf("%w: unknown command %q", ErrUsage, joinWords(args, 2))
	}
	if err := c.Run(ctx, rest, stdout, stderr); !errors.Is(err, ErrHelp) {
		return err
	}
	return nil
}

// Main runs the program with the process's arguments, cancelled on an
// interrupt or SIGTERM, prints the error (unless ErrSilent) and exits
// with the status code gives it.
func (p Program) Main(code func(error) int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := p.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, ErrSilent) {
			fmt.Fprintf(os.Stderr, "%s: %v\n", p.Name, err)
		}
		os.Exit(code(err))
	}
}

func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "help" }

// Lookup finds the command that args name, two words before one, and
// returns it with the arguments after its name.
func Lookup(cmds []Command, args []string) (Command, []string, bool) {
	for _, n := range []int{2, 1} {
		if len(args) < n {
			continue
		}
		name := strings.Join(args[:n], " ")
		for _, c := range cmds {
			if c.Name == name {
				return c, args[n:], true
			}
		}
	}
	return Command{}, nil, false
}

// InGroup returns the commands whose first word is group, nil if none.
func InGroup(cmds []Command, group string) []Command {
	var in []Command
	for _, c := range cmds {
		if first, _, two := strings.Cut(c.Name, " "); two && first == group {
			in = append(in, c)
		}
	}
	return in
}

func joinWords(args []string, n int) string {
	if len(args) > n {
		args = args[:n]
	}
	return strings.Join(args, " ")
}

// printUsage lists cmds; a list of one group's commands says so in its
// first line.
func (p Program) printUsage(w io.Writer, cmds []Command) {
	if first, _, two := strings.Cut(cmds[0].Name, " "); two && len(InGroup(cmds, first)) == len(cmds) {
		fmt.Fprintf(w, "usage: %s %s <command> [flags]\n", p.Name, first)
	} else {
		fmt.Fprintf(w, "usage: %s <command> [flags]\n", p.Name)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, c := range cmds {
		fmt.Fprintf(tw, "  %s\t%s\n", c.Name, c.Summary)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Run '%s <command> -h' for the flags of one command.\n", p.Name)
}
