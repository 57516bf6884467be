package resultsmd

import (
	"bytes"
	"context"
	"encoding/xml"
	"flag"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/reports/internal/runtest"
	"github.com/dapobench/dapobench/reports/rundir"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// linkRe matches the target of a Markdown link or image.
var linkRe = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// checkLinks checks that every relative link of RESULTS.md names an
// existing file, and that the figures decode: PNGs as images, SVGs as XML
// with an <svg> root. It returns the number of links.
func checkLinks(t *testing.T, dir string) int {
	t.Helper()
	md, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range linkRe.FindAllStringSubmatch(string(md), -1) {
		target := m[1]
		if strings.HasPrefix(target, "#") {
			continue
		}
		rel, err := url.PathUnescape(target)
		if err != nil {
			t.Errorf("link %q: %v", target, err)
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("link %q does not resolve: %v", target, err)
			continue
		}
		n++
		switch filepath.Ext(p) {
		case ".png":
			if _, err := png.Decode(bytes.NewReader(b)); err != nil {
				t.Errorf("%s: %v", target, err)
			}
		case ".svg":
			var root struct{ XMLName xml.Name }
			if err := xml.Unmarshal(b, &root); err != nil || root.XMLName.Local != "svg" {
				t.Errorf("%s: %v, root %v", target, err, root.XMLName)
			}
		}
	}
	return n
}

// fixture writes three runs under base/runs: two of mvtec (one with its
// images and multi-type records, one whose images are gone) and one of
// visa with a one-class category.
func fixture(t *testing.T, base string) []*rundir.Run {
	t.Helper()
	oneClass := runtest.Category{Images: []string{"pcb1/test/good/0.png", "pcb1/test/good/1.png"},
		Labels: []bool{false, false}, Defects: []string{"", ""}, Scores: []float64{0.2, 0.4}}
	specs := map[string]runtest.Spec{
		"mvtec-dapo": {Dataset: "mvtec", Scheme: "dapo", AUPRO: "cflow200", MapSize: 16, ImageRoot: filepath.Join(base, "data"), Multi: true,
			Cats: map[string]runtest.Category{"bottle": runtest.Bottle(0.2), "screw": runtest.Screw(0.1)}},
		"mvtec-winclip": {Dataset: "mvtec", Scheme: "winclip", AUPRO: "cflow200", MapSize: 8,
			Cats: map[string]runtest.Category{"bottle": runtest.Bottle(0), "screw": runtest.Screw(0.3)}},
		"visa-dapo": {Dataset: "visa", Scheme: "dapo", AUPRO: "mvtec",
			Cats: map[string]runtest.Category{"pcb1": oneClass, "candle": runtest.Bottle(0.1)}},
	}
	var runs []*rundir.Run
	for _, name := range []string{"mvtec-dapo", "visa-dapo", "mvtec-winclip"} {
		dir := filepath.Join(base, "runs", name)
		runtest.Write(t, dir, specs[name])
		r, err := rundir.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	return runs
}

func TestWrite(t *testing.T) {
	base := t.TempDir()
	runs := fixture(t, base)
	out := filepath.Join(base, "report")
	var progress bytes.Buffer
	if err := Write(context.Background(), out, runs, Options{Progress: &progress}); err != nil {
		t.Fatal(err)
	}
	if n := checkLinks(t, out); n < 40 {
		t.Errorf("only %d links", n)
	}
	md, err := os.ReadFile(filepath.Join(out, FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"- [mvtec](#mvtec) (2 runs)\n",
		"## mvtec\n", "## visa\n",
		"[results.json](../runs/mvtec-dapo/results.json)",
		"![ROC, bottle](figures/mvtec/roc-bottle.png) [SVG](figures/mvtec/roc-bottle.svg)",
		"*ROC, pcb1: not drawn: no anomalous images.*",
		"**screw · dapo**\n\n![confusion, screw, dapo](figures/mvtec/dapo/confusion-screw.png)",
		"`screw/test/thread|top/0.png` (thread|top), score 0.1",
		"image not found at " + filepath.Join(base, "runs", "mvtec-winclip", "nonexistent"),
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("RESULTS.md: missing %q", want)
		}
	}
	// These runs have no defect-type results: no such section.
	if strings.Contains(string(md), "Defect types") {
		t.Error("RESULTS.md has a defect-type section without defect types")
	}
	// Runs side by side, in the order given.
	if !regexp.MustCompile(`\| category \|\s+dapo \|\s+winclip \|`).Match(md) {
		t.Error("RESULTS.md: no table with dapo then winclip")
	}
	// mvtec: 4 bar charts, 2×2 curves, 2 confusion matrices, 2×2×3
	// overlays; visa: 4 bar charts, the curves of one category.
	if got := progress.String(); got != "report: mvtec: 2 runs, 22 figures\nreport: visa: 1 run, 6 figures\n" {
		t.Errorf("progress:\n%s", got)
	}
	// The overlays are drawn at the evaluation size, enlarged to 256 pixels.
	f, err := os.Open(filepath.Join(out, "figures", "mvtec", "dapo", "bottle-top-anomalous.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != 2*256+4 || cfg.Height != 256 {
		t.Errorf("overlay %dx%d, %v", cfg.Width, cfg.Height, err)
	}

	// Golden, and deterministic: a second report writes the same bytes.
	// The golden file has the temporary folder replaced by BASE.
	p := filepath.Join("testdata", "RESULTS.golden.md")
	got := strings.ReplaceAll(string(md), base, "BASE")
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("RESULTS.md changed; rerun with -update if intended")
	}
	if err := Write(context.Background(), out, runs, Options{}); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(out, FileName))
	if !bytes.Equal(md, again) {
		t.Error("a second report differs")
	}
}

func TestLabels(t *testing.T) {
	base := t.TempDir()
	var runs []*rundir.Run
	for _, name := range []string{"a", "b"} {
		dir := filepath.Join(base, name)
		runtest.Write(t, dir, runtest.Spec{Dataset: "mvtec", Scheme: "dapo", AUPRO: "cflow200",
			Cats: map[string]runtest.Category{"bottle": runtest.Bottle(0)}})
		r, err := rundir.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	g := groupRuns(runs)
	if len(g) != 1 || strings.Join(g[0].labels, ",") != "dapo (a),dapo (b)" {
		t.Errorf("labels %q", g[0].labels)
	}
	out := filepath.Join(base, "out")
	if err := Write(context.Background(), out, runs, Options{}); err != nil {
		t.Fatal(err)
	}
	checkLinks(t, out)
}

func TestWriteErrors(t *testing.T) {
	base := t.TempDir()
	runs := fixture(t, base)
	for _, c := range []struct {
		runs []*rundir.Run
		want string
	}{
		{nil, "no runs"},
		{[]*rundir.Run{runs[0], runs[1], runs[0]}, "is given twice"},
	} {
		if err := Write(context.Background(), filepath.Join(base, "out"), c.runs, Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
	// A damaged part is an error naming the file, not a missing figure.
	os.WriteFile(filepath.Join(runs[0].Dir, "examples", "bottle", "examples.json"), []byte("{"), 0o644)
	err := Write(context.Background(), filepath.Join(base, "out"), runs, Options{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join("examples", "bottle", "examples.json")) {
		t.Errorf("damaged examples.json: %v", err)
	}
	// A cancelled context stops the report before RESULTS.md is written.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(base, "cancelled")
	if err := Write(ctx, out, runs[1:2], Options{}); err == nil {
		t.Error("no error after cancel")
	}
	if _, err := os.Stat(filepath.Join(out, FileName)); err == nil {
		t.Error("RESULTS.md written after cancel")
	}
}
