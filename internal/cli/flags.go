package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// NewFlagSet returns a flag set that reports errors instead of exiting and
// prints its usage to stderr. name is the program's name and the
// command's ("dapobench study plan"); errors name the flag set by it.
func NewFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// SetUsage makes -h print a synopsis (the command's arguments, after its
// name), a paragraph on what the command does, and the flags.
func SetUsage(fs *flag.FlagSet, synopsis, what string) {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s %s\n\n%s\n", fs.Name(), synopsis, what)
		fs.PrintDefaults()
	}
}

// Parse parses the flags of a command that takes no positional arguments
// and maps flag errors to ErrUsage; -h returns ErrHelp so that the exit
// status is 0.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected arguments %q", ErrUsage, fs.Name(), fs.Args())
	}
	return nil
}

// ParseArgs parses flags placed anywhere among the positional arguments
// ("report RUN_A RUN_B --out DIR"); flag.Parse alone stops at the first
// positional one. It returns the positional arguments in order.
func ParseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// ParseArg parses the flags around a command's one positional argument
// (a plan file, a study folder); what names it in the usage error when
// there is none or more than one.
func ParseArg(fs *flag.FlagSet, args []string, what string) (string, error) {
	pos, err := ParseArgs(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		_, cmd, _ := strings.Cut(fs.Name(), " ")
		return "", fmt.Errorf("%w: %s: give one %s", ErrUsage, cmd, what)
	}
	return pos[0], nil
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ErrHelp
		}
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	return nil
}

// Require returns a usage error naming the first empty required flag.
func Require(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if f := fs.Lookup(n); f != nil && f.Value.String() == "" {
			return fmt.Errorf("%w: %s: --%s is required", ErrUsage, fs.Name(), n)
		}
	}
	return nil
}
