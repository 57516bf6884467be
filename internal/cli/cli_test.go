package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// testProgram has a plain command, a group of two and a command that
// fails after printing its own message.
func testProgram(ran *[]string) Program {
	cmd := func(name string) func(context.Context, []string, io.Writer, io.Writer) error {
		return func(_ context.Context, args []string, _, stderr io.Writer) error {
			fs := NewFlagSet("prog "+name, stderr)
			if err := Parse(fs, args); err != nil {
				return err
			}
			*ran = append(*ran, name)
			return nil
		}
	}
	return Program{Name: "prog", Version: "v1.2.3", Commands: []Command{
		{Name: "eval", Summary: "evaluate", Run: cmd("eval")},
		{Name: "data scan", Summary: "scan a tree", Run: cmd("data scan")},
		{Name: "data meta", Summary: "write meta", Run: cmd("data meta")},
		{Name: "fail", Summary: "fail quietly", Run: func(context.Context, []string, io.Writer, io.Writer) error { return ErrSilent }},
	}}
}

func TestRun(t *testing.T) {
	for _, c := range []struct {
		args           []string
		err            error  // nil, ErrUsage or ErrSilent
		ran            string // the command that ran
		stdout, stderr string // what each shows, "" for nothing
	}{
		{nil, ErrUsage, "", "usage: prog <command> [flags]", ""},
		{[]string{"help"}, nil, "", "Run 'prog <command> -h'", ""},
		{[]string{"--help"}, nil, "", "  data scan   scan a tree", ""},
		{[]string{"version"}, nil, "", "prog v1.2.3\n", ""},
		{[]string{"--version"}, nil, "", "prog v1.2.3\n", ""},
		{[]string{"eval"}, nil, "eval", "", ""},
		{[]string{"data", "scan"}, nil, "data scan", "", ""},
		{[]string{"eval", "-h"}, nil, "", "", "Usage of prog eval"},
		{[]string{"eval", "--bogus"}, ErrUsage, "", "", "not defined"},
		{[]string{"data"}, ErrUsage, "", "", "usage: prog data <command> [flags]"},
		{[]string{"data", "-h"}, nil, "", "usage: prog data <command> [flags]", ""},
		{[]string{"data", "check", "x"}, ErrUsage, "", "", "data meta"},
		{[]string{"nonsense"}, ErrUsage, "", "", "usage: prog <command> [flags]"},
		{[]string{"fail"}, ErrSilent, "", "", ""},
	} {
		var ran []string
		var stdout, stderr bytes.Buffer
		err := testProgram(&ran).Run(context.Background(), c.args, &stdout, &stderr)
		if c.err == nil && err != nil || c.err != nil && !errors.Is(err, c.err) {
			t.Errorf("%q: error %v, want %v", c.args, err, c.err)
		}
		if got := strings.Join(ran, ","); got != c.ran {
			t.Errorf("%q: ran %q, want %q", c.args, got, c.ran)
		}
		for _, w := range []struct {
			name, want string
			got        *bytes.Buffer
		}{{"stdout", c.stdout, &stdout}, {"stderr", c.stderr, &stderr}} {
			if w.want == "" && w.got.Len() > 0 || !strings.Contains(w.got.String(), w.want) {
				t.Errorf("%q: %s %q, want %q", c.args, w.name, w.got, w.want)
			}
		}
	}
}

func TestRunMessages(t *testing.T) {
	p := testProgram(new([]string))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"data"}, "usage: data: give a command"},
		{[]string{"data", "check", "x"}, `usage: unknown command "data check"`},
		{[]string{"nonsense"}, `usage: unknown command "nonsense"`},
		{[]string{"eval", "x"}, `usage: prog eval: unexpected arguments ["x"]`},
	} {
		if err := p.Run(context.Background(), c.args, io.Discard, io.Discard); err == nil || err.Error() != c.want {
			t.Errorf("%q: %v, want %q", c.args, err, c.want)
		}
	}
}

func TestLookup(t *testing.T) {
	cmds := testProgram(new([]string)).Commands
	for _, c := range []struct {
		args       []string
		name, rest string
		ok         bool
	}{
		{[]string{"eval", "--x"}, "eval", "--x", true},
		{[]string{"data", "meta", "a", "b"}, "data meta", "a b", true},
		{[]string{"data"}, "", "", false},
		{[]string{"data", "eval"}, "", "", false},
		{nil, "", "", false},
	} {
		cmd, rest, ok := Lookup(cmds, c.args)
		if cmd.Name != c.name || strings.Join(rest, " ") != c.rest || ok != c.ok {
			t.Errorf("%q: %q %q %v", c.args, cmd.Name, rest, ok)
		}
	}
	if g := InGroup(cmds, "data"); len(g) != 2 || g[0].Name != "data scan" {
		t.Errorf("group data: %v", g)
	}
	if g := InGroup(cmds, "eval"); g != nil {
		t.Errorf("eval is no group: %v", g)
	}
}

func TestParse(t *testing.T) {
	newFS := func() (*flag.FlagSet, *string, *bytes.Buffer) {
		var stderr bytes.Buffer
		fs := NewFlagSet("prog study run", &stderr)
		out := fs.String("out", "", "output")
		SetUsage(fs, "DIR --out OUT", "Runs a study.")
		return fs, out, &stderr
	}
	fs, out, _ := newFS()
	pos, err := ParseArgs(fs, []string{"a", "--out", "o", "b"})
	if err != nil || *out != "o" || strings.Join(pos, " ") != "a b" {
		t.Errorf("ParseArgs: %q %q %v", pos, *out, err)
	}
	fs, _, _ = newFS()
	if arg, err := ParseArg(fs, []string{"--out", "o", "d"}, "study folder"); arg != "d" || err != nil {
		t.Errorf("ParseArg: %q %v", arg, err)
	}
	for _, args := range [][]string{nil, {"a", "b"}} {
		fs, _, _ = newFS()
		if _, err := ParseArg(fs, args, "study folder"); !errors.Is(err, ErrUsage) || err.Error() != "usage: study run: give one study folder" {
			t.Errorf("ParseArg %q: %v", args, err)
		}
	}
	fs, _, _ = newFS()
	if err := Parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	if err := Require(fs, "out"); !errors.Is(err, ErrUsage) || err.Error() != "usage: prog study run: --out is required" {
		t.Errorf("Require: %v", err)
	}
	fs, _, stderr := newFS()
	if err := Parse(fs, []string{"-h"}); err != ErrHelp {
		t.Errorf("-h: %v", err)
	}
	if want := "usage: prog study run DIR --out OUT\n\nRuns a study.\n  -out string\n"; !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("usage text %q, want %q", stderr, want)
	}
	fs, _, _ = newFS()
	if _, err := ParseArgs(fs, []string{"a", "-x"}); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "-x") {
		t.Errorf("unknown flag: %v", err)
	}
}
