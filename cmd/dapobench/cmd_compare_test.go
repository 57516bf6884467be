package main

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/results"
)

func TestCompare(t *testing.T) {
	a, b, _ := fixtureRuns(t)
	args := []string{"compare", a, b, "--seed", "3", "--resamples", "400"}
	stdout, stderr, err := runCLI(t, args...)
	if err != nil {
		t.Fatal(err, stderr)
	}
	if stderr != "" {
		t.Errorf("warnings for comparable runs: %s", stderr)
	}
	// The differences are those of the two results.json.
	ra, _ := results.Read(filepath.Join(a, "results.json"))
	rb, _ := results.Read(filepath.Join(b, "results.json"))
	for _, cat := range []string{"bracket_brown", "tubes"} {
		for _, m := range results.StandardMetrics() {
			x, _ := ra.Categories[cat].Get(m)
			y, _ := rb.Categories[cat].Get(m)
			row := rowOf(t, stdout, cat, m)
			if row[2] != points2(x) || row[3] != points2(y) {
				t.Errorf("%s %s: row %q, want A %s B %s", cat, m, row, points2(x), points2(y))
			}
			image := strings.HasPrefix(m, "image_")
			if image != strings.HasPrefix(row[5], "[") {
				t.Errorf("%s %s: interval %q", cat, m, row[5])
			}
			if (m == results.ImageAUROC) != (row[7] != "") {
				t.Errorf("%s %s: DeLong %q", cat, m, row[7])
			}
		}
	}
	if row := rowOf(t, stdout, "*mean*", results.ImageAP); !strings.HasPrefix(row[5], "[") {
		t.Errorf("mean image AP without an interval: %q", row)
	}
	// Seeded: the same command prints the same numbers.
	again, _, err := runCLI(t, args...)
	if err != nil || again != stdout {
		t.Errorf("second run differs (%v):\n%s\n%s", err, stdout, again)
	}
}

// rowOf finds the table row of a category and metric and returns its
// cells.
func rowOf(t *testing.T, table, cat, metric string) []string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) == 8 && cells[0] == cat && cells[1] == metric {
			return cells
		}
	}
	t.Fatalf("no row %s %s in\n%s", cat, metric, table)
	return nil
}

func points2(v float64) string {
	s := strconv.FormatFloat(100*v, 'f', 2, 64)
	if s == "-0.00" {
		return "0.00"
	}
	return s
}

func TestCompareNotComparable(t *testing.T) {
	a, _, mad := fixtureRuns(t)
	data, model := runFixture(t, "dapo")
	dir := t.TempDir()
	run := func(out string, extra ...string) string {
		out = filepath.Join(dir, out)
		args := append([]string{"run", "--dataset", "mpdd", "--root", filepath.Join(data, "mpdd"), "--model", model,
			"--scheme", "dapo", "--device", "cpu", "--out", out, "--quiet", "--cache", ""}, extra...)
		if _, _, err := runCLI(t, args...); err != nil {
			t.Fatal(err)
		}
		return out
	}
	tubes := run("tubes", "--category", "tubes")
	renamed := run("renamed")
	p := filepath.Join(renamed, "scores", "tubes.csv")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), "tubes/test/good/001.png", "tubes/test/good/101.png", 1)), 0o644)
	for _, c := range []struct {
		b    string
		want []string
	}{
		{mad, []string{"not comparable", "dataset: A is mpdd, B is mad-real"}},
		{tubes, []string{"categories only in A: bracket_brown"}},
		{renamed, []string{"tubes: images differ in 1 of 6 rows; first at row 6 of scores/tubes.csv: A has tubes/test/good/001.png, B has tubes/test/good/101.png"}},
	} {
		_, _, err := runCLI(t, "compare", a, c.b)
		if err == nil || errors.Is(err, cli.ErrUsage) {
			t.Fatalf("%s: error %v", c.b, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error\n%v\nwant %q", err, w)
			}
		}
	}
	// A different AU-PRO variant only warns.
	mvtec := run("aupro-mvtec", "--aupro", "mvtec")
	_, stderr, err := runCLI(t, "compare", a, mvtec, "--resamples", "100")
	if err != nil || !strings.Contains(stderr, "warning: pixel_aupro: A uses the cflow200 variant, B the mvtec variant") {
		t.Errorf("aupro variants: %v, stderr %q", err, stderr)
	}
}

func TestCompareUsage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"compare", dir}, "want two run directories, have 1"},
		{[]string{"compare", dir, dir, dir}, "have 3"},
		{[]string{"compare", dir, dir, "--resamples", "1"}, "--resamples 1"},
		{[]string{"compare", dir, dir, "--level", "95"}, "--level 95"},
	} {
		_, _, err := runCLI(t, c.args...)
		if err == nil || !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want usage error %q", c.args, err, c.want)
		}
	}
}
