package main

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/fixtures"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden fixture results")

// demoSchemes are the schemes whose fixture results are golden, with the
// model variant each needs.
var demoSchemes = []struct{ scheme, variant string }{
	{"dapo", "dapo"},
	{"winclip", "winclip"},
	{"anomalyclip", "anomalyclip"},
	{"adaclip", "adaclip"},
	{"aprilgan", "aprilgan"},
	{"multiads", "multiads"},
}

// TestFixtureGolden runs every scheme on every fixture dataset with the
// tiny seeded models and checks the results against the committed golden
// files with `dapobench check`: any change in the numbers fails the suite.
// Refresh with: go test ./cmd/dapobench -run FixtureGolden -update
// (and regenerate RESULTS.md: make results).
func TestFixtureGolden(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if _, _, err := runCLI(t, "fixtures", "gen", "--out", data); err != nil {
		t.Fatal(err)
	}
	for _, s := range demoSchemes {
		if _, _, err := runCLI(t, "models", "tiny", "--out", filepath.Join(dir, "models", s.variant), "--variant", s.variant); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range fixtures.IDs {
		for _, s := range demoSchemes {
			name := id + "-" + s.scheme
			t.Run(name, func(t *testing.T) {
				run := filepath.Join(dir, "runs", name)
				if _, _, err := runCLI(t, "run", "--dataset", id, "--root", filepath.Join(data, id),
					"--model", filepath.Join(dir, "models", s.variant), "--scheme", s.scheme, "--device", "cpu",
					"--out", run, "--cache", filepath.Join(dir, "cache"), "--quiet"); err != nil {
					t.Fatal(err)
				}
				args := []string{"check", "--golden", filepath.Join("testdata", "golden", name+".json"), run}
				if *updateGolden {
					args = append(args, "--update")
				}
				stdout, stderr, err := runCLI(t, args...)
				if err != nil {
					t.Errorf("%v\n%s%s", err, stdout, strings.TrimSpace(stderr))
				}
			})
		}
	}
}
