package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/results"
)

func TestCheck(t *testing.T) {
	run, _, _ := fixtureRuns(t)
	dir := t.TempDir()
	golden := filepath.Join(dir, "golden", "mpdd-dapo.json")

	// --update creates the golden file, byte for byte the run's results.
	stdout, _, err := runCLI(t, "check", "--golden", golden, run, "--update")
	if err != nil || !strings.Contains(stdout, "updated "+golden) {
		t.Fatalf("update: %v\n%s", err, stdout)
	}
	want, _ := os.ReadFile(filepath.Join(run, "results.json"))
	got, _ := os.ReadFile(golden)
	if !bytes.Equal(got, want) {
		t.Error("golden file differs from results.json")
	}

	// nudged writes the golden file with tubes' image AUROC moved by d, and
	// whatever else edit changes.
	nudged := func(d float64, edit func(r *results.Results)) string {
		r, err := results.Read(golden)
		if err != nil {
			t.Fatal(err)
		}
		*r.Categories["tubes"].Metrics[results.ImageAUROC] += d
		if edit != nil {
			edit(r)
		}
		f, err := os.CreateTemp(dir, "nudged-*.json")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		p := f.Name()
		if err := results.Write(p, r); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name   string
		golden string
		extra  []string
		fail   bool
		rows   []string // cells the table of what moved must show
	}{
		{"unchanged", golden, nil, false, nil},
		{"results.json path", golden, []string{filepath.Join(run, "results.json")}, false, nil},
		{"within tolerance", nudged(5e-7, nil), nil, false, nil},
		{"beyond tolerance", nudged(2e-6, nil), nil, true, []string{"| tubes ", "| image_auroc ", "-2e-06"}},
		{"beyond, wider --tol", nudged(2e-6, nil), []string{"--tol", "1e-5"}, false, nil},
		{"became null", nudged(0, func(r *results.Results) {
			r.Categories["tubes"].Metrics[results.PixelAP] = nil
			r.Categories["tubes"].Undefined[results.PixelAP] = "no defect regions in the ground truth"
		}), nil, true, []string{"| pixel_ap ", "null (no defect regions in the ground truth)"}},
		{"category appeared", nudged(0, func(r *results.Results) { delete(r.Categories, "bracket_brown") }), nil, true,
			[]string{"| bracket_brown ", "| (entry) ", "absent", "present"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := run
			args := []string{"check", "--golden", c.golden}
			if len(c.extra) > 0 && !strings.HasPrefix(c.extra[0], "--") {
				target, c.extra = c.extra[0], c.extra[1:]
			}
			args = append(append(args, target), c.extra...)
			stdout, stderr, err := runCLI(t, args...)
			if !c.fail {
				if err != nil || !strings.HasPrefix(stdout, "ok: ") {
					t.Errorf("err %v\n%s%s", err, stdout, stderr)
				}
				return
			}
			if !errors.Is(err, cli.ErrSilent) || exitCode(err) != 1 {
				t.Fatalf("err %v, want exit 1", err)
			}
			if !strings.Contains(stdout, "| where ") || !strings.Contains(stderr, "beyond tolerance") {
				t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
			}
			for _, w := range c.rows {
				if !strings.Contains(stdout, w) {
					t.Errorf("table lacks %q:\n%s", w, stdout)
				}
			}
		})
	}

	// --update over a golden file that moved shows what it replaces and
	// leaves no temporary file behind.
	moved := nudged(2e-6, nil)
	stdout, _, err = runCLI(t, "check", "--golden", moved, run, "--update")
	if err != nil || !strings.Contains(stdout, "| tubes ") || !strings.Contains(stdout, "(1 change)") {
		t.Errorf("update: %v\n%s", err, stdout)
	}
	if _, _, err := runCLI(t, "check", "--golden", moved, run); err != nil {
		t.Errorf("after update: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestCheckErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"schema": "dapobench/results/v1",`), 0o644)
	good := filepath.Join("..", "..", "reports", "testdata", "mpdd-dapo.results.json")
	for _, c := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"check", good}, true, "--golden is required"},
		{[]string{"check", "--golden", good}, true, "want one run directory, have 0"},
		{[]string{"check", "--golden", good, good, "--tol", "-1"}, true, "--tol -1"},
		{[]string{"check", "--golden", filepath.Join(dir, "none.json"), good}, false, "does not exist; create it with --update"},
		{[]string{"check", "--golden", bad, good}, false, "bad.json"},
		{[]string{"check", "--golden", good, dir}, false, "results.json"},
	} {
		_, _, err := runCLI(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, cli.ErrUsage) != c.usage {
			t.Errorf("%q: error %v, want %q (usage %v)", c.args, err, c.want, c.usage)
		}
	}
}
