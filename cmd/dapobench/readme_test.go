package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/internal/cli"
)

// TestReadmeCLI keeps the README's CLI synopsis and the commands in step,
// as benchstat tests its documentation: every command has a line there,
// every flag a line names exists, and every flag a command has is named.
func TestReadmeCLI(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	synopsis := readmeSynopsis(t, string(b))
	for _, c := range commands() {
		line, ok := synopsis[c.Name]
		if !ok {
			t.Errorf("README's CLI block has no line for dapobench %s", c.Name)
			continue
		}
		var stderr bytes.Buffer
		if err := c.Run(context.Background(), []string{"-h"}, &bytes.Buffer{}, &stderr); err != cli.ErrHelp {
			t.Errorf("dapobench %s -h: %v", c.Name, err)
			continue
		}
		have := flagNames(stderr.String())
		named := regexp.MustCompile(`--([a-z0-9-]+)`).FindAllStringSubmatch(line, -1)
		var listed []string
		for _, m := range named {
			listed = append(listed, m[1])
			if !slices.Contains(have, m[1]) {
				t.Errorf("README: dapobench %s --%s: no such flag (the command has %s)", c.Name, m[1], strings.Join(have, ", "))
			}
		}
		for _, f := range have {
			if !slices.Contains(listed, f) {
				t.Errorf("README: dapobench %s: flag --%s is not in the synopsis", c.Name, f)
			}
		}
	}
	for name := range synopsis {
		if _, _, ok := cli.Lookup(commands(), strings.Fields(name)); !ok {
			t.Errorf("README's CLI block names dapobench %s, which is not a command", name)
		}
	}
}

// readmeSynopsis returns the lines of the fenced block under "## CLI" by
// command name; a line ending in a backslash continues on the next.
func readmeSynopsis(t *testing.T, readme string) map[string]string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "\n## CLI\n")
	if !ok {
		t.Fatal("README has no ## CLI section")
	}
	_, rest, _ = strings.Cut(rest, "```\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("README's CLI section has no fenced block")
	}
	block = strings.ReplaceAll(block, "\\\n", " ")
	// SELECT abbreviates the dataset-selection flags; the README spells
	// them out once, above the block.
	sel := regexp.MustCompile("`SELECT` stands for[^`]*`([^`]+)`").FindStringSubmatch(readme)
	if sel == nil {
		t.Fatal("README's CLI section does not define SELECT")
	}
	block = strings.ReplaceAll(block, "[SELECT]", sel[1])
	out := map[string]string{}
	for _, line := range strings.Split(block, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "dapobench" {
			continue
		}
		name := f[1]
		if len(f) > 2 && !strings.HasPrefix(f[2], "-") && !strings.ContainsAny(f[2], "[]|.") && strings.ToLower(f[2]) == f[2] {
			name += " " + f[2]
		}
		out[name] = line
	}
	return out
}

// flagNames reads the flag names from a flag set's PrintDefaults output.
func flagNames(usage string) []string {
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(usage, -1) {
		if !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	return names
}
