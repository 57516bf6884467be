package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/internal/cli"
)

// fixtureRuns runs the dapo scheme on fixture datasets and returns the run
// directories: mpdd with the default and the E=1 variant, and mad-real.
func fixtureRuns(t *testing.T) (mpdd, mpddE1, mad string) {
	t.Helper()
	data, model := runFixture(t, "dapo")
	dir := t.TempDir()
	run := func(dataset, variant, out string) string {
		out = filepath.Join(dir, out)
		if _, _, err := runCLI(t, "run", "--dataset", dataset, "--root", filepath.Join(data, dataset), "--model", model,
			"--scheme", "dapo", "--variant", variant, "--device", "cpu", "--out", out, "--quiet", "--cache", ""); err != nil {
			t.Fatal(err)
		}
		return out
	}
	return run("mpdd", "dapo", "mpdd-dapo"), run("mpdd", "dapo/e1", "mpdd-e1"), run("mad-real", "dapo", "mad-dapo")
}

// markdownLink matches the target of a Markdown link or image.
var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// checkReportLinks checks that every relative link of dir/RESULTS.md
// resolves to a file, and that the figures decode (PNG) or parse (SVG).
func checkReportLinks(t *testing.T, dir string) (pngs, svgs int) {
	t.Helper()
	md, err := os.ReadFile(filepath.Join(dir, "RESULTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range markdownLink.FindAllStringSubmatch(string(md), -1) {
		if strings.HasPrefix(m[1], "#") {
			continue
		}
		rel, err := url.PathUnescape(m[1])
		if err != nil {
			t.Errorf("link %q: %v", m[1], err)
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			t.Errorf("link %q does not resolve: %v", m[1], err)
			continue
		}
		switch filepath.Ext(rel) {
		case ".png":
			if _, err := png.Decode(bytes.NewReader(b)); err != nil {
				t.Errorf("%s: %v", m[1], err)
			}
			pngs++
		case ".svg":
			var root struct{ XMLName xml.Name }
			if err := xml.Unmarshal(b, &root); err != nil || root.XMLName.Local != "svg" {
				t.Errorf("%s: not an SVG: %v", m[1], err)
			}
			svgs++
		}
	}
	return pngs, svgs
}

func TestReport(t *testing.T) {
	mpdd, e1, mad := fixtureRuns(t)
	out := filepath.Join(t.TempDir(), "report")
	// Flags may follow the run directories.
	stdout, stderr, err := runCLI(t, "report", mpdd, mad, e1, "--out", out)
	if err != nil {
		t.Fatal(err, stderr)
	}
	if !strings.Contains(stdout, filepath.Join(out, "RESULTS.md")) || !strings.Contains(stderr, "report: mpdd: 2 runs") {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}
	pngs, svgs := checkReportLinks(t, out)
	if pngs < 30 || svgs < 20 {
		t.Errorf("%d PNG and %d SVG links", pngs, svgs)
	}
	md, _ := os.ReadFile(filepath.Join(out, "RESULTS.md"))
	for _, want := range []string{
		"## mpdd\n", "## mad-real\n",
		"| dapo (untrained) | ", // the runs table marks untrained tensors
		"| category      | dapo (untrained) | dapo/e1 (untrained) |", // the two mpdd runs side by side
		"### Seen defect types", "### Novel defect types",
		"#### Defect types (pixel level)", "#### Defect-type confusion", "#### Anomaly maps",
		"figures/mpdd/dapo-e1/tubes-top-anomalous.png",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("RESULTS.md: missing %q", want)
		}
	}
	if strings.Contains(string(md), "image not found") {
		t.Error("the fixture images were not found")
	}
}

func TestReportErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"report", "--out", dir}, true, "at least one run directory"},
		{[]string{"report", dir}, true, "--out is required"},
		{[]string{"report", dir, "--out", dir, "--bogus"}, true, "flag provided but not defined"},
		{[]string{"report", dir, "--out", filepath.Join(dir, "o")}, false, "incomplete run directory: no results.json"},
	} {
		_, _, err := runCLI(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, cli.ErrUsage) != c.usage {
			t.Errorf("%q: error %v, want %q (usage %v)", c.args, err, c.want, c.usage)
		}
	}
	if _, _, err := runCLI(t, "report", "-h"); err != nil {
		t.Errorf("-h: %v", err)
	}
}
